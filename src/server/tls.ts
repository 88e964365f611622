/**
 * @module server/tls
 * TLS settings of the three listeners (native, Kafka, HTTP), read from the config's files:
 * `tlsCert`/`tlsKey`/`tlsCa` for every listener, and per-listener overrides (`kafkaTlsCert`,
 * `httpTlsKey`, ...; empty = the shared value, "none" = without it). With a CA the listener
 * requires a client certificate signed by it (mutual TLS).
 *
 * Files are read and checked here, before anything listens, so a missing file, a file that is no
 * PEM certificate or key, or a key that does not belong to its certificate stops start-up (and a
 * SIGHUP reload) with one line that names the option and the file. Bun would otherwise either
 * throw a bare OpenSSL code or, for a mismatched pair, listen and fail every handshake.
 */
import type * as crypto from "node:crypto";
import { type Config, ConfigError, flagName } from "../config.ts";
import { keyBelongsTo, parseCertificatePem, type PemFailure, readPemFile } from "../security/pem-files.ts";

export type ListenerName = "native" | "kafka" | "http";

/** What Bun.listen / Bun.serve take as `tls`: PEM text, and client-certificate checking with a CA. */
export interface ListenerTls {
  cert: string;
  key: string;
  ca?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
}

export type TlsSettings = Record<ListenerName, ListenerTls | null>;

type FileKey = "tlsCert" | "tlsKey" | "tlsCa";

/** A per-listener override of "none": this listener does without the shared file (e.g. httpTlsCa). */
const NONE = "none";

/** Every config key naming a TLS file. */
export const TLS_OPTIONS = ["tlsCert", "tlsKey", "tlsCa", "kafkaTlsCert", "kafkaTlsKey", "kafkaTlsCa", "httpTlsCert", "httpTlsKey", "httpTlsCa"] as const;
const PREFIX: Record<ListenerName, string> = { native: "", kafka: "kafka", http: "http" };

/** The config key a listener's file comes from: its own override when set, else the shared one. */
function keyFor(config: Config, listener: ListenerName, key: FileKey): keyof Config {
  if (listener === "native") return key;
  const own = `${PREFIX[listener]}${key[0]!.toUpperCase()}${key.slice(1)}` as keyof Config;
  return config[own] === "" ? key : own;
}

/** A file option in force: not empty, and not "none" (a listener's way to refuse the shared value). */
function isSet(config: Config, key: keyof Config): boolean {
  const value = config[key];
  return value !== "" && value !== NONE;
}

/** A setting's failure: its flag and file, then the reason. */
function settingFailure(config: Config, key: keyof Config): PemFailure {
  return (why) => new ConfigError(`${flagName(key)} ${String(config[key])}: ${why}`);
}

function readPem(config: Config, key: keyof Config, what: string): string {
  return readPemFile(String(config[key]), what, settingFailure(config, key));
}

/** One listener's TLS, or null when it has no certificate configured (plaintext). */
export function listenerTls(config: Config, listener: ListenerName): ListenerTls | null {
  const certKey = keyFor(config, listener, "tlsCert");
  const keyKey = keyFor(config, listener, "tlsKey");
  const caKey = keyFor(config, listener, "tlsCa");
  // A listener's certificate "none": plaintext on this listener although the others serve TLS.
  if (config[certKey] === NONE) return null;
  const hasCert = isSet(config, certKey);
  const hasKey = isSet(config, keyKey);
  if (!hasCert && !hasKey) {
    if (isSet(config, caKey)) throw new ConfigError(`${flagName(caKey)} is set but ${flagName(certKey)} and ${flagName(keyKey)} are not; a CA alone does not turn TLS on`);
    return null;
  }
  if (!hasCert || !hasKey) throw new ConfigError(`${flagName(hasCert ? keyKey : certKey)} is missing: TLS needs both ${flagName(certKey)} and ${flagName(keyKey)}`);
  const cert = readPem(config, certKey, "certificate");
  const key = readPem(config, keyKey, "private key");
  checkPair(config, certKey, keyKey, cert, key);
  if (!isSet(config, caKey)) return { cert, key };
  const ca = readPem(config, caKey, "CA certificate");
  parseCertificate(config, caKey, ca, "CA certificate");
  return { cert, key, ca, requestCert: true, rejectUnauthorized: true };
}

export function loadTlsSettings(config: Config): TlsSettings {
  return { native: listenerTls(config, "native"), kafka: listenerTls(config, "kafka"), http: listenerTls(config, "http") };
}

function parseCertificate(config: Config, key: keyof Config, pem: string, what: string): crypto.X509Certificate {
  return parseCertificatePem(pem, what, settingFailure(config, key));
}

function checkPair(config: Config, certKey: keyof Config, keyKey: keyof Config, certPem: string, keyPem: string): void {
  const certificate = parseCertificate(config, certKey, certPem, "certificate");
  if (!keyBelongsTo(certificate, keyPem, settingFailure(config, keyKey))) {
    throw new ConfigError(`${flagName(keyKey)} ${String(config[keyKey])} does not belong to ${flagName(certKey)} ${String(config[certKey])}; give the key the certificate was issued for`);
  }
}

/** True when two settings would serve the same certificates (a reload can skip the listener). */
export function sameTls(a: ListenerTls | null, b: ListenerTls | null): boolean {
  if (a === null || b === null) return a === b;
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}

/** The listeners configured for TLS (for the start line), without reading any file. */
export function tlsListeners(config: Config): ListenerName[] {
  return (["native", "kafka", "http"] as const).filter((listener) => isSet(config, keyFor(config, listener, "tlsCert")));
}
