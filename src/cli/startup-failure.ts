/**
 * @module cli/startup-failure
 * Why `runnel serve` could not start, in one line an operator can act on: what (the address or
 * the data directory, by name), the errno, and what to do. The stack goes to the log at debug
 * level only (serve.ts). The two usual causes are a port someone else holds and a data
 * directory the broker cannot use (a file, no permission, a read-only mount, a full disk).
 */
import type { Config } from "../config.ts";
import { RunnelError } from "../errors.ts";

/** The facts found on an error or anywhere down its `cause` chain. */
interface Facts {
  errno: string | null;
  path: string | null;
  listen: boolean;
  /** The port the failed listen was for, when the error says. */
  port: number | null;
}

function factsOf(error: unknown): Facts {
  const facts: Facts = { errno: null, path: null, listen: false, port: null };
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const fields = current as { code?: unknown; errnoName?: unknown; path?: unknown; syscall?: unknown; port?: unknown; cause?: unknown };
    const errno = typeof fields.errnoName === "string" ? fields.errnoName : fields.code;
    if (facts.errno === null && typeof errno === "string" && /^E[A-Z0-9]+$/.test(errno)) facts.errno = errno;
    if (facts.path === null && typeof fields.path === "string") facts.path = fields.path;
    if (fields.syscall === "listen" || typeof fields.port === "number") facts.listen = true;
    if (facts.port === null && typeof fields.port === "number") facts.port = fields.port;
    current = fields.cause;
  }
  return facts;
}

const LISTEN_ADVICE: Record<string, string> = {
  EADDRINUSE: "the port is in use; stop the process that holds it (ss -ltnp shows it) or choose another --port",
  EACCES: "permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE, so choose a --port above 1023",
  EADDRNOTAVAIL: "this machine has no such address; choose a --host it has, e.g. 127.0.0.1 or 0.0.0.0",
};

const DATA_DIR_ADVICE: Record<string, string> = {
  EEXIST: "it is a file, not a directory; move the file away or choose another --data-dir",
  ENOTDIR: "a file is in the way where a directory should be; move it away or choose another --data-dir",
  EACCES: "permission denied; give the broker's user write access (chown/chmod) or choose another --data-dir",
  EPERM: "operation not permitted; give the broker's user write access (chown/chmod) or choose another --data-dir",
  EROFS: "the file system is read-only; remount it read-write or choose another --data-dir",
  ENOSPC: "the disk is full; free space or choose another --data-dir",
  EDQUOT: "the disk quota is exhausted; free space or choose another --data-dir",
};

function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replaceAll("\n", " ");
}

/** One line (no trailing newline) saying what failed, the errno and what to do. */
export function describeStartupFailure(error: unknown, config: Pick<Config, "host" | "port" | "dataDir"> & Partial<Pick<Config, "kafkaHost" | "kafkaPort">>): string {
  if (error instanceof RunnelError && (error.code === "CLUSTER_UNAVAILABLE" || error.code === "BROKER_ID_IN_USE")) {
    // Cluster mode (docs/cluster.md): the errno underneath is etcd's, not the data directory's.
    return `cannot join the cluster: ${errorMessage(error)} [${error.code}]`;
  }
  const facts = factsOf(error);
  if (facts.listen && config.kafkaHost !== undefined && facts.port !== null && facts.port !== config.port && facts.port === config.kafkaPort) {
    // The Kafka listener (docs/kafka.md) starts after the native one, on its own port.
    const advice = facts.errno === "EADDRINUSE" ? "the port is in use; stop the process that holds it (ss -ltnp shows it), choose another --kafka-port, or turn the Kafka listener off with --kafka-port -1" : ((facts.errno !== null && LISTEN_ADVICE[facts.errno]) || errorMessage(error));
    return `cannot listen for Kafka clients on ${config.kafkaHost}:${facts.port}: ${advice}${facts.errno === null ? "" : ` [${facts.errno}]`}`;
  }
  if (facts.listen) {
    const advice = (facts.errno !== null && LISTEN_ADVICE[facts.errno]) || errorMessage(error);
    return `cannot listen on ${config.host}:${config.port}: ${advice}${facts.errno === null ? "" : ` [${facts.errno}]`}`;
  }
  if (facts.errno === null) {
    // Already a sentence about the data directory (e.g. another broker holds its lock).
    return error instanceof RunnelError ? `${errorMessage(error)} [${error.code}]` : `failed to start: ${errorMessage(error)}`;
  }
  const where = facts.path !== null && facts.path !== config.dataDir ? ` (at ${facts.path})` : "";
  const advice = DATA_DIR_ADVICE[facts.errno] ?? errorMessage(error);
  return `cannot use data directory ${config.dataDir}${where}: ${advice} [${facts.errno}]`;
}
