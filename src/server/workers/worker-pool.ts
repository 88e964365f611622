/**
 * @module server/workers/worker-pool
 * `networkWorkers` > 1: the log thread (the main thread) starts that many network workers
 * (connection-worker.ts), which share the native port with reusePort and own every native
 * connection's bytes, and serves their requests (remote-connection.ts). The log, groups, offsets,
 * the Kafka and HTTP listeners stay on the log thread: one owner, no locks
 * (docs/architecture.md "Using every core").
 *
 * Start: the first worker listens on `port` (0: a free one) and reports it; the others join that
 * port. A port that cannot be taken stops start-up with the listener's error.
 *
 * A worker that dies (an uncaught exception, or terminateWorker in tests) is contained: its
 * connections are dropped (their clients reconnect, as after any broken connection), what they
 * held is released, and a replacement worker takes the port again. Other workers' connections
 * never notice.
 *
 * Shutdown: stopAccepting, then (once quiet, or after shutdownTimeoutMs) close: every worker
 * closes its connections, then is terminated; file ranges still lent are released before the
 * log closes.
 */
import type { Config } from "../../config.ts";
import { RunnelError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import { encodeErrorFrame } from "../../protocol/messages.ts";
import { PRE_AUTHENTICATION_FRAME_BYTES_MAX } from "../../security/authenticator.ts";
import type { BrokerContext } from "../context.ts";
import type { RequestDecoder } from "../dispatch.ts";
import type { FromWorker, ToWorker, WorkerByteCounts, WorkerSetup } from "./messages.ts";
import { RemoteConnection, SlicePins } from "./remote-connection.ts";
import { SharedBodies, type WireBody } from "./transfer-frames.ts";

/** How long close() waits for a worker to confirm its connections are closed. */
const WORKER_CLOSE_WAIT_MS = 2_000;
/** A worker that does not report listening within this long fails start-up. */
const WORKER_START_WAIT_MS = 30_000;

export interface WorkerPoolOptions {
  context: BrokerContext;
  decode: RequestDecoder;
  logger: Logger;
  /** Called whenever a connection may have become quiet (the broker's shutdown waits on it). */
  onSettled: () => void;
}

interface RunningWorker {
  index: number;
  worker: Worker;
  connections: Map<number, RemoteConnection>;
  /** File ranges lent to this worker: released with its reports, or all at once when it dies. */
  pins: SlicePins;
  /** The worker's shared frame-body buffers (they die with it). */
  shared: SharedBodies;
  /** Set once the pool itself ends the worker (close, terminateWorker): its exit is expected. */
  ending: boolean;
  allClosed: PromiseWithResolvers<void> | null;
}

export class WorkerPool {
  private readonly workers: RunningWorker[] = [];
  private host = "";
  private listeningPort = 0;
  private stopping = false;
  private accepting = true;
  /** Every worker listened: from now on a worker that dies is replaced (before, start-up fails instead). */
  private started = false;
  /** Workers started, replacements included (tests and the log read it). */
  workersStarted = 0;

  private constructor(private readonly options: WorkerPoolOptions) {}

  /** Starts `count` workers on host:port; resolves once all listen. */
  static async start(options: WorkerPoolOptions, count: number): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    const config = options.context.config;
    pool.host = config.host;
    try {
      pool.listeningPort = await pool.startWorker(0, config.port);
      for (let index = 1; index < count; index++) await pool.startWorker(index, pool.listeningPort);
      pool.started = true;
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get port(): number {
    return this.listeningPort;
  }

  get connectionCount(): number {
    let count = 0;
    for (const running of this.workers) count += running.connections.size;
    return count;
  }

  /** Every connection's requests are answered (the worker may still be writing the last bytes). */
  get isQuiet(): boolean {
    return this.workers.every((running) => [...running.connections.values()].every((connection) => connection.isQuiet));
  }

  /** File ranges lent to workers and not yet reported sent. */
  get pinnedSlices(): number {
    return this.workers.reduce((sum, running) => sum + running.pins.size, 0);
  }

  get workerCount(): number {
    return this.workers.length;
  }

  private setupFor(index: number, port: number): WorkerSetup {
    const { config, authenticator, zeroCopy } = this.options.context;
    return {
      kind: "setup",
      workerIndex: index,
      host: this.host,
      port,
      frameBytesMax: config.frameBytesMax,
      firstFrameBytesMax: firstFrameBytesMax(config, authenticator.required),
      requestsInFlightMax: config.requestsInFlightMax,
      outboundQueueBytesMax: config.outboundQueueBytesMax,
      frameTimeoutMs: config.frameTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      zeroCopy,
    };
  }

  /** Starts worker `index` listening on `port`; resolves with the port it got. */
  private startWorker(index: number, port: number): Promise<number> {
    const worker = new Worker(workerEntry());
    const running: RunningWorker = { index, worker, connections: new Map(), pins: new SlicePins(), shared: new SharedBodies(), ending: false, allClosed: null };
    this.workers[index] = running;
    this.workersStarted++;
    const listening = Promise.withResolvers<number>();
    const timer = setTimeout(() => listening.reject(new Error(`network worker ${index} did not start listening within ${WORKER_START_WAIT_MS} ms`)), WORKER_START_WAIT_MS);
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.kind === "listening") listening.resolve(message.port);
      else if (message.kind === "listenFailed") {
        running.ending = true; // it serves nothing: close() need not wait for it
        listening.reject(listenError(this.host, port, message.message, message.code));
      }
      else this.onMessage(running, message);
    };
    worker.addEventListener("error", (event: ErrorEvent) => {
      listening.reject(new Error(`network worker ${index} failed: ${event.message}`));
      this.onWorkerDied(running, event.message);
    });
    worker.addEventListener("close", () => this.onWorkerDied(running, "it exited"));
    worker.postMessage(this.setupFor(index, port));
    return listening.promise.finally(() => clearTimeout(timer));
  }

  private onMessage(running: RunningWorker, message: FromWorker): void {
    switch (message.kind) {
      case "open":
        return this.onOpen(running, message.connection, message.remoteAddress);
      case "frames":
        return this.onFrames(running, message.connection, message.bodies, message.forget);
      case "closed":
        return this.onClosed(running, message.connection);
      case "released":
        for (const token of message.tokens) running.pins.release(token);
        return;
      case "bytes":
        return this.addByteCounts(message.bytes);
      case "allClosed":
        running.allClosed?.resolve();
        return;
      case "listening":
      case "listenFailed":
        return;
    }
  }

  private onFrames(running: RunningWorker, id: number, wireBodies: readonly WireBody[], forget: readonly number[] | undefined): void {
    if (forget !== undefined) running.shared.forget(forget);
    const bodies = wireBodies.map((body) => running.shared.open(body));
    const connection = running.connections.get(id);
    if (connection !== undefined) return connection.onFrames(bodies);
    // The connection is gone here already: its shared buffers go straight back.
    const buffers: number[] = [];
    for (const body of bodies) {
      const sharedId = running.shared.idOf(body);
      if (sharedId !== undefined) buffers.push(sharedId);
    }
    if (buffers.length > 0) this.send(running, { kind: "answers", connection: id, answers: [], settled: 0, buffers });
  }

  private send(running: RunningWorker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (running.ending && message.kind !== "closeAll") return;
    running.worker.postMessage(message, transfer);
  }

  private onOpen(running: RunningWorker, id: number, remoteAddress: string): void {
    const { context } = this.options;
    const stats = context.stats;
    if (this.connectionCount >= context.config.connectionsMax || this.stopping || !this.accepting) {
      stats.connectionsRejected++;
      const code = this.accepting && !this.stopping ? "TOO_MANY_CONNECTIONS" : "SHUTTING_DOWN";
      const frame = encodeErrorFrame(null, new RunnelError(code, `the broker is at its limit of ${context.config.connectionsMax} connections`));
      this.send(running, { kind: "refuse", connection: id, frame });
      return;
    }
    const send = (message: ToWorker, transfer: ArrayBuffer[]): void => this.send(running, message, transfer);
    const first = firstFrameBytesMax(context.config, context.authenticator.required);
    running.connections.set(id, new RemoteConnection(id, remoteAddress, context, this.options.decode, running.pins, running.shared, send, this.options.onSettled, first));
    stats.connectionsAccepted++;
    stats.connectionsOpen++;
  }

  private onClosed(running: RunningWorker, id: number): void {
    const connection = running.connections.get(id);
    if (connection === undefined) return;
    running.connections.delete(id);
    this.options.context.stats.connectionsOpen--;
    connection.onClose();
  }

  private addByteCounts(bytes: WorkerByteCounts): void {
    const stats = this.options.context.stats;
    stats.bytesReceived += bytes.bytesReceived;
    stats.bytesSentWrite += bytes.bytesSentWrite;
    stats.bytesSentSendfile += bytes.bytesSentSendfile;
    stats.bytesSentCopy += bytes.bytesSentCopy;
    stats.bytesSentProbe += bytes.bytesSentProbe;
  }

  /** A worker is gone: its connections with it. Unless the pool ended it, a replacement takes its place. */
  private onWorkerDied(running: RunningWorker, reason: string): void {
    if (this.workers[running.index] !== running) return;
    const expected = running.ending || this.stopping;
    running.ending = true;
    const dropped = running.connections.size;
    for (const id of [...running.connections.keys()]) this.onClosed(running, id);
    // A dead worker reports nothing more: what it was sending is unpinned now.
    running.pins.releaseAll();
    running.allClosed?.resolve();
    if (expected || !this.started) return;
    this.options.logger.error({ worker: running.index, reason, connectionsDropped: dropped }, "a network worker died; its connections were dropped and a new worker takes its place");
    running.worker.terminate();
    this.startWorker(running.index, this.listeningPort).catch((error: unknown) => {
      this.options.logger.error({ worker: running.index, err: error }, "the replacement network worker could not start; the other workers serve on");
    });
  }

  /**
   * Ends worker `index` abruptly, as a crash would (its connections drop); a replacement starts.
   * For tests of crash containment.
   */
  crashWorker(index: number): void {
    const running = this.workers[index];
    if (running === undefined) return;
    running.worker.terminate();
    this.onWorkerDied(running, "terminated");
  }

  /** Shutdown, first step: no new connections. */
  stopAccepting(): void {
    this.accepting = false;
    for (const running of this.workers) this.send(running, { kind: "stopListening" });
  }

  /** Shutdown, last step: every connection closed, every worker ended, every lent range released. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers.map((running) => this.closeWorker(running)));
  }

  private async closeWorker(running: RunningWorker | undefined): Promise<void> {
    if (running === undefined) return;
    if (!running.ending) {
      running.allClosed = Promise.withResolvers<void>();
      this.send(running, { kind: "closeAll" });
      const timer = setTimeout(() => running.allClosed?.resolve(), WORKER_CLOSE_WAIT_MS);
      await running.allClosed.promise;
      clearTimeout(timer);
    }
    running.ending = true;
    for (const id of [...running.connections.keys()]) this.onClosed(running, id);
    running.worker.terminate();
    running.pins.releaseAll();
  }
}

/**
 * The worker's entry module. From source it sits beside this file. Inside a `bun build --compile`
 * binary (npm run build lists it as a second entry point) the modules live under /$bunfs/root/,
 * laid out as under src/, and this file's own URL is the bundle's, so the path is spelled out.
 */
function workerEntry(): string {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
  return compiled ? "/$bunfs/root/server/workers/connection-worker.js" : new URL("./connection-worker.ts", import.meta.url).href;
}

/** A connection's first frame limit: small until it authenticates, when authentication is required. */
function firstFrameBytesMax(config: Config, authenticationRequired: boolean): number {
  return authenticationRequired ? Math.min(PRE_AUTHENTICATION_FRAME_BYTES_MAX, config.frameBytesMax) : config.frameBytesMax;
}

/** The worker's listen error, shaped like Bun.listen's own (message and code) so start-up reports it alike. */
function listenError(host: string, port: number, message: string, code: string | null): Error {
  const error = new Error(`cannot listen on ${host}:${port}: ${message}${code === null ? "" : ` [${code}]`}`);
  if (code !== null) Object.assign(error, { code });
  return error;
}
