/**
 * @module server/connection
 * One client connection: frames in, replies out, in request order.
 *
 * - Frames: a FrameDecoder turns TCP chunks into frame bodies; a length over frameBytesMax gets
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
 * - Timeouts: the broker's sweep calls `checkTimeouts`: a partial frame held longer than
 *   frameTimeoutMs, or no traffic and nothing in flight for idleTimeoutMs, closes the connection.
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
import { applicationOf, type BrokerContext, releaseReply, type Reply } from "./context.ts";
import { dispatch, type RequestDecoder } from "./dispatch.ts";
import { libc } from "../native/libc.ts";
import { OutboundQueue } from "./outbound.ts";
import { socketFd } from "./socket-fd.ts";

type Slot = { reply: Reply | null };

export interface ConnectionHooks {
  /** Called whenever the connection may have become quiet (nothing in flight, nothing queued). */
  onSettled(connection: Connection): void;
}

export class Connection {
  private readonly decoder: FrameDecoder;
  private readonly outbound: OutboundQueue;
  private readonly config: Config;
  private readonly slots: Slot[] = [];
  private readonly pendingChunks: Uint8Array[] = [];
  private paused = false;
  /** A request is being applied asynchronously: no later frame is dispatched until it is. */
  private holding = false;
  /** Set once the connection is first paused: from then on the sweep checks its peer. */
  private everPaused = false;
  private closed = false;
  private lastActivityMs = Date.now();
  private partialSinceMs: number | null = null;

  constructor(
    private readonly socket: Socket<unknown>,
    private readonly context: BrokerContext,
    private readonly decode: RequestDecoder,
    private readonly hooks: ConnectionHooks,
  ) {
    this.config = context.config;
    // Safe to reuse the assembly buffer: every handler is done with the request's bytes when
    // dispatch returns (a produce batch is appended synchronously; later work uses decoded copies;
    // a produce that must first create its topic copies its batches: handlers/produce.ts).
    this.decoder = new FrameDecoder(context.config.frameBytesMax, { reuseAssembly: true });
    this.outbound = new OutboundQueue(socket, context.stats, context.zeroCopy);
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
    this.lastActivityMs = Date.now();
    if (this.decoder.unreadBytes === 0 && this.pendingChunks.length === 0) this.decoder.push(chunk);
    else this.pendingChunks.push(chunk);
    this.pump();
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
    this.hooks.onSettled(this);
  }

  checkTimeouts(nowMs: number): void {
    if (this.closed) return;
    if (this.everPaused && this.peerGone()) {
      this.context.logger.debug({}, "peer vanished from a connection once paused; closing it");
      this.terminate();
      return;
    }
    if (this.partialSinceMs !== null && !this.paused && nowMs - this.partialSinceMs > this.config.frameTimeoutMs) {
      this.fail(new RunnelError("TIMEOUT", `a partial frame was held for more than ${this.config.frameTimeoutMs} ms`));
      return;
    }
    const idleMs = this.config.idleTimeoutMs;
    if (idleMs > 0 && this.isQuiet && !this.decoder.hasPartialFrame && nowMs - this.lastActivityMs > idleMs) {
      this.close();
    }
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
    if (this.holding) return true;
    const inFlight = this.slots.length + this.outbound.repliesQueued;
    return inFlight >= this.config.requestsInFlightMax || this.outbound.queuedBytes > this.config.outboundQueueBytesMax;
  }

  /** Reads frames while not blocked, sends what is ready, and pauses or resumes the socket. */
  private pump(): void {
    try {
      // Loop while a flush unblocks frames that are already buffered: no new data event
      // will come for them.
      for (;;) {
        this.readFrames();
        this.moveReadyReplies();
        if (this.outbound.flush() === "closed") return this.onClose();
        if (this.closed || this.isBlocked() || !this.hasBufferedInput()) break;
      }
    } catch (error) {
      if (error instanceof FrameError) return this.fail(error);
      this.context.logger.error({ err: error }, "connection failed; closing it");
      return this.fail(new RunnelError("INTERNAL", "the broker failed to send a response"));
    }
    this.trackPartialFrame();
    this.setPaused(this.isBlocked());
    if (this.isQuiet) this.hooks.onSettled(this);
  }

  private hasBufferedInput(): boolean {
    return this.decoder.unreadBytes > 0 || this.pendingChunks.length > 0;
  }

  private readFrames(): number {
    let frames = 0;
    while (!this.closed && !this.isBlocked()) {
      const body = this.decoder.next();
      if (body === null) {
        const chunk = this.pendingChunks.shift();
        if (chunk === undefined) break;
        this.decoder.push(chunk);
        continue;
      }
      frames++;
      this.handleFrame(body);
    }
    if (frames > 0) this.partialSinceMs = null;
    return frames;
  }

  private handleFrame(body: Uint8Array): void {
    const result = dispatch(this.context, this.decode, body);
    if (result instanceof Promise) {
      const slot: Slot = { reply: null };
      this.slots.push(slot);
      void result.then((reply) => this.settle(slot, reply));
      const applied = applicationOf(result);
      if (applied !== undefined) this.holdUntil(applied);
      return;
    }
    if (result.kind === "none") return;
    this.slots.push({ reply: result });
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
    if (this.closed) return releaseReply(reply);
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
    }
    if (ready > 0) this.slots.splice(0, ready);
  }

  private trackPartialFrame(): void {
    if (!this.decoder.hasPartialFrame) this.partialSinceMs = null;
    else if (this.partialSinceMs === null) this.partialSinceMs = Date.now();
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
    this.context.logger.debug({ code: error.code, message: error.message }, "closing a connection");
    this.outbound.discard();
    this.socket.write(encodeErrorFrame(null, error));
    this.close();
  }
}
