/**
 * @module client/link
 * One socket's life, for client/connection.ts: its framing, its in-order answers, its queue of
 * requests awaiting them, its outbound bytes and its requests' deadlines.
 *
 * - Answers come in request order (docs/protocol.md section 1), so the answer at hand always
 *   belongs to the oldest waiting request (`pending`, a queue with a moving head).
 * - At most `requestsInFlightMax` requests wait for answers; more wait here (`waiting`) and are
 *   written as answers come in.
 * - Bytes the kernel does not take at once queue in `outbound` until the socket drains.
 * - One timer serves every request's deadline; a request that times out resets the link,
 *   since everything behind it would stall.
 * - A link dies once (`destroy`): everything waiting on it fails with the same error, and the
 *   Connection is told (`onDead`) so the next request opens a fresh link.
 *
 * The handshake is the Connection's: until it calls `adoptLimits`, frames are limited to the
 * size a `hello` answer needs and in-flight requests to the protocol's default.
 */
import type { Decoder } from "@msgpack/msgpack";
import type { Socket } from "bun";
import { RunnelError, toRunnelError } from "../errors.ts";
import { KiB, LIMITS, MiB } from "../limits.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import { createResponseDecoder } from "./frame.ts";
import { type WireMap, brokerError, malformed, readMap } from "./wire.ts";

/** How a request's outcome is reported: exactly one of `error` and `response` is non-null. */
export type AnswerCallback = (error: RunnelError | null, response: WireMap | null) => void;

/**
 * TLS for a client's connections (docs/security.md). PEM text, not paths. `ca` replaces the
 * system's trusted CAs (for a broker with a private CA); `cert` + `key` answer a broker that
 * requires client certificates (mutual TLS); `serverName` is the name the broker's certificate
 * must carry when it is not the host connected to.
 */
export interface ClientTls {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** A promise of the answer `send` reports to the callback it is given. */
export function answerAsPromise(send: (done: AnswerCallback) => void): Promise<WireMap> {
  return new Promise((resolve, reject) => send((error, response) => (error !== null ? reject(error) : resolve(response!))));
}

/**
 * Reads an answer's frame body without the generic decoder, or returns null to have it decoded
 * the generic way (client/answer-readers.ts). What it returns may be reused by its next call:
 * the request's callback gets it at once and must not keep it.
 */
export type AnswerReader = (body: Uint8Array) => WireMap | null;

interface Pending {
  id: number;
  op: string;
  done: AnswerCallback;
  /** Date.now() by which the answer must come; 0: no limit. */
  deadlineMs: number;
  timeoutMs: number;
  readAnswer: AnswerReader | null;
}

/** Settled Pending records kept for reuse per link: one per request in flight is garbage otherwise. */
const SPARE_PENDING_MAX = 64;

interface Waiting {
  pending: Pending;
  frame: Uint8Array[];
  timeoutMs: number;
}

/** Writes one request frame for correlation id `id`, as chunks to be written in order. */
export type EncodeFrame = (id: number) => Uint8Array[];

/**
 * Calls a request's callback; what it throws must not disturb the connection half way through
 * its answers, so it is rethrown on a later microtask (an uncaught error, as from a promise).
 */
function answer(done: AnswerCallback, error: RunnelError | null, response: WireMap | null): void {
  try {
    done(error, response);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}

/** How large a frame may be before `hello` has answered: enough for that answer. */
const HELLO_FRAME_BYTES_MAX = 1 * MiB;
/** The limits assumed until `hello` answers (the protocol's defaults); the handshake falls back on them too. */
export const DEFAULT_LIMITS = { frameBytesMax: 16 * MiB, batchBytesMax: 16 * MiB, requestsInFlightMax: 64 };

/** The broker's limits a link adopts once `hello` has answered. */
export interface LinkLimits {
  frameBytesMax: number;
  batchBytesMax: number;
  requestsInFlightMax: number;
}

/** One socket's life: its framing, its queue of requests awaiting answers, its outbound bytes. */
export class Link {
  private readonly address: string;
  private readonly onDead: () => void;
  private socket: Socket<undefined> | null = null;
  private frames = new FrameDecoder(HELLO_FRAME_BYTES_MAX);
  private decoder: Decoder = createResponseDecoder(HELLO_FRAME_BYTES_MAX);
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private readonly sparePending: Pending[] = [];
  private readonly waiting: Waiting[] = [];
  private readonly outbound: Uint8Array[] = [];
  private flushWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private nextId = 1;
  private inFlightMax = DEFAULT_LIMITS.requestsInFlightMax;
  private dead: RunnelError | null = null;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private deadlineCheckAtMs = Number.POSITIVE_INFINITY;

  constructor(
    address: string,
    private readonly frameBuffers: number,
    onDead: () => void,
  ) {
    this.address = address;
    this.onDead = onDead;
  }

  get usable(): boolean {
    return this.dead === null;
  }

  /** Why the link died (null while it lives). */
  get failure(): RunnelError | null {
    return this.dead;
  }

  /**
   * Connects; with `tls`, resolves only once the TLS handshake succeeded (bytes written before
   * it would be lost), and a failed verification is BROKER_UNAVAILABLE with OpenSSL's reason.
   */
  async connect(host: string, port: number, timeoutMs: number, tls: ClientTls | null = null): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RunnelError("TIMEOUT", `no ${tls === null ? "TCP connection" : "TLS session"} within ${timeoutMs} ms`)), timeoutMs);
    });
    let shaken: (error: Error | null) => void = () => undefined;
    const handshake = new Promise<void>((resolve, reject) => {
      shaken = (error) => (error === null ? resolve() : reject(error));
    });
    // Awaited only with TLS (below); a plaintext link's close must not leave it unhandled.
    handshake.catch(() => undefined);
    const connecting = Bun.connect({
      hostname: host,
      port,
      ...(tls === null ? {} : { tls: { ...tls, ...(tls.serverName === undefined ? { serverName: host } : {}) } }),
      socket: {
        handshake: (_socket, authorized, error) => shaken(authorized ? null : new Error(`TLS handshake failed: ${error?.message ?? "the broker's certificate is not trusted"}`)),
        data: (_socket, chunk) => this.onData(chunk),
        drain: () => this.onDrain(),
        end: (socket) => void socket.end(),
        close: (_socket, error) => {
          shaken(new Error(`the broker closed the connection during the TLS handshake${error === undefined ? "" : ` (${error.message})`}`));
          this.destroy(this.lostError(error));
        },
        error: (_socket, error) => {
          shaken(new Error(`TLS handshake failed: ${error.message}`));
          this.destroy(this.lostError(error));
        },
        connectError: () => undefined,
      },
    });
    // A connection closed during the handshake (e.g. mutual TLS refused) fails it.
    const established = tls === null ? connecting : connecting.then(async (socket) => (await handshake, socket));
    try {
      this.socket = await Promise.race([established, timeout]);
    } catch (error) {
      // A connect that finishes after the timeout must not leak its socket.
      void connecting.then((socket) => socket.end(), () => undefined);
      if (error instanceof RunnelError) throw error;
      throw new RunnelError("BROKER_UNAVAILABLE", socketFailure(error), { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Adopts the broker's limits (from `hello`) for the rest of this link's life. */
  adoptLimits(limits: LinkLimits): void {
    // Fetch answers may pass the frame limit by the head of one response: leave room for it.
    const incomingMax = Math.min(LIMITS.frameBytesMax, Math.max(limits.frameBytesMax, limits.batchBytesMax) + 64 * KiB);
    this.frames = new FrameDecoder(incomingMax, this.frameBuffers > 0 ? { reuseAssembly: true, assemblyBuffers: this.frameBuffers } : {});
    this.decoder = createResponseDecoder(incomingMax);
    this.inFlightMax = limits.requestsInFlightMax;
  }

  /**
   * Queues one request; `done` is called with its answer, or null for requests the broker never
   * answers (their bytes are only written).
   */
  request(op: string, encode: EncodeFrame, timeoutMs: number, done: AnswerCallback | null, readAnswer: AnswerReader | null = null): void {
    if (this.dead) return done === null ? undefined : answer(done, this.dead, null);
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    let frame: Uint8Array[];
    try {
      frame = encode(id);
    } catch (error) {
      return done === null ? undefined : answer(done, toRunnelError(error), null);
    }
    if (done === null) return this.write(frame);
    const pending = this.newPending(id, op, done, timeoutMs, readAnswer);
    if (this.pending.length - this.pendingHead >= this.inFlightMax) {
      this.waiting.push({ pending, frame, timeoutMs });
    } else {
      this.dispatch(pending, frame, timeoutMs);
    }
  }

  private newPending(id: number, op: string, done: AnswerCallback, timeoutMs: number, readAnswer: AnswerReader | null): Pending {
    const pending = this.sparePending.pop();
    if (pending === undefined) return { id, op, done, deadlineMs: 0, timeoutMs, readAnswer };
    pending.id = id;
    pending.op = op;
    pending.done = done;
    pending.deadlineMs = 0;
    pending.timeoutMs = timeoutMs;
    pending.readAnswer = readAnswer;
    return pending;
  }

  /** `request` as a promise (the handshake, and callers that prefer one). */
  requestPromise(op: string, encode: EncodeFrame, timeoutMs: number): Promise<WireMap> {
    return answerAsPromise((done) => this.request(op, encode, timeoutMs, done));
  }

  private dispatch(pending: Pending, frame: Uint8Array[], timeoutMs: number): void {
    if (timeoutMs > 0) {
      pending.deadlineMs = Date.now() + timeoutMs;
      this.armDeadlineCheck(pending.deadlineMs);
    }
    this.pending.push(pending);
    this.write(frame);
  }

  /**
   * One timer per link for every request's deadline, armed for the earliest, instead of a
   * timer per request (tens of thousands a second under load: garbage, and timer-heap work).
   * Requests sent in order with one timeout never move the earliest deadline, so the timer is
   * re-armed about once per timeout period. Unref'd: the open socket keeps the process alive.
   */
  private armDeadlineCheck(atMs: number): void {
    if (atMs >= this.deadlineCheckAtMs) return;
    clearTimeout(this.deadlineTimer);
    this.deadlineCheckAtMs = atMs;
    this.deadlineTimer = setTimeout(this.checkDeadlines, Math.max(0, atMs - Date.now()));
    this.deadlineTimer.unref();
  }

  private readonly checkDeadlines = (): void => {
    this.deadlineTimer = undefined;
    this.deadlineCheckAtMs = Number.POSITIVE_INFINITY;
    const nowMs = Date.now();
    let earliestMs = Number.POSITIVE_INFINITY;
    for (let index = this.pendingHead; index < this.pending.length; index++) {
      const pending = this.pending[index]!;
      if (pending.deadlineMs === 0) continue;
      if (pending.deadlineMs <= nowMs) return this.timedOut(pending, pending.timeoutMs);
      earliestMs = Math.min(earliestMs, pending.deadlineMs);
    }
    if (earliestMs !== Number.POSITIVE_INFINITY) this.armDeadlineCheck(earliestMs);
  };

  private timedOut(pending: Pending, timeoutMs: number): void {
    // Answers come in order, so a missing one stalls everything behind it: reset the link.
    const error = new RunnelError("TIMEOUT", `no answer to '${pending.op}' from ${this.address} within ${timeoutMs} ms; the connection was reset`);
    this.removePending(pending);
    answer(pending.done, error, null);
    this.destroy(new RunnelError("BROKER_UNAVAILABLE", `the connection to ${this.address} was reset after a request timed out`));
  }

  private removePending(target: Pending): void {
    const index = this.pending.indexOf(target, this.pendingHead);
    if (index >= 0) this.pending.splice(index, 1);
  }

  private write(chunks: Uint8Array[]): void {
    const socket = this.socket;
    if (socket === null) return;
    for (const chunk of chunks) {
      if (this.outbound.length > 0) {
        this.outbound.push(chunk);
        continue;
      }
      const written = Math.max(0, socket.write(chunk));
      if (written < chunk.length) this.outbound.push(chunk.subarray(written));
    }
  }

  private onDrain(): void {
    const socket = this.socket;
    if (socket === null) return;
    while (this.outbound.length > 0) {
      const head = this.outbound[0]!;
      const written = Math.max(0, socket.write(head));
      if (written < head.length) {
        this.outbound[0] = head.subarray(written);
        return;
      }
      this.outbound.shift();
    }
    this.wakeFlushWaiters();
  }

  /** Resolves when every byte written so far has been handed to the kernel. */
  flushed(): Promise<void> {
    if (this.outbound.length === 0 || this.dead) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  private wakeFlushWaiters(): void {
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const wake of waiters) wake();
  }

  private onData(chunk: Uint8Array): void {
    if (this.dead) return;
    try {
      this.frames.push(chunk);
      for (let body = this.frames.next(); body !== null && !this.dead; body = this.frames.next()) this.onFrame(body);
    } catch (error) {
      this.destroy(toRunnelError(error));
    }
  }

  private onFrame(body: Uint8Array): void {
    const oldest = this.pending[this.pendingHead];
    if (oldest !== undefined && oldest.readAnswer !== null) {
      const read = oldest.readAnswer(body);
      if (read !== null && read.id === oldest.id) return this.settleHead(oldest, read, null);
    }
    let value: unknown;
    try {
      value = this.decoder.decode(body);
    } catch (error) {
      throw malformed("?", `undecodable msgpack (${error instanceof Error ? error.message : String(error)})`);
    }
    const response = readMap(value, "?", "the response");
    const id = response.id;
    const head = this.pending[this.pendingHead];
    if (id === null || id === undefined) {
      const error = brokerError(response.error, `the broker at ${this.address}`);
      // INVALID_REQUEST with no id: the broker could not read the request at the head (it keeps
      // the connection). Anything else (frame too large, timeout, connection limit) closes it.
      if (error.code !== "INVALID_REQUEST" || head === undefined) throw error;
      this.settleHead(head, response, error);
      return;
    }
    if (head === undefined || head.id !== id) {
      // An answer older than every waiting request belongs to a request that expected none
      // (an error about a durability "none" produce): there is nobody to give it to.
      if (typeof id === "number" && (head === undefined || id < head.id)) return;
      throw malformed(head?.op ?? "?", `answer id ${String(id)} does not match the oldest request (${head?.id ?? "none"})`);
    }
    this.settleHead(head, response, response.error === undefined ? null : brokerError(response.error, `'${head.op}' on ${this.address}`));
  }

  private settleHead(head: Pending, response: WireMap, error: RunnelError | null): void {
    this.pending[this.pendingHead++] = undefined as unknown as Pending;
    this.compactPending();
    answer(head.done, error, error === null ? response : null);
    this.recycle(head);
    this.admitWaiting();
  }

  /** An answered request's record, for the next request (nothing else holds it once answered). */
  private recycle(pending: Pending): void {
    if (this.sparePending.length >= SPARE_PENDING_MAX) return;
    pending.done = noAnswer;
    pending.readAnswer = null;
    this.sparePending.push(pending);
  }

  private compactPending(): void {
    if (this.pendingHead === this.pending.length) {
      this.pending.length = 0;
      this.pendingHead = 0;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      if (this.waiting.length === 0) for (const wake of waiters) wake();
      else this.idleWaiters = waiters;
    } else if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.pending.length - this.pendingHead < this.inFlightMax) {
      const next = this.waiting.shift()!;
      this.dispatch(next.pending, next.frame, next.timeoutMs);
    }
  }

  private lostError(error?: Error): RunnelError {
    const inFlight = this.pending.length - this.pendingHead;
    const reason = error ? ` (${socketFailure(error)})` : "";
    return new RunnelError(
      "BROKER_UNAVAILABLE",
      `the connection to ${this.address} closed${reason} with ${inFlight} request${inFlight === 1 ? "" : "s"} in flight; they may or may not have been applied`,
      error ? { cause: error } : {},
    );
  }

  /** Waits for every request in flight to be answered (or to fail), then ends the socket. */
  async closeWhenIdle(): Promise<void> {
    if (!this.dead && this.pending.length - this.pendingHead + this.waiting.length > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await this.flushed();
    this.destroy(new RunnelError("CLIENT_CLOSED", `the connection to ${this.address} was closed by this client`));
  }

  /** Fails everything waiting on this link with `error` and closes the socket. Idempotent. */
  destroy(error: RunnelError): void {
    if (this.dead) return;
    this.dead = error;
    const failed = [...this.pending.slice(this.pendingHead), ...this.waiting.map((waiting) => waiting.pending)];
    this.pending.length = 0;
    this.pendingHead = 0;
    this.waiting.length = 0;
    this.outbound.length = 0;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    for (const pending of failed) answer(pending.done, error, null);
    this.wakeFlushWaiters();
    for (const wake of this.idleWaiters) wake();
    this.idleWaiters = [];
    this.socket?.end();
    this.socket = null;
    this.onDead();
  }
}

/** What a recycled Pending holds instead of its last callback (so that callback can be collected). */
function noAnswer(): void {}

function socketFailure(error: unknown): string {
  if (error && typeof error === "object" && "code" in error && typeof error.code === "string") return error.code;
  return error instanceof Error ? error.message : String(error);
}
