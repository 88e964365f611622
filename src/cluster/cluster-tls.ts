/**
 * @module cluster/cluster-tls
 * The secured links of a cluster broker, from its config: to etcd (an `etcds://` URL's CA and
 * client certificate, etcd's user and password; cluster/etcd-access.ts) and to the other brokers
 * (the replica fetcher's TLS when the native listener serves TLS).
 *
 * Brokers speak to each other as any native client does: when the native listener serves TLS
 * (`tlsCert`/`tlsKey`), a follower connects to its leader with TLS, checks the leader's
 * certificate against `clusterTlsCa` (else `tlsCa`, else the system's CAs) and the host the
 * leader registered, and offers its own certificate (`tlsCert`/`tlsKey`) as client certificate,
 * which leaders that require one (`tlsCa` set: mutual TLS) verify and take as the follower's
 * principal, `User:<common name>`. So a broker certificate must allow both uses (extended key
 * usage serverAuth and clientAuth, or none) and name the address the broker advertises.
 */
import type { ClientTls } from "../client/link.ts";
import type { Config } from "../config.ts";
import { RunnelError } from "../errors.ts";
import { readPemFile } from "../security/pem-files.ts";
import { listenerTls } from "../server/tls.ts";
import { type EtcdAccess, loadEtcdAccess } from "./etcd-access.ts";

/** The config options each etcd setting comes from, as flags (for messages). */
const ETCD_OPTION_NAMES = {
  caFile: "--cluster-etcd-ca",
  certFile: "--cluster-etcd-cert",
  keyFile: "--cluster-etcd-key",
  user: "--cluster-etcd-user",
  passwordFile: "--cluster-etcd-password-file",
} as const;

/** How this broker reaches etcd; `secure` when the cluster URL is etcds://. Throws INVALID_CONFIG. */
export function etcdAccessOf(config: Config, secure: boolean): EtcdAccess {
  return loadEtcdAccess({
    secure,
    caFile: config.clusterEtcdCa,
    certFile: config.clusterEtcdCert,
    keyFile: config.clusterEtcdKey,
    user: config.clusterEtcdUser,
    passwordFile: config.clusterEtcdPasswordFile,
    names: ETCD_OPTION_NAMES,
  });
}

/**
 * The TLS the replica fetcher connects to leaders with: null when the native listener is
 * plaintext (the leaders' listeners are then too: one config for the cluster). Throws
 * INVALID_CONFIG / ConfigError naming a file that cannot be used.
 */
export function fetcherTls(config: Config): ClientTls | null {
  const native = listenerTls(config, "native");
  if (native === null) return null;
  const tls: ClientTls = { cert: native.cert, key: native.key };
  const ca = config.clusterTlsCa !== "" ? readCa(config.clusterTlsCa) : native.ca;
  if (ca !== undefined) tls.ca = ca;
  return tls;
}

function readCa(file: string): string {
  return readPemFile(file, "CA certificate", (why) => new RunnelError("INVALID_CONFIG", `--cluster-tls-ca ${file}: ${why}`));
}
