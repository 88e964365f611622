/**
 * @module client/connection
 * One TCP connection to one broker, shared by everything a Producer, Consumer or Admin asks.
 *
 * - Pipelined: requests are written as they come, each with a correlation id; the broker
 *   answers in request order (docs/protocol.md section 1), so the answer at hand always
 *   belongs to the oldest waiting request. At most `requestsInFlightMax` (from `hello`)
 *   wait at once; more queue here, in the client, instead of at the broker.
 * - `hello` first: a broker that speaks another protocol version, or a service that is not
 *   a Runnel broker, fails with a clear, non-retriable error naming host:port.
 * - Lazy reconnect with backoff: when the socket dies, the requests in flight fail with the
 *   retriable BROKER_UNAVAILABLE (they may or may not have been applied: the caller decides
 *   whether to retry) and the next request reconnects, retrying with exponential backoff
 *   for up to `connectTimeoutMs`.
 * - `close()` lets every request in flight finish, then ends the socket.
 *
 * A socket's life is a `Link`; the Connection swaps in a fresh Link on reconnect, and events
 * of a dead Link are ignored.
 */
import type { Decoder, Encoder } from "@msgpack/msgpack";
import type { Socket } from "bun";
import { RunnelError, toRunnelError } from "../errors.ts";
import { KiB, LIMITS, MiB } from "../limits.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import { createRequestEncoder, createResponseDecoder, encodeRequestFrame } from "./frame.ts";
import { type WireMap, brokerError, isMap, isRetriable, malformed, readInt, readMap } from "./wire.ts";

export const PROTOCOL_VERSION = 1;
export const DEFAULT_PORT = 9600;
export const DEFAULT_BROKER = `127.0.0.1:${DEFAULT_PORT}`;

export interface ConnectionOptions {
  /** "host:port" of the broker (default 127.0.0.1:9600). */
  broker?: string;
  /** Sent in `hello`, shown in the broker's logs. */
  clientId?: string;
  /** How long connecting (or reconnecting) may keep retrying before requests fail. Default 10 s. */
  connectTimeoutMs?: number;
  /** How long a request may wait for its answer (a fetch adds its maxWaitMs). Default 30 s. */
  requestTimeoutMs?: number;
  /** First reconnect delay; doubles per attempt up to reconnectBackoffMaxMs. Default 50 ms. */
  reconnectBackoffMs?: number;
  reconnectBackoffMaxMs?: number;
}

/** What the broker said in `hello`. */
export interface BrokerInfo {
  version: number;
  serverVersion: string;
  frameBytesMax: number;
  batchBytesMax: number;
  requestsInFlightMax: number;
}

/** How a request's outcome is reported: exactly one of `error` and `response` is non-null. */
export type AnswerCallback = (error: RunnelError | null, response: WireMap | null) => void;

interface Pending {
  id: number;
  op: string;
  done: AnswerCallback;
  /** Date.now() by which the answer must come; 0: no limit. */
  deadlineMs: number;
  timeoutMs: number;
}

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

/**
 * One encoder for every connection in the process: encoding is synchronous and its output is
 * copied into the frame at once, so its buffer is free again before anyone else can use it.
 */
const requestEncoder: Encoder = createRequestEncoder();

/** The frame of `{id, op, ...fields}`, msgpack-encoded. */
function fieldsFrame(op: string, fields: WireMap): EncodeFrame {
  return (id) => [encodeRequestFrame(requestEncoder, { id, op, ...fields })];
}

/** The limits assumed until `hello` answers (the protocol's defaults). */
const HELLO_FRAME_BYTES_MAX = 1 * MiB;
const DEFAULT_LIMITS = { frameBytesMax: 16 * MiB, batchBytesMax: 16 * MiB, requestsInFlightMax: 64 };

/** Parses "host:port", "[v6]:port" or "host" (default port). Throws INVALID_CONFIG. */
export function parseBrokerAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(address.trim());
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? DEFAULT_PORT : Number(match[3]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RunnelError("INVALID_CONFIG", `'${address}' is not a broker address; use host:port, e.g. 127.0.0.1:${DEFAULT_PORT}`);
  }
  return { host, port };
}

export class Connection {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  private readonly clientId: string;
  private readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  private readonly backoffMs: number;
  private readonly backoffMaxMs: number;
  private link: Link | null = null;
  private opening: Promise<Link> | null = null;
  private closing = false;
  private info: BrokerInfo | null = null;

  private readonly frameBuffers: number;

  /**
   * `frameBuffers` (for the Consumer's fetch connection, not part of ConnectionOptions): when
   * above 0, answers that straddle TCP chunks are assembled into this many reused buffers, in
   * turn, instead of a fresh buffer each, so bins in an answer stay valid only until that many
   * more large answers have arrived. 0 (default): every such answer gets its own buffer.
   */
  constructor(options: ConnectionOptions = {}, frameBuffers = 0) {
    const { host, port } = parseBrokerAddress(options.broker ?? DEFAULT_BROKER);
    this.frameBuffers = frameBuffers;
    this.host = host;
    this.port = port;
    this.address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    this.clientId = options.clientId ?? "runnel-client";
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.backoffMs = options.reconnectBackoffMs ?? 50;
    this.backoffMaxMs = options.reconnectBackoffMaxMs ?? 1_000;
  }

  /** The broker's `hello` answer, once connected. */
  get broker(): BrokerInfo | null {
    return this.info;
  }

  get closed(): boolean {
    return this.closing;
  }

  /** Connects (if needed) and returns what the broker said in `hello`. */
  async connect(): Promise<BrokerInfo> {
    await this.open();
    return this.info!;
  }

  /** Sends `{id, op, ...fields}` and resolves with the answer; rejects with the broker's error. */
  request(op: string, fields: WireMap, timeoutMs: number = this.requestTimeoutMs): Promise<WireMap> {
    return this.requestEncoded(op, fieldsFrame(op, fields), timeoutMs);
  }

  /**
   * `request` for a caller that writes its own frame: `encode(id)` returns the frame's chunks
   * (client/produce-frame.ts writes produce requests around their batches without copying them).
   * The chunks are referenced until written: their bytes must not change before the answer.
   */
  requestEncoded(op: string, encode: EncodeFrame, timeoutMs: number = this.requestTimeoutMs): Promise<WireMap> {
    return new Promise((resolve, reject) => {
      this.requestWithCallback(op, encode, (error, response) => (error !== null ? reject(error) : resolve(response!)), timeoutMs);
    });
  }

  /**
   * `requestEncoded` without promises: `done(error, response)` is called once. For callers that
   * send thousands of requests a second (the producer): no promise, no `.then()` promise, and
   * no closures of theirs per request (garbage the collector would pause for).
   */
  requestWithCallback(op: string, encode: EncodeFrame, done: AnswerCallback, timeoutMs: number = this.requestTimeoutMs): void {
    if (this.link !== null && this.link.usable) return this.link.request(op, encode, timeoutMs, done);
    this.open().then(
      (link) => link.request(op, encode, timeoutMs, done),
      (error: unknown) => done(toRunnelError(error), null),
    );
  }

  /**
   * Sends a request the broker does not answer (produce with durability "none"). Resolves once
   * the bytes are handed to the kernel, so a fire-and-forget producer still feels backpressure.
   */
  send(op: string, fields: WireMap): Promise<void> {
    return this.sendEncoded(op, fieldsFrame(op, fields));
  }

  /** `send` with the caller's own frame (see `requestEncoded`); its bytes are written once this resolves. */
  async sendEncoded(op: string, encode: EncodeFrame): Promise<void> {
    const link = this.link !== null && this.link.usable ? this.link : await this.open();
    link.request(op, encode, 0, null);
    await link.flushed();
    // A link that died before its bytes left did not send them.
    if (link.failure !== null) throw link.failure;
  }

  /** Lets requests in flight finish, then closes the socket. Later calls fail with CLIENT_CLOSED. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.opening) await this.opening.catch(() => undefined);
    const link = this.link;
    this.link = null;
    if (link) await link.closeWhenIdle();
  }

  /**
   * Closes at once: requests in flight fail with CLIENT_CLOSED. For reads nobody waits for
   * any more (a consumer's long-poll fetch), where draining would only add latency.
   */
  abort(): void {
    this.closing = true;
    const link = this.link;
    this.link = null;
    link?.destroy(closedError(this.address));
  }

  private open(): Promise<Link> {
    if (this.closing) return Promise.reject(closedError(this.address));
    this.opening ??= this.connectWithRetry().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async connectWithRetry(): Promise<Link> {
    const startedMs = Date.now();
    let attempts = 0;
    for (;;) {
      attempts += 1;
      let failure: RunnelError;
      try {
        const link = await this.connectOnce(startedMs);
        if (this.closing) {
          void link.closeWhenIdle();
          throw closedError(this.address);
        }
        this.link = link;
        return link;
      } catch (error) {
        failure = toRunnelError(error);
        if (!isRetriable(failure) || this.closing) throw failure;
      }
      const delayMs = Math.min(this.backoffMaxMs, this.backoffMs * 2 ** (attempts - 1)) * (0.5 + Math.random() / 2);
      const elapsedMs = Date.now() - startedMs;
      if (elapsedMs + delayMs > this.connectTimeoutMs) throw this.unreachable(failure, attempts, elapsedMs);
      await Bun.sleep(delayMs);
    }
  }

  private unreachable(cause: RunnelError, attempts: number, elapsedMs: number): RunnelError {
    const seconds = (elapsedMs / 1000).toFixed(1);
    return new RunnelError(
      "BROKER_UNAVAILABLE",
      `cannot reach the Runnel broker at ${this.address} (${cause.message}; ${attempts} attempt${attempts === 1 ? "" : "s"} over ${seconds} s). ` +
        `Is 'runnel serve' running there? Check the broker address (--broker host:port).`,
      { cause, details: { address: this.address, attempts } },
    );
  }

  private async connectOnce(startedMs: number): Promise<Link> {
    const remainingMs = Math.max(1, this.connectTimeoutMs - (Date.now() - startedMs));
    const link = new Link(this.address, this.frameBuffers, () => {
      if (this.link === link) this.link = null;
    });
    await link.connect(this.host, this.port, remainingMs);
    try {
      this.info = await link.hello(this.clientId, Math.min(remainingMs, this.requestTimeoutMs));
    } catch (error) {
      link.destroy(toRunnelError(error));
      throw error;
    }
    return link;
  }
}

function closedError(address: string): RunnelError {
  return new RunnelError("CLIENT_CLOSED", `the connection to ${address} was closed by this client`);
}

function socketFailure(error: unknown): string {
  if (error && typeof error === "object" && "code" in error && typeof error.code === "string") return error.code;
  return error instanceof Error ? error.message : String(error);
}

/** One socket's life: its framing, its queue of requests awaiting answers, its outbound bytes. */
class Link {
  private readonly address: string;
  private readonly onDead: () => void;
  private socket: Socket<undefined> | null = null;
  private frames = new FrameDecoder(HELLO_FRAME_BYTES_MAX);
  private decoder: Decoder = createResponseDecoder(HELLO_FRAME_BYTES_MAX);
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
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

  async connect(host: string, port: number, timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RunnelError("TIMEOUT", `no TCP connection within ${timeoutMs} ms`)), timeoutMs);
    });
    const connecting = Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_socket, chunk) => this.onData(chunk),
        drain: () => this.onDrain(),
        end: (socket) => void socket.end(),
        close: (_socket, error) => this.destroy(this.lostError(error)),
        error: (_socket, error) => this.destroy(this.lostError(error)),
        connectError: () => undefined,
      },
    });
    try {
      this.socket = await Promise.race([connecting, timeout]);
    } catch (error) {
      // A connect that finishes after the timeout must not leak its socket.
      void connecting.then((socket) => socket.end(), () => undefined);
      if (error instanceof RunnelError) throw error;
      throw new RunnelError("BROKER_UNAVAILABLE", socketFailure(error), { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The handshake: checks the protocol version and adopts the broker's limits. */
  async hello(clientId: string, timeoutMs: number): Promise<BrokerInfo> {
    let response: WireMap;
    try {
      response = await this.requestPromise("hello", fieldsFrame("hello", { versions: [PROTOCOL_VERSION], clientId }), timeoutMs);
    } catch (error) {
      throw this.handshakeError(toRunnelError(error));
    }
    const version = readInt(response.version, "hello", "version");
    if (version !== PROTOCOL_VERSION) {
      throw new RunnelError("UNSUPPORTED_VERSION", `the broker at ${this.address} chose protocol version ${version}; this client speaks ${PROTOCOL_VERSION}`);
    }
    const limits = isMap(response.limits) ? response.limits : {};
    const info: BrokerInfo = {
      version,
      serverVersion: typeof response.serverVersion === "string" ? response.serverVersion : "unknown",
      frameBytesMax: positiveOr(limits.frameBytesMax, DEFAULT_LIMITS.frameBytesMax),
      batchBytesMax: positiveOr(limits.batchBytesMax, DEFAULT_LIMITS.batchBytesMax),
      requestsInFlightMax: positiveOr(limits.requestsInFlightMax, DEFAULT_LIMITS.requestsInFlightMax),
    };
    // Fetch answers may pass the frame limit by the head of one response: leave room for it.
    const incomingMax = Math.min(LIMITS.frameBytesMax, Math.max(info.frameBytesMax, info.batchBytesMax) + 64 * KiB);
    this.frames = new FrameDecoder(incomingMax, this.frameBuffers > 0 ? { reuseAssembly: true, assemblyBuffers: this.frameBuffers } : {});
    this.decoder = createResponseDecoder(incomingMax);
    this.inFlightMax = info.requestsInFlightMax;
    return info;
  }

  private handshakeError(error: RunnelError): RunnelError {
    if (error.code === "UNSUPPORTED_VERSION") {
      return new RunnelError(
        "UNSUPPORTED_VERSION",
        `the broker at ${this.address} does not speak Runnel protocol version ${PROTOCOL_VERSION} (${error.message}). ` +
          `Use a client and broker of matching versions.`,
        { cause: error, ...(error.details ? { details: error.details } : {}) },
      );
    }
    if (error.retriable) return error;
    // Anything else that is not an answer means the peer is not a Runnel broker.
    return new RunnelError(
      "UNSUPPORTED_VERSION",
      `the service at ${this.address} did not answer the Runnel handshake (${error.message}). Is it a Runnel broker? Check --broker.`,
      { cause: error },
    );
  }

  /**
   * Queues one request; `done` is called with its answer, or null for requests the broker never
   * answers (their bytes are only written).
   */
  request(op: string, encode: EncodeFrame, timeoutMs: number, done: AnswerCallback | null): void {
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
    const pending: Pending = { id, op, done, deadlineMs: 0, timeoutMs };
    if (this.pending.length - this.pendingHead >= this.inFlightMax) {
      this.waiting.push({ pending, frame, timeoutMs });
    } else {
      this.dispatch(pending, frame, timeoutMs);
    }
  }

  /** `request` as a promise (the handshake, and callers that prefer one). */
  requestPromise(op: string, encode: EncodeFrame, timeoutMs: number): Promise<WireMap> {
    return new Promise((resolve, reject) => this.request(op, encode, timeoutMs, (error, response) => (error !== null ? reject(error) : resolve(response!))));
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
    this.admitWaiting();
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

function positiveOr(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : fallback;
}
