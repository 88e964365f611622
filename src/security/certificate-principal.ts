/**
 * @module security/certificate-principal
 * Mutual TLS as authentication: once a listener with `tlsCa` has verified a client certificate,
 * the connection's principal is `User:<CN>`, the common name of the certificate's subject.
 * Kafka's default mapping takes the whole distinguished name (`User:CN=alice,OU=...`); Runnel
 * takes the CN alone, so one ACL entry names a user whether it logs in with a certificate or
 * (issue 12's SCRAM) a password. A certificate without a CN leaves the session anonymous.
 */
import type { Session } from "./session.ts";

/** What a TLS socket tells of its peer's certificate (Bun's Socket.getPeerCertificate()). */
export interface PeerCertificateSource {
  getPeerCertificate(): { subject?: unknown } | null | undefined;
}

/** The subject CN of a verified peer certificate, or null; the first one when several are given. */
export function certificateCommonName(socket: PeerCertificateSource): string | null {
  let certificate: { subject?: unknown } | null | undefined;
  try {
    certificate = socket.getPeerCertificate();
  } catch {
    return null; // not a TLS socket, or closed meanwhile
  }
  const subject = certificate?.subject;
  if (typeof subject !== "object" || subject === null) return null;
  const commonName: unknown = (subject as Record<string, unknown>).CN;
  const name = Array.isArray(commonName) ? commonName[0] : commonName;
  return typeof name === "string" && name.length > 0 ? name : null;
}

/**
 * Called from a listener's TLS handshake callback: with a verified certificate, the session
 * becomes its subject's CN. An unverified one changes nothing (Bun closes that socket when the
 * listener requires certificates).
 */
export function adoptClientCertificate(session: Session, socket: PeerCertificateSource, authorized: boolean): void {
  if (!authorized) return;
  const name = certificateCommonName(socket);
  if (name === null) return;
  session.certificateName = name;
  session.principal = { kind: "user", name };
}
