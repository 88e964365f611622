/**
 * @module server/handlers/authenticate
 * `authenticate`: a SCRAM exchange (security/scram.ts) in two round trips over the ordinary
 * framing (docs/protocol.md, authenticate):
 *
 *   {op: "authenticate", mechanism, message: client-first}  → {message: server-first, done: false}
 *   {op: "authenticate", mechanism, message: client-final}  → {message: server-final, done: true, user}
 *
 * The exchange in progress belongs to the connection's Session (a WeakMap: nothing to clean up
 * when the connection goes). A failure at either step answers AUTHENTICATION_FAILED, ends the
 * exchange and costs the peer's address a token (security/authenticator.ts); an address out of
 * tokens gets AUTHENTICATION_THROTTLED before anything is checked, and the connection closes.
 * Non-obvious: a client-first message always starts a new exchange, so a client that lost an
 * answer simply starts over.
 */
import { RunnelError } from "../../errors.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import { ScramError, type ScramServerExchange } from "../../security/scram.ts";
import type { Session } from "../../security/session.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

const exchanges = new WeakMap<Session, ScramServerExchange>();

export function handleAuthenticate(context: BrokerContext, request: RequestOf<"authenticate">, id: number, session: Session): Reply {
  const authenticator = context.authenticator;
  authenticator.admit(session.remoteAddress);
  const isFirst = request.message.startsWith("n,") || request.message.startsWith("y,") || request.message.startsWith("p=");
  const pending = exchanges.get(session);
  exchanges.delete(session);
  try {
    if (isFirst) {
      const exchange = authenticator.scramExchange(request.mechanism);
      const serverFirst = exchange.first(request.message);
      exchanges.set(session, exchange);
      return frameReply(id, { message: serverFirst, done: false });
    }
    if (pending === undefined || pending.mechanism !== request.mechanism) throw new ScramError("client-final message without a client-first message of the same mechanism before it");
    const { serverFinal, user } = pending.final(request.message);
    authenticator.succeeded(session, user);
    return frameReply(id, { message: serverFinal, done: true, user });
  } catch (error) {
    if (!(error instanceof ScramError)) throw error;
    authenticator.failed(session, request.mechanism, error.message);
    // The reason is logged; the answer is the same for every failure, so it tells nothing.
    const message = error.message === "authentication failed" ? "authentication failed: unknown user or wrong password" : `authentication failed: ${error.message}`;
    throw new RunnelError("AUTHENTICATION_FAILED", message);
  }
}
