/**
 * @module security/pem-files
 * Reading and checking the PEM files a setting names (listener certificates, the cluster's CA,
 * etcd's client certificate): the file must be readable, hold a PEM block, parse, and a private
 * key must belong to its certificate. Each caller says how to report a failure (`fail`: its error
 * class, with the setting's name and file in front of the reason), so an operator reads one
 * line naming what to fix instead of a bare OpenSSL code at the first handshake.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";

/** Makes the caller's error from a reason such as "not a PEM private key (no -----BEGIN line)". */
export type PemFailure = (why: string) => Error;

/** The file's text, once it is readable and holds a PEM block. */
export function readPemFile(file: string, what: string, fail: PemFailure): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw fail(`cannot read the ${what} file${typeof code === "string" ? ` [${code}]` : ""}`);
  }
  if (!text.includes("-----BEGIN ")) throw fail(`not a PEM ${what} (no -----BEGIN line)`);
  return text;
}

/** The certificate in `pem`, or fail("not a valid <what> (...)"). */
export function parseCertificatePem(pem: string, what: string, fail: PemFailure): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch (error) {
    throw fail(`not a valid ${what} (${messageOf(error)})`);
  }
}

/** Whether the private key in `keyPem` belongs to `certificate`; failKey when it is no key at all. */
export function keyBelongsTo(certificate: crypto.X509Certificate, keyPem: string, failKey: PemFailure): boolean {
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(keyPem);
  } catch (error) {
    throw failKey(`not a valid private key (${messageOf(error)})`);
  }
  return certificate.checkPrivateKey(privateKey);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
