/**
 * @module security/scram
 * SCRAM (RFC 5802) with SHA-256 (RFC 7677) and SHA-512, sans-IO: the verifier derived from a
 * password, the server side of one exchange, and the client side our client and CLI use. The
 * native `authenticate` op, Kafka's SaslAuthenticate and the HTTP listener's Basic check all
 * run on this one file.
 *
 * The exchange, as text messages (RFC 5802, section 5):
 *
 *   client-first  n,,n=<saslname>,r=<client nonce>
 *   server-first  r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
 *   client-final  c=biws,r=<client nonce><server nonce>,p=<base64 ClientProof>
 *   server-final  v=<base64 ServerSignature>      (or e=<error> on failure)
 *
 *   SaltedPassword  = PBKDF2(HMAC-H, password, salt, iterations)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key");  StoredKey = H(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-bare + "," + server-first + "," + client-final-without-proof
 *   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * Non-obvious:
 * - Only channel binding "n" (the client does not support it) is accepted; "y" and "p=" are
 *   refused, as are SCRAM extensions ("m=").
 * - A user the store does not know gets a fake verifier derived from its name and a server
 *   secret (fakeVerifier): the exchange runs the same steps and fails at the same proof check,
 *   so neither answer nor work tells whether the user exists.
 * - librdkafka before 2.6.1 (kcat, confluent-kafka-python ...) answers the nonce with its client
 *   nonce prepended once more (librdkafka PR #4895; Kafka 3.8.1-3.9 accepted it too). That form is
 *   accepted as well: it still holds this exchange's fresh server nonce, so a replay still fails,
 *   and the proof is computed over the message exactly as the client sent it.
 * - An exchange is single use: a second client-final on it (a replay) is refused, and a client
 *   final from another exchange fails the nonce check, since every server nonce is fresh.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export type ScramMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-512";
export const SCRAM_MECHANISMS: readonly ScramMechanism[] = ["SCRAM-SHA-256", "SCRAM-SHA-512"];

/** RFC 7677's floor; the broker's `scramIterationsMin` may raise it, never lower it. */
export const SCRAM_ITERATIONS_MIN = 4096;
/** What `runnel users add` stores unless told otherwise. */
export const SCRAM_ITERATIONS_DEFAULT = 8192;
/** Bounds a client accepts from a server (a hostile one could ask for a billion rounds). */
export const SCRAM_ITERATIONS_MAX = 1_000_000;
/** Longest SCRAM message either side accepts (user names and nonces are short). */
export const SCRAM_MESSAGE_BYTES_MAX = 1024;
export const SCRAM_SALT_BYTES = 16;
const NONCE_BYTES = 18;

const HASH_OF: Record<ScramMechanism, { hash: "sha256" | "sha512"; keyBytes: number }> = {
  "SCRAM-SHA-256": { hash: "sha256", keyBytes: 32 },
  "SCRAM-SHA-512": { hash: "sha512", keyBytes: 64 },
};

export function isScramMechanism(value: string): value is ScramMechanism {
  return value === "SCRAM-SHA-256" || value === "SCRAM-SHA-512";
}

/** What the broker keeps per user and mechanism: never the password. */
export interface ScramVerifier {
  salt: Uint8Array;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

/** Why an exchange failed; the message never says whether the user exists. */
export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScramError";
  }
}

function hmac(mechanism: ScramMechanism, key: Uint8Array, text: string | Uint8Array): Uint8Array {
  return createHmac(HASH_OF[mechanism].hash, key).update(text).digest();
}

function digest(mechanism: ScramMechanism, bytes: Uint8Array): Uint8Array {
  return createHash(HASH_OF[mechanism].hash).update(bytes).digest();
}

export function saltedPassword(mechanism: ScramMechanism, password: string, salt: Uint8Array, iterations: number): Uint8Array {
  const { hash, keyBytes } = HASH_OF[mechanism];
  return pbkdf2Sync(password.normalize("NFKC"), salt, iterations, keyBytes, hash);
}

/** The verifier of `password`: what the credential store keeps. */
export function deriveVerifier(mechanism: ScramMechanism, password: string, iterations: number, salt: Uint8Array = randomBytes(SCRAM_SALT_BYTES)): ScramVerifier {
  const salted = saltedPassword(mechanism, password, salt, iterations);
  const clientKey = hmac(mechanism, salted, "Client Key");
  return { salt, iterations, storedKey: digest(mechanism, clientKey), serverKey: hmac(mechanism, salted, "Server Key") };
}

/** True when `password` is the one `verifier` was derived from (HTTP Basic, SASL PLAIN). */
export function passwordMatches(mechanism: ScramMechanism, verifier: ScramVerifier, password: string): boolean {
  const salted = saltedPassword(mechanism, password, verifier.salt, verifier.iterations);
  const storedKey = digest(mechanism, hmac(mechanism, salted, "Client Key"));
  return timingSafeEqual(storedKey, verifier.storedKey);
}

/**
 * A stand-in verifier for a user that does not exist: stable per name (so repeated attempts see
 * the same salt, as for a real user) and unguessable without `serverSecret`.
 */
export function fakeVerifier(mechanism: ScramMechanism, user: string, serverSecret: Uint8Array, iterations: number): ScramVerifier {
  const seed = hmac(mechanism, serverSecret, `${mechanism}\u0000${user}`);
  return {
    salt: seed.subarray(0, SCRAM_SALT_BYTES),
    iterations,
    storedKey: hmac(mechanism, seed, "stored"),
    serverKey: hmac(mechanism, seed, "server"),
  };
}

// ---------------------------------------------------------------- saslname

/** RFC 5802 saslname: "," is "=2C" and "=" is "=3D". */
export function escapeSaslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

export function unescapeSaslName(text: string): string {
  if (/=(?!2C|3D)/.test(text)) throw new ScramError("malformed user name: '=' must be followed by 2C or 3D");
  return text.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

// ---------------------------------------------------------------- message parsing

/** `a=1,b=2` into its attributes, in order; throws ScramError on a malformed part. */
function attributes(text: string): Array<[string, string]> {
  return text.split(",").map((part) => {
    if (part.length < 2 || part[1] !== "=" || !/^[a-zA-Z]$/.test(part[0] ?? "")) throw new ScramError(`malformed SCRAM attribute '${part.slice(0, 32)}'`);
    return [part[0] as string, part.slice(2)];
  });
}

function expectAttribute(parts: Array<[string, string]>, index: number, name: string): string {
  const part = parts[index];
  if (part === undefined || part[0] !== name) throw new ScramError(`expected attribute '${name}=' at position ${index + 1}`);
  return part[1];
}

/** Printable ASCII except ",": RFC 5802's nonce alphabet. */
function checkNonce(nonce: string): void {
  if (nonce.length === 0 || !/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) throw new ScramError("malformed nonce: printable ASCII other than ',' expected");
}

function checkLength(message: string): void {
  if (message.length > SCRAM_MESSAGE_BYTES_MAX) throw new ScramError(`SCRAM message longer than ${SCRAM_MESSAGE_BYTES_MAX} bytes`);
}

export interface ClientFirst {
  user: string;
  clientNonce: string;
  /** client-first-message-bare, part of AuthMessage. */
  bare: string;
}

/** Parses `n,,n=<user>,r=<nonce>` (an authzid equal to the user is allowed). */
export function parseClientFirst(message: string): ClientFirst {
  checkLength(message);
  if (message.startsWith("y,") || message.startsWith("p=")) throw new ScramError("channel binding is not supported: send the gs2 header 'n,,'");
  if (!message.startsWith("n,")) throw new ScramError("malformed client-first message: expected the gs2 header 'n,,'");
  const headerEnd = message.indexOf(",", 2);
  if (headerEnd < 0) throw new ScramError("malformed client-first message: no gs2 header");
  const authzid = message.slice(2, headerEnd);
  const bare = message.slice(headerEnd + 1);
  const parts = attributes(bare);
  if (parts[0]?.[0] === "m") throw new ScramError("SCRAM extensions are not supported");
  const user = unescapeSaslName(expectAttribute(parts, 0, "n"));
  const clientNonce = expectAttribute(parts, 1, "r");
  checkNonce(clientNonce);
  if (user.length === 0) throw new ScramError("empty user name");
  if (authzid !== "" && (!authzid.startsWith("a=") || unescapeSaslName(authzid.slice(2)) !== user)) {
    throw new ScramError("an authorization identity other than the user is not supported");
  }
  return { user, clientNonce, bare };
}

// ---------------------------------------------------------------- server

/** Looks a verifier up; null for an unknown user (the exchange then runs on a fake one). */
export type VerifierLookup = (user: string, mechanism: ScramMechanism) => ScramVerifier | null;

export interface ScramServerOptions {
  mechanism: ScramMechanism;
  lookup: VerifierLookup;
  /** Derives fake verifiers for unknown users (fakeVerifier). */
  serverSecret: Uint8Array;
  /** The iterations a fake verifier claims: the store's typical count, so both look alike. */
  fakeIterations: number;
}

type ServerState = { step: "first" } | { step: "final"; user: string; known: boolean; verifier: ScramVerifier; clientNonce: string; nonce: string; authPrefix: string; gs2Header: string } | { step: "done" };

/**
 * The server side of one exchange: `first(clientFirst)` gives server-first, `final(clientFinal)`
 * gives server-final and the authenticated user, or throws ScramError. Single use.
 */
export class ScramServerExchange {
  private state: ServerState = { step: "first" };

  constructor(private readonly options: ScramServerOptions) {}

  get mechanism(): ScramMechanism {
    return this.options.mechanism;
  }

  /** The user the client claimed in client-first (for rate limits; may not exist). */
  get claimedUser(): string | null {
    return this.state.step === "final" ? this.state.user : null;
  }

  first(message: string): string {
    if (this.state.step !== "first") throw new ScramError("client-first message sent twice in one exchange");
    this.state = { step: "done" };
    const parsed = parseClientFirst(message);
    const { mechanism, lookup, serverSecret, fakeIterations } = this.options;
    const found = lookup(parsed.user, mechanism);
    const verifier = found ?? fakeVerifier(mechanism, parsed.user, serverSecret, fakeIterations);
    const nonce = parsed.clientNonce + randomBytes(NONCE_BYTES).toString("base64");
    const serverFirst = `r=${nonce},s=${Buffer.from(verifier.salt).toString("base64")},i=${verifier.iterations}`;
    const gs2Header = message.slice(0, message.length - parsed.bare.length);
    this.state = { step: "final", user: parsed.user, known: found !== null, verifier, clientNonce: parsed.clientNonce, nonce, authPrefix: `${parsed.bare},${serverFirst}`, gs2Header };
    return serverFirst;
  }

  /** Checks client-final; gives server-final and the user. Throws ScramError on any mismatch. */
  final(message: string): { serverFinal: string; user: string } {
    const state = this.state;
    if (state.step !== "final") throw new ScramError(state.step === "first" ? "client-final message before client-first" : "this exchange is over: a client-final message is accepted once");
    this.state = { step: "done" };
    checkLength(message);
    const mechanism = this.options.mechanism;
    const proofAt = message.lastIndexOf(",p=");
    if (proofAt < 0) throw new ScramError("malformed client-final message: no proof");
    const withoutProof = message.slice(0, proofAt);
    const parts = attributes(withoutProof);
    const binding = expectAttribute(parts, 0, "c");
    if (binding !== Buffer.from(state.gs2Header).toString("base64")) throw new ScramError("channel binding does not match the gs2 header of client-first");
    const nonce = expectAttribute(parts, 1, "r");
    if (nonce !== state.nonce && nonce !== state.clientNonce + state.nonce) throw new ScramError("nonce mismatch: the client-final message does not belong to this exchange");
    const proof = Buffer.from(message.slice(proofAt + 3), "base64");
    const authMessage = `${state.authPrefix},${withoutProof}`;
    const clientSignature = hmac(mechanism, state.verifier.storedKey, authMessage);
    if (proof.length !== clientSignature.length) throw new ScramError("authentication failed");
    const clientKey = xor(proof, clientSignature);
    const matches = timingSafeEqual(digest(mechanism, clientKey), state.verifier.storedKey);
    if (!matches || !state.known) throw new ScramError("authentication failed");
    const serverSignature = hmac(mechanism, state.verifier.serverKey, authMessage);
    return { serverFinal: `v=${Buffer.from(serverSignature).toString("base64")}`, user: state.user };
  }
}

function xor(left: Uint8Array, right: Uint8Array): Uint8Array {
  const out = new Uint8Array(left.length);
  for (let index = 0; index < left.length; index++) out[index] = (left[index] ?? 0) ^ (right[index] ?? 0);
  return out;
}

// ---------------------------------------------------------------- client

export interface ScramClientOptions {
  mechanism: ScramMechanism;
  user: string;
  password: string;
  /** Refuse a server asking fewer rounds than this (a downgrade). */
  iterationsMin?: number;
  /** Tests only: a fixed client nonce (RFC 7677's vector). */
  clientNonce?: string;
}

/** The client side of one exchange: first() → final(serverFirst) → verify(serverFinal). */
export class ScramClientExchange {
  private readonly clientNonce: string;
  private readonly bare: string;
  private expectedServerSignature: Uint8Array | null = null;

  constructor(private readonly options: ScramClientOptions) {
    this.clientNonce = options.clientNonce ?? randomBytes(NONCE_BYTES).toString("base64");
    this.bare = `n=${escapeSaslName(options.user)},r=${this.clientNonce}`;
  }

  first(): string {
    return `n,,${this.bare}`;
  }

  final(serverFirst: string): string {
    checkLength(serverFirst);
    if (serverFirst.startsWith("e=")) throw new ScramError(`the server refused: ${serverFirst.slice(2)}`);
    const parts = attributes(serverFirst);
    const nonce = expectAttribute(parts, 0, "r");
    const salt = Buffer.from(expectAttribute(parts, 1, "s"), "base64");
    const iterations = Number(expectAttribute(parts, 2, "i"));
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) throw new ScramError("the server's nonce does not extend ours");
    const iterationsMin = this.options.iterationsMin ?? SCRAM_ITERATIONS_MIN;
    if (!Number.isInteger(iterations) || iterations < iterationsMin || iterations > SCRAM_ITERATIONS_MAX) {
      throw new ScramError(`the server asked for ${iterations} iterations; accepted: ${iterationsMin} to ${SCRAM_ITERATIONS_MAX}`);
    }
    const mechanism = this.options.mechanism;
    const salted = saltedPassword(mechanism, this.options.password, salt, iterations);
    const clientKey = hmac(mechanism, salted, "Client Key");
    const storedKey = digest(mechanism, clientKey);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.bare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(mechanism, storedKey, authMessage));
    this.expectedServerSignature = hmac(mechanism, hmac(mechanism, salted, "Server Key"), authMessage);
    return `${withoutProof},p=${Buffer.from(proof).toString("base64")}`;
  }

  /** Checks the server's signature: proof that the server holds our verifier (not an impostor). */
  verify(serverFinal: string): void {
    if (serverFinal.startsWith("e=")) throw new ScramError(`the server refused: ${serverFinal.slice(2)}`);
    const expected = this.expectedServerSignature;
    if (expected === null || !serverFinal.startsWith("v=")) throw new ScramError("malformed server-final message");
    const signature = Buffer.from(serverFinal.slice(2), "base64");
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw new ScramError("the server's signature is wrong: it does not hold this user's verifier");
  }
}
