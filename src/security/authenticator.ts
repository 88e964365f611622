/**
 * @module security/authenticator
 * Authentication as the listeners use it, one object per broker: whether it is required
 * (`authentication`), SCRAM exchanges against the credential store, password checks for SASL
 * PLAIN and HTTP Basic, and the guard against password guessing — a token bucket of failures per
 * source address (`authFailuresBurst`, refilled at `authFailuresPerMinute`): an address whose
 * bucket is empty is refused before any check runs (AUTHENTICATION_THROTTLED), so a guesser
 * costs the broker almost nothing and other clients do not notice it.
 *
 * Every failure is logged with the address, listener and mechanism, never with the user name:
 * a log line must not tell a reader which user names exist.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Config } from "../config.ts";
import { RunnelError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { CredentialStore } from "./credential-store.ts";
import { fakeVerifier, passwordMatches, type ScramMechanism, ScramServerExchange } from "./scram.ts";
import type { Principal, Session } from "./session.ts";

/**
 * Longest frame a connection may send before it has authenticated (when authentication is on):
 * enough for any SASL or SCRAM message, small enough that anonymous peers cannot make the broker
 * buffer frameBytesMax each. Kafka's own default for this (sasl.server.max.receive.size).
 */
export const PRE_AUTHENTICATION_FRAME_BYTES_MAX = 512 * 1024;

/** Addresses whose failures are remembered at once; beyond it the fullest buckets are forgotten. */
const FAILURE_ADDRESSES_MAX = 100_000;
/** Successful password checks remembered (HTTP Basic sends the password on every request). */
const PASSWORD_CACHE_MAX = 1_000;

export type AuthenticationMechanism = ScramMechanism | "PLAIN" | "BASIC";

export interface AuthenticationCounters {
  successes: number;
  failures: number;
  throttled: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class Authenticator {
  readonly counters: AuthenticationCounters = { successes: 0, failures: 0, throttled: 0 };
  private readonly buckets = new Map<string, Bucket>();
  /** sha256(user, password, salt) of recent successes → user; cleared when the store changes. */
  private readonly passwordCache = new Map<string, string>();

  constructor(
    private readonly config: Config,
    readonly store: CredentialStore,
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  static open(config: Config, logger: Logger): Authenticator {
    return new Authenticator(config, CredentialStore.open(config.dataDir), logger);
  }

  /** Authentication is on: unauthenticated connections may only authenticate. */
  get required(): boolean {
    return this.config.authentication === "scram";
  }

  /** Throws AUTHENTICATION_REQUIRED when authentication is on and `session` has not done it. */
  requireAuthenticated(session: Session, what: string): void {
    if (this.required && session.principal.kind === "anonymous") {
      throw new RunnelError("AUTHENTICATION_REQUIRED", `authenticate first: this broker requires authentication (SCRAM) before ${what}`);
    }
  }

  /** Throws AUTHENTICATION_THROTTLED when `address` used up its failures; call before any check. */
  admit(address: string): void {
    const bucket = this.refilled(address);
    if (bucket === null || bucket.tokens >= 1) return;
    this.counters.throttled++;
    const perMinute = this.config.authFailuresPerMinute;
    const retryAfterMs = Math.ceil(((1 - bucket.tokens) * 60_000) / perMinute);
    throw new RunnelError("AUTHENTICATION_THROTTLED", `too many failed authentications from ${address}; retry in ${retryAfterMs} ms`, { details: { retryAfterMs } });
  }

  /** A SCRAM exchange for `mechanism`; unknown users run on a fake verifier (scram.ts). */
  scramExchange(mechanism: ScramMechanism): ScramServerExchange {
    return new ScramServerExchange({
      mechanism,
      lookup: (user, wanted) => this.store.lookup(user, wanted),
      serverSecret: this.store.secret,
      fakeIterations: this.store.typicalIterations(mechanism),
    });
  }

  /**
   * Checks a clear-text password (SASL PLAIN, HTTP Basic) against the user's SHA-256 (else
   * SHA-512) verifier. An unknown user costs the same PBKDF2 run on a fake verifier.
   */
  checkPassword(user: string, password: string): boolean {
    const mechanism: ScramMechanism = this.store.lookup(user, "SCRAM-SHA-256") !== null || this.store.lookup(user, "SCRAM-SHA-512") === null ? "SCRAM-SHA-256" : "SCRAM-SHA-512";
    const found = this.store.lookup(user, mechanism);
    const verifier = found ?? fakeVerifier(mechanism, user, this.store.secret, this.store.typicalIterations(mechanism));
    const key = createHash("sha256").update(user).update("\u0000").update(password).update(verifier.salt).digest("base64");
    const cached = this.passwordCache.get(key);
    if (found !== null && cached !== undefined && timingSafeEqual(Buffer.from(cached), Buffer.from(user))) return true;
    const matches = passwordMatches(mechanism, verifier, password) && found !== null;
    if (matches) {
      if (this.passwordCache.size >= PASSWORD_CACHE_MAX) this.passwordCache.clear();
      this.passwordCache.set(key, user);
    }
    return matches;
  }

  /** Records a success: the session's principal becomes the user. */
  succeeded(session: Session, user: string): Principal {
    this.counters.successes++;
    const principal: Principal = { kind: "user", name: user };
    session.principal = principal;
    return principal;
  }

  /** Records a failure from `session`'s address: one token of its bucket, one log line. */
  failed(session: Session, mechanism: AuthenticationMechanism, reason: string): void {
    this.counters.failures++;
    this.takeToken(session.remoteAddress);
    this.logger.warn({ address: session.remoteAddress, listener: session.listener, mechanism, reason }, "authentication failed");
  }

  /** The store changed (users added or removed): forget cached password checks. */
  credentialsChanged(): void {
    this.passwordCache.clear();
  }

  private refilled(address: string): Bucket | null {
    const bucket = this.buckets.get(address);
    if (bucket === undefined) return null;
    const now = this.nowMs();
    const burst = this.config.authFailuresBurst;
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedMs) * this.config.authFailuresPerMinute) / 60_000);
    bucket.updatedMs = now;
    if (bucket.tokens >= burst) {
      this.buckets.delete(address);
      return null;
    }
    return bucket;
  }

  private takeToken(address: string): void {
    const bucket = this.refilled(address) ?? { tokens: this.config.authFailuresBurst, updatedMs: this.nowMs() };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    if (!this.buckets.has(address) && this.buckets.size >= FAILURE_ADDRESSES_MAX) this.forgetOldest();
    this.buckets.set(address, bucket);
  }

  /** Map order is insertion order: drop the earliest-inserted tenth. */
  private forgetOldest(): void {
    let dropped = 0;
    for (const address of this.buckets.keys()) {
      this.buckets.delete(address);
      if (++dropped >= FAILURE_ADDRESSES_MAX / 10) break;
    }
  }
}
