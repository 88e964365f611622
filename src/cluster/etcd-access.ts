/**
 * @module cluster/etcd-access
 * How a broker (or the CLI) proves itself to a secured etcd and checks that it talks to the right
 * one: TLS (the CA that signed etcd's certificate, and a client certificate when etcd runs with
 * `--client-cert-auth`) for `etcds://` cluster URLs, and etcd's own user/password authentication
 * (the password read from a file, never from the command line).
 *
 * Files are read and checked once, at start, so a missing or wrong file stops start-up with one
 * line naming the option and the file instead of failing every etcd call later.
 *
 * One combination etcd 3.4 itself refuses: a client certificate whose subject has a common name
 * together with etcd's authentication enabled. Its gateway then answers every request "CommonName
 * of client sending a request against gateway will be ignored and not used as expected" (HTTP
 * 400). Use either client certificates (etcd authentication off) or server-only TLS with a
 * password; docs/cluster.md, "Securing a cluster", says how.
 */
import type * as crypto from "node:crypto";
import * as fs from "node:fs";
import { RunnelError } from "../errors.ts";
import { keyBelongsTo, parseCertificatePem, type PemFailure, readPemFile } from "../security/pem-files.ts";

/** PEM text (not paths) for fetch()'s `tls`; `ca` replaces the system's trusted CAs. */
export interface EtcdTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface EtcdCredentials {
  readonly user: string;
  readonly password: string;
}

export interface EtcdAccess {
  /** TLS settings for https:// endpoints; null = the system's CAs, no client certificate. */
  readonly tls: EtcdTls | null;
  /** etcd authentication; null = none (etcd's auth disabled). */
  readonly credentials: EtcdCredentials | null;
}

export const NO_ETCD_ACCESS: EtcdAccess = { tls: null, credentials: null };

/** Where the settings come from, and what the user calls each one (a config option or a CLI flag). */
export interface EtcdAccessSource {
  /** True when the cluster URL is etcds:// (TLS). */
  readonly secure: boolean;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly user: string;
  /** A file whose first line is the password; "" when `password` is given instead. */
  readonly passwordFile: string;
  /** The password itself (the CLI reads it from RUNNEL_ETCD_PASSWORD); "" when from the file. */
  readonly password?: string;
  /** The name of each setting in messages, e.g. `--cluster-etcd-ca`. */
  readonly names: Readonly<Record<"caFile" | "certFile" | "keyFile" | "user" | "passwordFile", string>>;
}

/** Reads and checks the files; throws INVALID_CONFIG naming the setting and what to do. */
export function loadEtcdAccess(source: EtcdAccessSource): EtcdAccess {
  return { tls: loadTls(source), credentials: loadCredentials(source) };
}

function loadTls(source: EtcdAccessSource): EtcdTls | null {
  const { names } = source;
  const anyFile = source.caFile !== "" || source.certFile !== "" || source.keyFile !== "";
  if (!source.secure) {
    if (anyFile) throw invalid(`${names.caFile}/${names.certFile}/${names.keyFile} are for TLS, but the cluster URL is etcd:// (plain HTTP); use etcds://host:port/name`);
    return null;
  }
  if ((source.certFile === "") !== (source.keyFile === "")) {
    throw invalid(`${source.certFile === "" ? names.certFile : names.keyFile} is missing: a client certificate needs both ${names.certFile} and ${names.keyFile}`);
  }
  const tls: { ca?: string; cert?: string; key?: string } = {};
  if (source.caFile !== "") {
    tls.ca = readPem(source.caFile, names.caFile, "CA certificate");
    certificateOf(tls.ca, source.caFile, names.caFile);
  }
  if (source.certFile !== "") {
    tls.cert = readPem(source.certFile, names.certFile, "certificate");
    tls.key = readPem(source.keyFile, names.keyFile, "private key");
    checkPair(tls.cert, tls.key, source, names);
  }
  return tls;
}

function loadCredentials(source: EtcdAccessSource): EtcdCredentials | null {
  const { names } = source;
  const hasPassword = source.passwordFile !== "" || (source.password ?? "") !== "";
  if (source.user === "") {
    if (hasPassword) throw invalid(`a password for etcd is given but ${names.user} is not; set the etcd user it belongs to`);
    return null;
  }
  if (!hasPassword) throw invalid(`${names.user} ${JSON.stringify(source.user)} needs a password: give ${names.passwordFile} (a file whose first line is the password)`);
  if ((source.password ?? "") !== "") return { user: source.user, password: source.password as string };
  let text: string;
  try {
    text = fs.readFileSync(source.passwordFile, "utf8");
  } catch (error) {
    throw invalid(`${names.passwordFile} ${source.passwordFile} cannot be read (${messageOf(error)}); give a readable file holding the etcd password`);
  }
  const password = text.split("\n")[0]?.replace(/\r$/, "") ?? "";
  if (password === "") throw invalid(`${names.passwordFile} ${source.passwordFile} is empty; its first line must be the etcd password`);
  return { user: source.user, password };
}

/** A setting's failure as INVALID_CONFIG: its name and file, then the reason. */
function settingFailure(name: string, file: string): PemFailure {
  return (why) => invalid(`${name} ${file}: ${why}`);
}

function readPem(file: string, name: string, what: string): string {
  return readPemFile(file, what, settingFailure(name, file));
}

function certificateOf(pem: string, file: string, name: string): crypto.X509Certificate {
  return parseCertificatePem(pem, "certificate", settingFailure(name, file));
}

function checkPair(cert: string, key: string, source: EtcdAccessSource, names: EtcdAccessSource["names"]): void {
  const certificate = certificateOf(cert, source.certFile, names.certFile);
  if (!keyBelongsTo(certificate, key, settingFailure(names.keyFile, source.keyFile))) throw invalid(`${names.keyFile} ${source.keyFile} does not belong to ${names.certFile} ${source.certFile}`);
}

function invalid(message: string): RunnelError {
  return new RunnelError("INVALID_CONFIG", message);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
