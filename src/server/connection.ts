/**
 * @module server/connection
 * One client connection: frames in, replies out, in request order.
 *
 * - Frames: a FrameDecoder turns TCP chunks into frame bodies; a length over frameBytesMax (or,
 *   with authentication on and before it, PRE_AUTHENTICATION_FRAME_BYTES_MAX) gets
 *   one error frame (`id: null`, MESSAGE_TOO_LARGE) and closes this connection only.
 * - Ordering: requests run as they arrive and may finish out of order (a long-poll fetch, a
 *   synced produce). Each request that will answer takes a slot in `slots`, in arrival order;
 *   a reply goes out only when every slot before it has gone out. A produce with durability
 *   `none` takes no slot, so it can never hold up the answers after it.
 * - Application order: a request whose application is itself asynchronous (creating or deleting
 *   a topic: context.ts appliedLater) holds the reading of later frames until it is applied, so
 *   requests on one connection take effect in the order sent. Answered-later requests (long
 *   polls, synced produces) hold nothing.
 * - Backpressure: reading pauses (socket.pause) while `requestsInFlightMax` slots are open or
 *   the outbound queue holds more than `outboundQueueBytesMax` bytes, and resumes when both
 *   drop below; frames already read stay in the decoder meanwhile.
 * - Memory: the decoder admits a straddling frame by reserving its declared length from the
 *   broker-wide budget (server/memory-budget.ts) before taking its body; when that is refused,
 *   the connection pauses reading and waits its turn for room. The outbound queue charges its bytes there too, and a
 *   connection with answers queued stops reading while the budget is exhausted. Reuse buffers
 *   are dropped once unused for ASSEMBLY_IDLE_MS, and everything on close.
 * - Turns: a connection in the middle of a large frame yields its reads to others once an
 *   event-loop iteration has read enough (server/read-turns.ts).
 * - Received chunks: a large chunk from Bun is freed as soon as the decoder has taken all of its
 *   bytes (server/received-chunks.ts), not at the engine's next collection.
 * - Timeouts: the broker's sweep calls `checkTimeouts`: a partial frame held longer than
 *   frameTimeoutMs (also while waiting for memory, though not while paused by backpressure),
 *   or no traffic and nothing in flight for idleTimeoutMs, closes the connection.
 * - Logs name the peer (`peer: "address:port"`); a peer that goes away mid-answer (EPIPE,
 *   ECONNRESET) is a debug-level event, never a storage error.
 * - Vanished peers: Bun can miss the close of a socket whose reads were paused when its peer
 *   reset it (seen with Bun 1.4.5, broker and client in separate processes): the connection then
 *   sits, holding its queued answers, until the idle timeout. So every sweep asks the kernel
 *   (a zero-timeout poll) whether the peer of a connection that was ever paused is gone.
 */
import type { Socket } from "bun";
import type { Config } from "../config.ts";
import { RunnelError } from "../errors.ts";
import { FrameDecoder, FrameError } from "../protocol/frame.ts";
import { encodeErrorFrame } from "../protocol/messages.ts";
import { applicationOf, type BrokerContext, isClosingReply, releaseReply, type Reply } from "./context.ts";
import { dispatch, type RequestDecoder } from "./dispatch.ts";
import { Session } from "../security/session.ts";
import { PRE_AUTHENTICATION_FRAME_BYTES_MAX } from "../security/authenticator.ts";
import { SMALL_FRAME_BYTES } from "./memory-budget.ts";
import { libc } from "../native/libc.ts";
import { OutboundQueue } from "./outbound.ts";
import { socketFd } from "./socket-fd.ts";
import { freeReceivedChunk } from "./received-chunks.ts";

type Slot = { reply: Reply | null };

/** Answered slots kept per connection for reuse. */
const SPARE_SLOTS_MAX = 16;

/** A connection that assembled no frame (one straddling reads) for this long gives back its reuse buffers (frame.ts). */
const ASSEMBLY_IDLE_MS = 1_000;

export interface ConnectionHooks {
  /** Called whenever the connection may have become quiet (nothing in flight, nothing queued). */
  onSettled(connection: Connection): void;
}

export class Connection {
  private readonly decoder: FrameDecoder;
  private readonly outbound: OutboundQueue;
  private readonly config: Config;
  private readonly slots: Slot[] = [];
  private readonly spareSlots: Slot[] = [];
  private readonly pendingChunks: Uint8Array[] = [];
  private paused = false;
  /** A request is being applied asynchronously: no later frame is dispatched until it is. */
  private holding = false;
  /** Set once the connection is first paused: from then on the sweep checks its peer. */
  private everPaused = false;
  private closed = false;
  /** A closing reply (context.ts closesConnection) was queued: read nothing more, close once it is sent. */
  private closeAfterFlush = false;
  private lastActivityMs = Date.now();
  private partialSinceMs: number | null = null;
  /** Last time a partial frame was held: a reuse buffer unused since ASSEMBLY_IDLE_MS is dropped. */
  private lastAssemblyMs = 0;
  /** True while registered with the budget as waiting for room. */
  private waitingForMemory = false;
  private readonly memoryWaiter = (): void => {
    this.waitingForMemory = false;
    if (!this.closed) this.pump();
  };
  /** True while paused to give other connections their turn (read-turns.ts). */
  private yielding = false;
  private readonly turnResumer = (): void => {
    this.yielding = false;
    if (!this.closed) this.pump();
  };
  /** The chunk from Bun the decoder is reading, freed once it has taken every byte (received-chunks.ts). */
  private heldChunk: Uint8Array | null = null;
  /** "address:port" of the client, for log lines. */
  readonly peer: string;
  /** Who the client is (security/session.ts): every request is handled as this session. */
  readonly session: Session;

  constructor(
    private readonly socket: Socket<unknown>,
    private readonly context: BrokerContext,
    private readonly decode: RequestDecoder,
    private readonly hooks: ConnectionHooks,
    /** sendfile for fetched records (false for TLS connections and when zeroCopy is off). */
    zeroCopy = context.zeroCopy,
  ) {
    this.config = context.config;
    // Safe to reuse the assembly buffer: every handler is done with the request's bytes when
    // dispatch returns (a produce batch is appended synchronously; later work uses decoded copies;
    // a produce that must first create its topic copies its batches: handlers/produce.ts).
    this.decoder = new FrameDecoder(context.config.frameBytesMax, { reuseAssembly: true, memory: context.memory });
    this.outbound = new OutboundQueue(socket, context.stats, zeroCopy, context.memory);
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.session = new Session("native", socket.remoteAddress);
    if (context.authenticator.required) this.decoder.frameBytesMax = Math.min(PRE_AUTHENTICATION_FRAME_BYTES_MAX, context.config.frameBytesMax);
  }

  /** Nothing in flight and nothing waiting to be sent. */
  get isQuiet(): boolean {
    return this.slots.length === 0 && this.outbound.isEmpty;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onData(chunk: Uint8Array): void {
    if (this.closed) return;
    this.context.stats.bytesReceived += chunk.length;
    this.context.memory.noteReceived(chunk.length);
    this.lastActivityMs = Date.now();
    if (this.decoder.unreadBytes === 0 && this.pendingChunks.length === 0) this.pushChunk(chunk);
    else this.pendingChunks.push(chunk);
    if (this.context.readTurns.noteRead(chunk.length) && this.decoder.partialFrameBytes > SMALL_FRAME_BYTES) this.yieldTurn();
    this.pump();
  }

  /** Gives the decoder a chunk; the one before it has been taken whole (push requires it) and is freed. */
  private pushChunk(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    this.freeHeldChunk();
    this.heldChunk = chunk;
  }

  /**
   * Frees the chunk the decoder was reading, once it has taken all of it: frames handed out of it
   * went to dispatch, which is done with a request's bytes when it returns (see the constructor).
   */
  private freeHeldChunk(): void {
    const chunk = this.heldChunk;
    if (chunk === null) return;
    this.heldChunk = null;
    freeReceivedChunk(chunk);
  }

  private yieldTurn(): void {
    if (this.yielding) return;
    this.yielding = true;
    this.context.readTurns.yieldTurn(this.turnResumer);
  }

  onDrain(): void {
    if (this.closed) return;
    this.lastActivityMs = Date.now();
    this.pump();
  }

  /** The socket closed (either side): drop queued output and release every file slice. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.paused) this.context.stats.connectionsPaused--;
    this.outbound.discard();
    for (const slot of this.slots) if (slot.reply !== null) releaseReply(slot.reply);
    this.slots.length = 0;
    this.pendingChunks.length = 0;
    this.context.memory.cancelWait(this.memoryWaiter);
    this.waitingForMemory = false;
    this.context.readTurns.cancel(this.turnResumer);
    this.yielding = false;
    this.decoder.reset();
    this.hooks.onSettled(this);
  }

  checkTimeouts(nowMs: number): void {
    if (this.closed) return;
    if (this.everPaused && this.peerGone()) {
      this.context.logger.debug({ peer: this.peer }, "peer vanished from a connection once paused; closing it");
      this.terminate();
      return;
    }
    const waitingForMemory = this.decoder.waitingForMemory;
    if (this.partialSinceMs !== null && !this.isBlocked() && nowMs - this.partialSinceMs > this.config.frameTimeoutMs) {
      this.fail(waitingForMemory ? this.memoryTimeout() : new RunnelError("TIMEOUT", `a partial frame was held for more than ${this.config.frameTimeoutMs} ms`));
      return;
    }
    if (!this.decoder.hasPartialFrame && nowMs - this.lastAssemblyMs > ASSEMBLY_IDLE_MS) this.decoder.dropAssemblies();
    const idleMs = this.config.idleTimeoutMs;
    if (idleMs > 0 && this.isQuiet && !this.decoder.hasPartialFrame && nowMs - this.lastActivityMs > idleMs) {
      this.close();
    }
  }

  private memoryTimeout(): RunnelError {
    const budget = this.context.memory;
    return new RunnelError(
      "TIMEOUT",
      `a partial frame waited more than ${this.config.frameTimeoutMs} ms for room in the broker's buffered-bytes budget ` +
        `(${budget.bytesMax} bytes, held by other connections' partial frames and queued answers); retry later or send smaller frames`,
      { details: { bufferedBytesMax: budget.bytesMax } },
    );
  }

  private peerGone(): boolean {
    const fd = socketFd(this.socket);
    const hungUp = libc.socketHungUp;
    return fd !== null && hungUp !== null && hungUp(fd);
  }

  /** Drops the connection at once (its peer is gone: there is no one to say goodbye to). */
  private terminate(): void {
    if (this.closed) return;
    this.socket.terminate();
    this.onClose();
  }

  /** Ends the connection (shutdown, idle). */
  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.onClose();
  }

  private isBlocked(): boolean {
    if (this.holding || this.closeAfterFlush) return true;
    const inFlight = this.slots.length + this.outbound.repliesQueued;
    const queuedBytes = this.outbound.queuedBytes;
    return inFlight >= this.config.requestsInFlightMax || queuedBytes > this.config.outboundQueueBytesMax || (queuedBytes > 0 && this.context.memory.isExhausted);
  }

  /** Reads frames while not blocked, sends what is ready, and pauses or resumes the socket. */
  private pump(): void {
    try {
      // Loop while a flush unblocks frames that are already buffered: no new data event
      // will come for them.
      for (;;) {
        this.readFrames();
        this.moveReadyReplies();
        if (this.outbound.flush() === "closed") return this.peerClosed();
        if (this.closeAfterFlush && this.outbound.isEmpty) return this.close();
        if (this.closed || this.isBlocked() || this.decoder.waitingForMemory || !this.hasBufferedInput()) break;
      }
    } catch (error) {
      if (error instanceof FrameError) return this.fail(error);
      this.context.logger.error({ err: error, peer: this.peer }, "connection failed; closing it");
      return this.fail(new RunnelError("INTERNAL", "the broker failed to send a response"));
    }
    if (this.decoder.unreadBytes === 0) this.freeHeldChunk();
    this.trackPartialFrame();
    if (this.decoder.waitingForMemory) this.waitForMemory();
    this.setPaused(this.isBlocked() || this.decoder.waitingForMemory || this.yielding);
    if (this.isQuiet) this.hooks.onSettled(this);
  }

  /** The peer went away while answers were being sent (EPIPE, ECONNRESET): not the broker's fault. */
  private peerClosed(): void {
    this.context.logger.debug({ peer: this.peer }, "client went away while answers were being sent");
    this.onClose();
  }

  private waitForMemory(): void {
    if (this.waitingForMemory || this.closed) return;
    this.waitingForMemory = true;
    this.context.memory.wait(this.memoryWaiter, this.decoder.memoryWantedBytes, this.decoder.partialFrameBytes);
  }

  private hasBufferedInput(): boolean {
    return this.decoder.unreadBytes > 0 || this.pendingChunks.length > 0;
  }

  private readFrames(): number {
    let frames = 0;
    while (!this.closed && !this.isBlocked()) {
      const body = this.decoder.next();
      if (body === null) {
        if (this.decoder.waitingForMemory) break;
        const chunk = this.pendingChunks.shift();
        if (chunk === undefined) break;
        this.pushChunk(chunk);
        continue;
      }
      frames++;
      this.handleFrame(body);
    }
    if (frames > 0) this.partialSinceMs = null;
    return frames;
  }

  private handleFrame(body: Uint8Array): void {
    const result = dispatch(this.context, this.decode, body, this.session);
    // Authenticated (authenticate answers synchronously): frames of the ordinary size from now on.
    if (this.decoder.frameBytesMax < this.config.frameBytesMax && this.session.principal.kind === "user") this.decoder.frameBytesMax = this.config.frameBytesMax;
    if (result instanceof Promise) {
      const slot: Slot = { reply: null };
      this.slots.push(slot);
      void result.then((reply) => this.settle(slot, reply));
      const applied = applicationOf(result);
      if (applied !== undefined) this.holdUntil(applied);
      return;
    }
    if (result.kind === "none") return;
    const slot = this.spareSlots.pop();
    if (slot === undefined) this.slots.push({ reply: result });
    else {
      slot.reply = result;
      this.slots.push(slot);
    }
  }

  private holdUntil(applied: Promise<unknown>): void {
    this.holding = true;
    const resume = (): void => {
      this.holding = false;
      if (!this.closed) this.pump();
    };
    applied.then(resume, resume);
  }

  private settle(slot: Slot, reply: Reply): void {
    if (this.closed || this.closeAfterFlush) return releaseReply(reply);
    slot.reply = reply;
    this.pump();
  }

  /** Moves replies from the front of `slots` to the outbound queue, stopping at one not ready. */
  private moveReadyReplies(): void {
    let ready = 0;
    for (const slot of this.slots) {
      const reply = slot.reply;
      if (reply === null) break;
      if (reply.kind === "frame") this.outbound.pushReply(reply.frame);
      else if (reply.kind === "fetch") this.outbound.pushReply(reply.head, reply.slices);
      ready++;
      if (isClosingReply(reply)) {
        this.closeAfterFlush = true;
        for (const later of this.slots.slice(ready)) if (later.reply !== null) releaseReply(later.reply);
        this.slots.length = 0;
        return;
      }
    }
    // A few shift()s, not splice(): splice returns an array of what it removed (garbage per pump).
    if (ready > SPARE_SLOTS_MAX) this.slots.splice(0, ready);
    else for (let index = 0; index < ready; index++) this.recycleSlot(this.slots.shift()!);
  }

  /** A slot whose reply went out, for the next synchronous reply (an answered-later one's closure may still hold its own). */
  private recycleSlot(slot: Slot): void {
    slot.reply = null;
    if (this.spareSlots.length < SPARE_SLOTS_MAX) this.spareSlots.push(slot);
  }

  private trackPartialFrame(): void {
    if (!this.decoder.hasPartialFrame) {
      this.partialSinceMs = null;
      return;
    }
    // Every frame that is assembled (straddles reads) is partial at the end of some pump.
    this.lastAssemblyMs = Date.now();
    this.partialSinceMs ??= this.lastAssemblyMs;
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused || this.closed) return;
    this.paused = paused;
    if (paused) this.everPaused = true;
    this.context.stats.connectionsPaused += paused ? 1 : -1;
    if (paused) this.socket.pause();
    else this.socket.resume();
  }

  /** Sends one error frame with `id: null` (best effort) and closes this connection. */
  private fail(error: RunnelError): void {
    if (this.closed) return;
    if (error.code === "MESSAGE_TOO_LARGE") this.context.stats.framesOversized++;
    this.context.logger.debug({ peer: this.peer, code: error.code, message: error.message }, "closing a connection");
    this.outbound.discard();
    this.socket.write(encodeErrorFrame(null, error));
    this.close();
  }
}
