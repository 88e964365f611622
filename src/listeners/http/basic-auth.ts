/**
 * @module listeners/http/basic-auth
 * HTTP Basic authentication for the HTTP listener when `authentication` is scram: every route but
 * /health and /ready (the probes a load balancer sends without credentials) needs
 * `Authorization: Basic base64(user:password)`, checked against the same SCRAM verifiers as the
 * other listeners (security/authenticator.ts checkPassword: the password's StoredKey is derived
 * and compared). A missing or wrong one gets 401 with a `WWW-Authenticate` challenge (so a browser
 * asks for it once and then sends it with every console request); an address that failed too
 * often gets 429 without any check. Basic sends the password with every request: serve the HTTP
 * listener with TLS (docs/security.md).
 */
import type { Session } from "../../security/session.ts";
import type { BrokerView } from "./broker-view.ts";

/** Paths open to everyone: liveness and readiness probes. */
const OPEN_PATHS: ReadonlySet<string> = new Set(["/health", "/ready"]);
/** Longest Authorization header read (a user name and password fit many times over). */
const AUTHORIZATION_LENGTH_MAX = 4096;
const CHALLENGE = { "www-authenticate": 'Basic realm="runnel", charset="UTF-8"', "cache-control": "no-store" };

function refusal(status: number, code: string, message: string, headers: Record<string, string> = { "cache-control": "no-store" }): Response {
  return Response.json({ error: { code, message } }, { status, headers });
}

/** Parses `Basic base64(user:password)`; null when absent or malformed. */
export function parseBasic(header: string | null): { user: string; password: string } | null {
  if (header === null || header.length > AUTHORIZATION_LENGTH_MAX) return null;
  const match = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header);
  if (match === null) return null;
  const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Null when the request may go on (authentication off, an open path, or valid credentials: the
 * session's principal is then the user); else the response that refuses it.
 */
export function authenticateHttp(view: BrokerView, request: Request, path: string, session: Session): Response | null {
  if (!view.authenticationRequired || OPEN_PATHS.has(path)) return null;
  const authenticator = view.context?.authenticator;
  // The users are read with the log, after recovery: until then only the probes answer.
  if (authenticator === undefined) return refusal(503, "NOT_READY", `the broker is ${view.phase}; credentials can be checked once it is ready`);
  try {
    authenticator.admit(session.remoteAddress);
  } catch (error) {
    return refusal(429, "AUTHENTICATION_THROTTLED", error instanceof Error ? error.message : String(error));
  }
  const credentials = parseBasic(request.headers.get("authorization"));
  if (credentials === null) return refusal(401, "AUTHENTICATION_REQUIRED", "this broker requires authentication: send HTTP Basic credentials of a Runnel user", CHALLENGE);
  if (!authenticator.checkPassword(credentials.user, credentials.password)) {
    authenticator.failed(session, "BASIC", "wrong password or unknown user");
    return refusal(401, "AUTHENTICATION_FAILED", "unknown user or wrong password", CHALLENGE);
  }
  authenticator.succeeded(session, credentials.user);
  return null;
}
