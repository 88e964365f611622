/**
 * @module server/workers/connection-worker
 * A network worker (a Bun Worker, `networkWorkers` > 1; docs/architecture.md "Using every
 * core"). It listens on the broker's native port with reusePort beside its sibling workers, so
 * the kernel spreads new connections over them, and owns those connections' bytes: socket reads,
 * framing (with the frame limit checked before allocation), socket writes and sendfile of fetched
 * records. Every whole frame body goes to the log thread (worker-pool.ts), which decodes,
 * authorizes, appends and reads the log; answers come back as encoded frames plus file ranges
 * this worker sends with sendfile from the log's own fds.
 *
 * Backpressure per connection, as on the log thread's own connections (server/connection.ts):
 * reading pauses while requestsInFlightMax requests are unanswered (it may pass the bound by the
 * frames of one read) or more than outboundQueueBytesMax answer bytes are queued.
 * Timeouts: a sweep closes a connection holding a partial frame past frameTimeoutMs, one idle
 * past idleTimeoutMs, and one whose peer vanished while it was paused.
 */
import type { Socket, TCPSocketListener } from "bun";
import { RunnelError } from "../../errors.ts";
import type { ReadSlice } from "../../log/api.ts";
import { libc } from "../../native/libc.ts";
import { FrameError } from "../../protocol/frame.ts";
import { encodeErrorFrame } from "../../protocol/messages.ts";
import { freeReceivedChunk } from "../received-chunks.ts";
import { OutboundQueue } from "../outbound.ts";
import { socketFd } from "../socket-fd.ts";
import { type BrokerStats, createStats } from "../stats.ts";
import type { AnswerRef, FromWorker, ToWorker, WorkerByteCounts, WorkerSetup } from "./messages.ts";
import { BufferPool, TransferFrames, type WireBody } from "./transfer-frames.ts";

/** How often a worker adds its byte counts to the broker's stats (when they changed). */
const STATS_REPORT_MS = 250;

/** The worker side of postMessage (the global scope of a Bun Worker). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: ArrayBuffer[]): void;
}

const scope = globalThis as unknown as WorkerScope;

type SocketData = { connection: WorkerConnection | null };

/** Shared by the connections of this worker: setup, counters, released file ranges. */
class WorkerState {
  readonly stats: BrokerStats = createStats();
  private readonly reported: WorkerByteCounts = { bytesReceived: 0, bytesSentWrite: 0, bytesSentSendfile: 0, bytesSentCopy: 0, bytesSentProbe: 0, bytesSentGathered: 0 };
  private releasedTokens: number[] = [];
  private releaseQueued = false;
  readonly connections = new Map<number, WorkerConnection>();
  readonly pool = new BufferPool();
  private nextConnection = 1;

  constructor(readonly setup: WorkerSetup) {}

  newConnectionId(): number {
    return this.nextConnection++;
  }

  /** A file range was sent or dropped: the log thread may unpin it (reported once per turn). */
  release(token: number): void {
    this.releasedTokens.push(token);
    if (this.releaseQueued) return;
    this.releaseQueued = true;
    queueMicrotask(() => {
      this.releaseQueued = false;
      scope.postMessage({ kind: "released", tokens: this.releasedTokens });
      this.releasedTokens = [];
    });
  }

  /** Adds what this worker received and sent since the last report to the broker's stats. */
  reportBytes(): void {
    const bytes = this.byteCountsSinceReport();
    if (bytes.bytesReceived + bytes.bytesSentWrite + bytes.bytesSentSendfile + bytes.bytesSentCopy + bytes.bytesSentProbe + bytes.bytesSentGathered === 0) return;
    scope.postMessage({ kind: "bytes", bytes });
  }

  private byteCountsSinceReport(): WorkerByteCounts {
    const stats = this.stats;
    const reported = this.reported;
    const delta: WorkerByteCounts = {
      bytesReceived: stats.bytesReceived - reported.bytesReceived,
      bytesSentWrite: stats.bytesSentWrite - reported.bytesSentWrite,
      bytesSentSendfile: stats.bytesSentSendfile - reported.bytesSentSendfile,
      bytesSentCopy: stats.bytesSentCopy - reported.bytesSentCopy,
      bytesSentProbe: stats.bytesSentProbe - reported.bytesSentProbe,
      bytesSentGathered: stats.bytesSentGathered - reported.bytesSentGathered,
    };
    Object.assign(reported, { ...stats });
    return delta;
  }
}

class WorkerConnection {
  private readonly decoder: TransferFrames;
  private readonly outbound: OutboundQueue;
  private inFlight = 0;
  private paused = false;
  private everPaused = false;
  private closed = false;
  private closeAfterFlush = false;
  private lastActivityMs = Date.now();
  private partialSinceMs: number | null = null;

  constructor(
    readonly id: number,
    private readonly socket: Socket<SocketData>,
    private readonly state: WorkerState,
  ) {
    const setup = state.setup;
    this.decoder = new TransferFrames(setup.firstFrameBytesMax, state.pool);
    this.outbound = new OutboundQueue(socket as Socket<unknown>, state.stats, setup.zeroCopy);
  }

  onData(chunk: Uint8Array): void {
    if (this.closed || this.closeAfterFlush) return;
    this.state.stats.bytesReceived += chunk.length;
    this.lastActivityMs = Date.now();
    const bodies: WireBody[] = [];
    try {
      this.decoder.push(chunk, bodies);
    } catch (error) {
      if (bodies.length > 0) this.sendFrames(bodies);
      return this.fail(error instanceof FrameError ? error : new RunnelError("INTERNAL", "the broker failed to read a frame"));
    } finally {
      // TransferFrames copies every byte it keeps: a large chunk from Bun is garbage now, freed
      // at once rather than at the next collection (server/received-chunks.ts).
      freeReceivedChunk(chunk);
    }
    this.partialSinceMs = this.decoder.hasPartialFrame ? (this.partialSinceMs ?? Date.now()) : null;
    if (bodies.length > 0) this.sendFrames(bodies);
    this.updatePause();
  }

  private sendFrames(bodies: WireBody[]): void {
    this.inFlight += bodies.length;
    const transfer: ArrayBuffer[] = [];
    for (const body of bodies) if (body instanceof Uint8Array) transfer.push(body.buffer as ArrayBuffer);
    const forget = this.state.pool.takeForgotten();
    scope.postMessage(forget === undefined ? { kind: "frames", connection: this.id, bodies } : { kind: "frames", connection: this.id, bodies, forget }, transfer);
  }

  /** Answers from the log thread, in request order. */
  onAnswers(answers: AnswerRef[], settled: number, frameBytesMax: number | undefined, close: boolean): void {
    this.inFlight -= settled;
    this.lastActivityMs = Date.now();
    if (frameBytesMax !== undefined) this.decoder.frameBytesMax = frameBytesMax;
    for (const answer of answers) {
      const slices = answer.slices.map((ref): ReadSlice => ({ ...ref, release: () => this.state.release(ref.token) }));
      if (this.closed) for (const slice of slices) slice.release();
      else this.outbound.pushReply(answer.head, slices);
    }
    if (close) this.closeAfterFlush = true;
    this.flush();
  }

  onDrain(): void {
    this.lastActivityMs = Date.now();
    this.flush();
  }

  private flush(): void {
    if (this.closed) return;
    try {
      if (this.outbound.flush() === "closed") return this.onClose();
    } catch (error) {
      return this.fail(new RunnelError("INTERNAL", `the broker failed to send a response: ${error instanceof Error ? error.message : String(error)}`));
    }
    if (this.closeAfterFlush && this.outbound.isEmpty) return this.close();
    this.updatePause();
  }

  private updatePause(): void {
    const setup = this.state.setup;
    const blocked = this.closeAfterFlush || this.inFlight >= setup.requestsInFlightMax || this.outbound.queuedBytes > setup.outboundQueueBytesMax;
    if (blocked === this.paused || this.closed) return;
    this.paused = blocked;
    if (blocked) {
      this.everPaused = true;
      this.socket.pause();
    } else {
      this.socket.resume();
    }
  }

  checkTimeouts(nowMs: number): void {
    if (this.closed) return;
    const setup = this.state.setup;
    const fd = socketFd(this.socket as Socket<unknown>);
    if (this.everPaused && fd !== null && libc.socketHungUp?.(fd) === true) return this.terminate();
    if (this.partialSinceMs !== null && !this.paused && nowMs - this.partialSinceMs > setup.frameTimeoutMs) {
      return this.fail(new RunnelError("TIMEOUT", `a partial frame was held for more than ${setup.frameTimeoutMs} ms`));
    }
    const quiet = this.inFlight === 0 && this.outbound.isEmpty && !this.decoder.hasPartialFrame;
    if (setup.idleTimeoutMs > 0 && quiet && nowMs - this.lastActivityMs > setup.idleTimeoutMs) this.close();
  }

  /** Sends one error frame (`id: null`) and closes, as server/connection.ts does. */
  private fail(error: RunnelError): void {
    if (this.closed) return;
    this.outbound.discard();
    this.socket.write(encodeErrorFrame(null, error));
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.onClose();
  }

  private terminate(): void {
    if (this.closed) return;
    this.socket.terminate();
    this.onClose();
  }

  /** The socket is gone: drop queued answers (unpinning their file ranges) and tell the log thread. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbound.discard();
    this.decoder.reset();
    this.state.connections.delete(this.id);
    scope.postMessage({ kind: "closed", connection: this.id });
  }
}

function listen(state: WorkerState): TCPSocketListener<SocketData> {
  const { host, port } = state.setup;
  // reusePort (SO_REUSEPORT) is a Bun.listen option that bun-types 1.4.5 does not declare; a
  // literal would fail the excess-property check, a variable of the declared type does not.
  const sharedPort = { reusePort: true };
  return Bun.listen<SocketData>({
    hostname: host,
    port,
    ...sharedPort,
    data: { connection: null },
    socket: {
      binaryType: "uint8array",
      open: (socket) => {
        socket.setNoDelay(true);
        const connection = new WorkerConnection(state.newConnectionId(), socket, state);
        socket.data = { connection };
        state.connections.set(connection.id, connection);
        scope.postMessage({ kind: "open", connection: connection.id, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
      },
      data: (socket, chunk) => socket.data.connection?.onData(chunk),
      drain: (socket) => socket.data.connection?.onDrain(),
      close: (socket) => socket.data?.connection?.onClose(),
      error: (socket) => socket.data?.connection?.onClose(),
    },
  });
}

function sweepIntervalMs(setup: WorkerSetup): number {
  const shortest = Math.min(setup.frameTimeoutMs, setup.idleTimeoutMs > 0 ? setup.idleTimeoutMs : Number.POSITIVE_INFINITY);
  return Math.max(25, Math.min(1_000, Math.floor(shortest / 4)));
}

/** Runs the worker: listens, then serves the log thread's messages until closeAll. */
function start(setup: WorkerSetup): void {
  const state = new WorkerState(setup);
  let listener: TCPSocketListener<SocketData>;
  try {
    listener = listen(state);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    scope.postMessage({ kind: "listenFailed", message: error instanceof Error ? error.message : String(error), code: typeof code === "string" ? code : null });
    return;
  }
  const sweep = setInterval(() => {
    const nowMs = Date.now();
    for (const connection of [...state.connections.values()]) connection.checkTimeouts(nowMs);
  }, sweepIntervalMs(setup));
  const reporter = setInterval(() => state.reportBytes(), STATS_REPORT_MS);
  const timers = { sweep, reporter };
  scope.onmessage = (event) => serve(state, event.data, listener, timers);
  scope.postMessage({ kind: "listening", port: listener.port });
}

function serve(state: WorkerState, message: ToWorker, listener: TCPSocketListener<SocketData>, timers: Record<string, ReturnType<typeof setInterval>>): void {
  switch (message.kind) {
    case "answers": {
      if (message.buffers !== undefined) state.pool.giveBack(message.buffers);
      const connection = state.connections.get(message.connection);
      if (connection !== undefined) connection.onAnswers(message.answers, message.settled, message.frameBytesMax, message.close === true);
      // Answers for a connection already gone: nothing to send, but their file ranges must be unpinned.
      else for (const answer of message.answers) for (const slice of answer.slices) state.release(slice.token);
      return;
    }
    case "refuse": {
      const connection = state.connections.get(message.connection);
      if (connection === undefined) return;
      connection.onAnswers([{ head: message.frame, slices: [] }], 0, undefined, true);
      return;
    }
    case "stopListening":
      listener.stop(false);
      return;
    case "closeAll":
      for (const timer of Object.values(timers)) clearInterval(timer);
      for (const connection of [...state.connections.values()]) connection.close();
      state.reportBytes();
      listener.stop(true);
      scope.postMessage({ kind: "allClosed" });
      return;
    case "setup":
      return;
  }
}

scope.onmessage = (event) => {
  if (event.data.kind === "setup") start(event.data);
};
