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
 * - Bootstrap list: `broker` may name several brokers of a cluster ("a:9600,b:9600" or an
 *   array). A connect tries them in turn, starting with the one that last worked, so the first
 *   reachable broker answers; `address` is the broker of the current (or last) link.
 *
 * A socket's life (framing, in-order answers, outbound queue, deadlines) is a `Link`
 * (client/link.ts); the Connection swaps in a fresh Link on reconnect, and events of a dead
 * Link are ignored.
 */
import type { Encoder } from "@msgpack/msgpack";
import { RunnelError, toRunnelError } from "../errors.ts";
import { createRequestEncoder, encodeRequestFrame } from "./frame.ts";
import { type AnswerCallback, type AnswerReader, answerAsPromise, type ClientTls, DEFAULT_LIMITS, type EncodeFrame, Link } from "./link.ts";
import { type WireMap, isMap, isRetriable, readInt } from "./wire.ts";
import { ScramClientExchange, ScramError, type ScramMechanism } from "../security/scram.ts";

export const PROTOCOL_VERSION = 1;
export const DEFAULT_PORT = 9600;
export const DEFAULT_BROKER = `127.0.0.1:${DEFAULT_PORT}`;

export interface ConnectionOptions {
  /**
   * "host:port" of the broker (default 127.0.0.1:9600); in a cluster, several ("a:9600,b:9600"
   * or an array), tried in turn until one answers (client/leader-router.ts then finds leaders).
   */
  broker?: string | readonly string[];
  /** Sent in `hello`, shown in the broker's logs. */
  clientId?: string;
  /** How long connecting (or reconnecting) may keep retrying before requests fail. Default 10 s. */
  connectTimeoutMs?: number;
  /** How long a request may wait for its answer (a fetch adds its maxWaitMs). Default 30 s. */
  requestTimeoutMs?: number;
  /** First reconnect delay; doubles per attempt up to reconnectBackoffMaxMs. Default 50 ms. */
  reconnectBackoffMs?: number;
  reconnectBackoffMaxMs?: number;
  /** Connect with TLS (client/link.ts ClientTls); `true` = TLS trusting the system's CAs. */
  tls?: ClientTls | boolean;
  /**
   * Authenticate with SCRAM after `hello` on every (re)connect (docs/protocol.md, authenticate).
   * The password stays in this process: only a SCRAM proof is sent.
   */
  sasl?: ClientSasl;
}

/** A user's credentials for the native `authenticate` exchange. */
export interface ClientSasl {
  user: string;
  password: string;
  /** Default SCRAM-SHA-256. */
  mechanism?: ScramMechanism;
}

/** What the broker said in `hello`. */
export interface BrokerInfo {
  version: number;
  serverVersion: string;
  frameBytesMax: number;
  batchBytesMax: number;
  requestsInFlightMax: number;
}

// Defined with the link that calls them; imported from here by everyone else.
export type { AnswerCallback, AnswerReader, EncodeFrame };

/**
 * One encoder for every connection in the process: encoding is synchronous and its output is
 * copied into the frame at once, so its buffer is free again before anyone else can use it.
 */
const requestEncoder: Encoder = createRequestEncoder();

/** `message` as one request frame, through the process's shared encoder (client/frame.ts). */
export function encodeSharedRequestFrame(message: unknown): Uint8Array {
  return encodeRequestFrame(requestEncoder, message);
}

/** The frame of `{id, op, ...fields}`, msgpack-encoded. */
function fieldsFrame(op: string, fields: WireMap): EncodeFrame {
  return (id) => [encodeRequestFrame(requestEncoder, { id, op, ...fields })];
}

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

/** Every address of a bootstrap list ("a:9600,b:9600" or an array); INVALID_CONFIG when one is not an address or none is given. */
export function parseBrokerList(broker: string | readonly string[]): Array<{ host: string; port: number }> {
  const items = (typeof broker === "string" ? broker.split(",") : [...broker]).map((item) => item.trim()).filter((item) => item.length > 0);
  if (items.length === 0) throw new RunnelError("INVALID_CONFIG", `no broker address given; use host:port, e.g. 127.0.0.1:${DEFAULT_PORT}`);
  if (items.length > BOOTSTRAP_BROKERS_MAX) throw new RunnelError("INVALID_CONFIG", `${items.length} broker addresses given; at most ${BOOTSTRAP_BROKERS_MAX}`);
  return items.map(parseBrokerAddress);
}

/** Addresses in one bootstrap list, at most. */
const BOOTSTRAP_BROKERS_MAX = 64;

function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export class Connection {
  private readonly addresses: Array<{ host: string; port: number }>;
  /** The bootstrap list's entry tried first by the next connect (the last that worked). */
  private addressIndex = 0;
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
  private readonly tls: ClientTls | null;
  private readonly sasl: ClientSasl | null;

  /**
   * `frameBuffers` (for the Consumer's fetch connection, not part of ConnectionOptions): when
   * above 0, answers that straddle TCP chunks are assembled into this many reused buffers, in
   * turn, instead of a fresh buffer each, so bins in an answer stay valid only until that many
   * more large answers have arrived. 0 (default): every such answer gets its own buffer.
   */
  constructor(options: ConnectionOptions = {}, frameBuffers = 0) {
    this.addresses = parseBrokerList(options.broker ?? DEFAULT_BROKER);
    this.frameBuffers = frameBuffers;
    this.clientId = options.clientId ?? "runnel-client";
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.backoffMs = options.reconnectBackoffMs ?? 50;
    this.backoffMaxMs = options.reconnectBackoffMaxMs ?? 1_000;
    this.sasl = options.sasl ?? null;
    this.tls = options.tls === true ? {} : options.tls === undefined || options.tls === false ? null : options.tls;
  }

  get host(): string {
    return this.addresses[this.addressIndex]!.host;
  }

  get port(): number {
    return this.addresses[this.addressIndex]!.port;
  }

  /** "host:port" of the broker connected to (or to be tried next). */
  get address(): string {
    return formatAddress(this.host, this.port);
  }

  /** Every address of the bootstrap list, as "host:port". */
  get bootstrapAddresses(): string[] {
    return this.addresses.map(({ host, port }) => formatAddress(host, port));
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
    return answerAsPromise((done) => this.requestWithCallback(op, encode, done, timeoutMs));
  }

  /**
   * `requestEncoded` without promises: `done(error, response)` is called once. For callers that
   * send thousands of requests a second (the producer): no promise, no `.then()` promise, and
   * no closures of theirs per request (garbage the collector would pause for). `readAnswer`
   * (optional) reads the answer without the generic decoder (client/link.ts AnswerReader).
   */
  requestWithCallback(op: string, encode: EncodeFrame, done: AnswerCallback, timeoutMs: number = this.requestTimeoutMs, readAnswer: AnswerReader | null = null): void {
    if (this.link !== null && this.link.usable) return this.link.request(op, encode, timeoutMs, done, readAnswer);
    this.requestOnceOpen(op, encode, done, timeoutMs, readAnswer);
  }

  /** The connecting path of requestWithCallback, apart so the usual path creates no closure scope per request. */
  private requestOnceOpen(op: string, encode: EncodeFrame, done: AnswerCallback, timeoutMs: number, readAnswer: AnswerReader | null): void {
    this.open().then(
      (link) => link.request(op, encode, timeoutMs, done, readAnswer),
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
      // The next broker of the list; a full round of them before each backoff.
      this.addressIndex = (this.addressIndex + 1) % this.addresses.length;
      if (attempts % this.addresses.length !== 0) continue;
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
      `cannot reach the Runnel broker at ${this.bootstrapAddresses.join(", ")} (${cause.message}; ${attempts} attempt${attempts === 1 ? "" : "s"} over ${seconds} s). ` +
        `Is 'runnel serve' running there? Check the broker address (--broker host:port).`,
      { cause, details: { address: this.bootstrapAddresses.join(","), attempts } },
    );
  }

  private async connectOnce(startedMs: number): Promise<Link> {
    const remainingMs = Math.max(1, this.connectTimeoutMs - (Date.now() - startedMs));
    const link = new Link(this.address, this.frameBuffers, () => {
      if (this.link === link) this.link = null;
    });
    await link.connect(this.host, this.port, remainingMs, this.tls);
    try {
      this.info = await this.handshake(link, Math.min(remainingMs, this.requestTimeoutMs));
      if (this.sasl !== null) await this.authenticate(link, this.sasl, Math.min(remainingMs, this.requestTimeoutMs));
    } catch (error) {
      link.destroy(toRunnelError(error));
      throw error;
    }
    return link;
  }

  /** The handshake on a fresh link: checks the protocol version and has the link adopt the broker's limits. */
  private async handshake(link: Link, timeoutMs: number): Promise<BrokerInfo> {
    let response: WireMap;
    try {
      response = await link.requestPromise("hello", fieldsFrame("hello", { versions: [PROTOCOL_VERSION], clientId: this.clientId }), timeoutMs);
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
    link.adoptLimits(info);
    return info;
  }

  /** The two round trips of `authenticate` (security/scram.ts); also checks the broker's signature. */
  private async authenticate(link: Link, sasl: ClientSasl, timeoutMs: number): Promise<void> {
    const mechanism = sasl.mechanism ?? "SCRAM-SHA-256";
    const exchange = new ScramClientExchange({ mechanism, user: sasl.user, password: sasl.password });
    const step = async (message: string): Promise<string> => {
      const answer = await link.requestPromise("authenticate", fieldsFrame("authenticate", { mechanism, message }), timeoutMs);
      if (typeof answer.message !== "string") throw new RunnelError("AUTHENTICATION_FAILED", `the broker at ${this.address} answered authenticate without a message`);
      return answer.message;
    };
    try {
      const serverFirst = await step(exchange.first());
      exchange.verify(await step(exchange.final(serverFirst)));
    } catch (error) {
      if (error instanceof ScramError) throw new RunnelError("AUTHENTICATION_FAILED", `authenticating to ${this.address} as '${sasl.user}': ${error.message}`, { cause: error });
      throw error;
    }
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
}

function closedError(address: string): RunnelError {
  return new RunnelError("CLIENT_CLOSED", `the connection to ${address} was closed by this client`);
}

function positiveOr(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : fallback;
}
