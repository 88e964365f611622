/**
 * @module listeners/kafka/sasl
 * SASL on the Kafka listener, shared by SaslHandshake, SaslAuthenticate and the raw-token
 * framing of handshake v0: the state of each connection's exchange and one step of it.
 *
 *   ApiVersions → SaslHandshake{mechanism} → SaslAuthenticate{token}... (handshake v1)
 *   ApiVersions → SaslHandshake v0{mechanism} → raw frames: u32 size + token, answered alike
 *
 * Mechanisms: SCRAM-SHA-256 and SCRAM-SHA-512 (two tokens each way, security/scram.ts), and PLAIN
 * (one token `authzid NUL user NUL password`), which sends the password in the clear and is
 * refused on a listener without TLS unless `saslPlainOverPlaintext`.
 *
 * Kafka's behaviour, which clients expect: a failed authentication is answered (SaslAuthenticate
 * with SASL_AUTHENTICATION_FAILED, 58) and the connection then closed; a request other than
 * ApiVersions, SaslHandshake or SaslAuthenticate before authenticating closes it at once.
 */
import { RunnelError } from "../../errors.ts";
import type { AuthenticationMechanism } from "../../security/authenticator.ts";
import { isScramMechanism, ScramError, type ScramServerExchange } from "../../security/scram.ts";
import type { Session } from "../../security/session.ts";
import type { KafkaStruct } from "./codec.ts";
import type { KafkaContext } from "./context.ts";
import { KAFKA_ERROR } from "./errors.ts";

export const SASL_MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] as const;
type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Longest SASL token taken (SCRAM messages are ~200 bytes; PLAIN: two names and a password). */
export const SASL_TOKEN_BYTES_MAX = 4096;

interface SaslState {
  mechanism: SaslMechanism;
  /** Handshake v0: tokens come as raw frames, not SaslAuthenticate requests. */
  raw: boolean;
  scram: ScramServerExchange | null;
}

const states = new WeakMap<Session, SaslState>();
const tlsSessions = new WeakSet<Session>();
/** Response bodies after which the connection closes (a failed authentication). */
const closing = new WeakSet<KafkaStruct>();

/** The listener marks the sessions of TLS connections (PLAIN is allowed on them). */
export function markTlsSession(session: Session): void {
  tlsSessions.add(session);
}

export function closesConnection(body: KafkaStruct): boolean {
  return closing.has(body);
}

/** True when this connection must authenticate before anything but ApiVersions and SASL. */
export function mustAuthenticate(context: KafkaContext, session: Session): boolean {
  return context.broker.authenticator.required && session.principal.kind === "anonymous";
}

/** Handshake v0 succeeded: the next frame is a raw token. */
export function expectsRawToken(session: Session): boolean {
  return states.get(session)?.raw === true;
}

/** SaslHandshake: picks the mechanism for the tokens that follow. */
export function startHandshake(context: KafkaContext, session: Session, mechanism: string, version: number): KafkaStruct {
  const offered = offeredMechanisms(context, session);
  if (!(offered as string[]).includes(mechanism)) {
    states.delete(session);
    return { errorCode: KAFKA_ERROR.UNSUPPORTED_SASL_MECHANISM, mechanisms: offered };
  }
  states.set(session, { mechanism: mechanism as SaslMechanism, raw: version === 0, scram: null });
  return { errorCode: KAFKA_ERROR.NONE, mechanisms: offered };
}

function offeredMechanisms(context: KafkaContext, session: Session): string[] {
  const plainAllowed = tlsSessions.has(session) || context.broker.config.saslPlainOverPlaintext;
  return SASL_MECHANISMS.filter((mechanism) => mechanism !== "PLAIN" || plainAllowed);
}

export interface TokenResult {
  errorCode: number;
  errorMessage: string | null;
  token: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const textDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

/** One SASL token in, one out. On failure the caller answers and closes the connection. */
export function authenticateStep(context: KafkaContext, session: Session, token: Uint8Array): TokenResult {
  const state = states.get(session);
  if (state === undefined) return { errorCode: KAFKA_ERROR.ILLEGAL_SASL_STATE, errorMessage: "SaslAuthenticate before a successful SaslHandshake", token: EMPTY };
  const authenticator = context.broker.authenticator;
  try {
    authenticator.admit(session.remoteAddress);
  } catch (error) {
    states.delete(session);
    return { errorCode: KAFKA_ERROR.SASL_AUTHENTICATION_FAILED, errorMessage: error instanceof Error ? error.message : String(error), token: EMPTY };
  }
  try {
    if (token.length > SASL_TOKEN_BYTES_MAX) throw new ScramError(`a ${token.length}-byte SASL token is longer than ${SASL_TOKEN_BYTES_MAX} bytes`);
    const text = textDecoder.decode(token);
    const answer = state.mechanism === "PLAIN" ? plainStep(context, session, text) : scramStep(context, session, state, text);
    if (answer.done) states.delete(session);
    return { errorCode: KAFKA_ERROR.NONE, errorMessage: null, token: textEncoder.encode(answer.reply) };
  } catch (error) {
    states.delete(session);
    if (!(error instanceof ScramError) && !(error instanceof TypeError)) throw error;
    authenticator.failed(session, state.mechanism as AuthenticationMechanism, error.message);
    return { errorCode: KAFKA_ERROR.SASL_AUTHENTICATION_FAILED, errorMessage: `Authentication failed with SASL mechanism ${state.mechanism}: unknown user or wrong password`, token: EMPTY };
  }
}

function plainStep(context: KafkaContext, session: Session, text: string): { reply: string; done: boolean } {
  const parts = text.split("\u0000");
  if (parts.length !== 3) throw new ScramError("malformed PLAIN token: expected authzid NUL user NUL password");
  const [authzid, user, password] = parts as [string, string, string];
  if (authzid !== "" && authzid !== user) throw new ScramError("PLAIN: an authorization identity other than the user is not supported");
  if (!context.broker.authenticator.checkPassword(user, password)) throw new ScramError("authentication failed");
  context.broker.authenticator.succeeded(session, user);
  return { reply: "", done: true };
}

function scramStep(context: KafkaContext, session: Session, state: SaslState, text: string): { reply: string; done: boolean } {
  if (state.scram === null) {
    if (!isScramMechanism(state.mechanism)) throw new RunnelError("INTERNAL", `not a SCRAM mechanism: ${state.mechanism}`);
    state.scram = context.broker.authenticator.scramExchange(state.mechanism);
    return { reply: state.scram.first(text), done: false };
  }
  const { serverFinal, user } = state.scram.final(text);
  context.broker.authenticator.succeeded(session, user);
  return { reply: serverFinal, done: true };
}

/** A SaslAuthenticate response body; a failure's body is marked to close the connection after it. */
export function authenticateResponse(result: TokenResult): KafkaStruct {
  const body: KafkaStruct = { errorCode: result.errorCode, errorMessage: result.errorMessage, authBytes: result.token, sessionLifetimeMs: 0 };
  if (result.errorCode !== KAFKA_ERROR.NONE) closing.add(body);
  return body;
}
