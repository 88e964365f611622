/**
 * @module security/session
 * Who is on the other end of one connection, as far as the broker knows: the listener it came in
 * on, the peer's address, the subject of a verified client certificate, and the principal the
 * core authorizes requests as. A listener creates one Session per connection and hands it to every
 * request's handler; authentication (SCRAM, SASL, a client certificate) replaces the principal,
 * the authorizer reads it. One object so that both protocols share one rule.
 */

export type ListenerName = "native" | "kafka" | "http";

/** The identity requests are authorized as. `anonymous` until something proves otherwise. */
export interface Principal {
  readonly kind: "user" | "anonymous";
  /** The user name (`kind: "user"`), or "ANONYMOUS". */
  readonly name: string;
}

export const ANONYMOUS: Principal = Object.freeze({ kind: "anonymous", name: "ANONYMOUS" });

export class Session {
  /** The principal the core authorizes this connection's requests as. */
  principal: Principal = ANONYMOUS;

  constructor(
    readonly listener: ListenerName,
    /** The peer's IP address (no port), for rate limits and log lines. */
    readonly remoteAddress: string,
    /** The verified client certificate's subject common name (mutual TLS), or null. */
    readonly certificateName: string | null = null,
  ) {}
}
