/**
 * @module cli/anonymous-exposure
 * The safe default of `runnel serve`: a broker that listens beyond the loopback interface with
 * authentication off lets anyone who can reach it read, write and delete every topic. So, unless
 * `allowAnonymous` says the operator means it, start-up is refused, naming the address and the
 * ways out. A listener that requires client certificates (mutual TLS: its tlsCa in force) is not
 * anonymous and does not count.
 */
import { type Config, httpPortOf } from "../config.ts";
import type { ListenerName } from "../security/session.ts";

/** 127.0.0.0/8, ::1 and "localhost": reachable only from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || bare === "::ffff:127.0.0.1";
}

/** The listener requires client certificates: its CA (own, or the shared one) is in force. */
function requiresClientCertificates(config: Config, listener: ListenerName): boolean {
  const own = listener === "kafka" ? config.kafkaTlsCa : listener === "http" ? config.httpTlsCa : "";
  const certificate = listener === "kafka" ? config.kafkaTlsCert : listener === "http" ? config.httpTlsCert : "";
  if (own === "none" || certificate === "none") return false;
  return (own !== "" ? own : config.tlsCa) !== "";
}

/** Every listener that is on, with the host it binds. */
function listeners(config: Config): Array<{ listener: ListenerName; host: string; flag: string }> {
  const bound: Array<{ listener: ListenerName; host: string; flag: string }> = [{ listener: "native", host: config.host, flag: "--host" }];
  if (config.kafkaPort !== -1) bound.push({ listener: "kafka", host: config.kafkaHost, flag: "--kafka-host" });
  if (httpPortOf(config) !== null) bound.push({ listener: "http", host: config.httpHost, flag: "--http-host" });
  return bound;
}

/** Null when start-up may go on; else one line saying which address is exposed and what to do. */
export function anonymousExposure(config: Config): string | null {
  if (config.authentication !== "none" || config.allowAnonymous) return null;
  const exposed = listeners(config).filter(({ listener, host }) => !isLoopback(host) && !requiresClientCertificates(config, listener));
  if (exposed.length === 0) return null;
  const where = exposed.map(({ listener, host, flag }) => `the ${listener} listener on ${host} (${flag})`).join(", ");
  return (
    `refusing to start: ${where} would accept anonymous clients from the network with --authentication none. ` +
    `Turn authentication on (--authentication scram, after 'runnel users add NAME --data-dir ${config.dataDir}'; docs/security.md), ` +
    `bind to 127.0.0.1, or pass --allow-anonymous to accept anonymous clients on purpose`
  );
}
