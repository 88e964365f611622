/**
 * @module listeners/kafka/connection
 * One Kafka client connection: size-prefixed frames in (the native FrameDecoder: a length over
 * frameBytesMax, or a "negative" one, closes the connection before anything is allocated; a
 * straddling frame is admitted by its declared length against the broker's buffered-bytes
 * budget), requests answered strictly in order, one at a time — Kafka's own rule, so a long-poll
 * Fetch holds back the requests behind it on the same connection, as on Apache Kafka — and
 * responses out through the native outbound queue (server/outbound.ts), whose file ranges go
 * out with sendfile.
 *
 * Backpressure: reading pauses while requestsInFlightMax frames (or more than frameBytesMax bytes
 * of them) wait their turn, while the outbound queue holds more than outboundQueueBytesMax, and
 * while waiting for room in the memory budget. Waiting frames are charged to that budget.
 * A malformed frame, an unknown API key or version, or a handler bug closes the connection (the
 * broker keeps running); a partial frame held past frameTimeoutMs closes it too, and so does
 * idleTimeoutMs without traffic and with nothing in flight (the listener's sweep checks both).
 */
import type { Socket } from "bun";
import { FrameDecoder } from "../../protocol/frame.ts";
import { OutboundQueue } from "../../server/outbound.ts";
import type { KafkaContext } from "./context.ts";
import { Session } from "../../security/session.ts";
import { type DispatchResult, dispatch, type KafkaFrame } from "./dispatch.ts";

export class KafkaConnection {
  private readonly decoder: FrameDecoder;
  private readonly outbound: OutboundQueue;
  private readonly waiting: Uint8Array[] = [];
  /** Chunks received before the decoder finished the previous one. */
  private readonly chunks: Uint8Array[] = [];
  /** Bytes of the frames in `waiting`, charged to the broker's memory budget until they run. */
  private waitingBytes = 0;
  private busy = false;
  private paused = false;
  private closed = false;
  private partialSinceMs: number | null = null;
  private lastActivityMs = Date.now();
  private readonly memoryWaiter = () => this.pump();
  /** Who the client is (security/session.ts): every request is handled as this session. */
  readonly session: Session;

  constructor(
    private readonly socket: Socket<unknown>,
    private readonly context: KafkaContext,
    /** Told when a request waited on settles or queued answers drain: a stopping broker re-checks quiet. */
    private readonly onSettled: () => void = () => {},
    /** sendfile for fetched records (false for TLS connections and when zeroCopy is off). */
    zeroCopy = context.broker.zeroCopy,
  ) {
    const broker = context.broker;
    this.decoder = new FrameDecoder(broker.config.frameBytesMax, { memory: broker.memory });
    this.outbound = new OutboundQueue(socket, broker.stats, zeroCopy, broker.memory);
    this.session = new Session("kafka", socket.remoteAddress);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Nothing read and not answered, nothing queued to send. */
  get isQuiet(): boolean {
    return !this.busy && this.waiting.length === 0 && this.outbound.isEmpty;
  }

  onData(chunk: Uint8Array): void {
    if (this.closed) return;
    this.lastActivityMs = Date.now();
    this.context.broker.memory.noteReceived(chunk.length);
    // A chunk can arrive while the last one is not fully read (reading paused): it waits its turn.
    if (this.decoder.unreadBytes > 0 || this.chunks.length > 0) this.chunks.push(chunk);
    else this.decoder.push(chunk);
    this.pump();
  }

  onDrain(): void {
    this.send();
    this.pump();
    this.onSettled();
  }

  /** Takes whole frames while not blocked, runs them, and pauses or resumes reading. */
  private pump(): void {
    if (this.closed) return;
    for (;;) {
      try {
        this.takeFrames();
      } catch (error) {
        return this.close(error instanceof Error ? error.message : String(error));
      }
      this.runNext();
      // Frames that ran at once may have unblocked reading: go on with what is already received.
      const more = this.decoder.unreadBytes > 0 || this.chunks.length > 0;
      if (this.closed || this.busy || !more || this.isBlocked()) break;
    }
    if (this.closed) return;
    if (this.decoder.waitingForMemory) this.context.broker.memory.wait(this.memoryWaiter, this.decoder.memoryWantedBytes, this.decoder.partialFrameBytes);
    this.partialSinceMs = this.decoder.hasPartialFrame ? (this.partialSinceMs ?? Date.now()) : null;
    this.setPaused(this.isBlocked() || this.decoder.waitingForMemory);
  }

  private takeFrames(): void {
    while (!this.isBlocked()) {
      if (this.decoder.unreadBytes === 0 && this.chunks.length > 0 && !this.decoder.waitingForMemory) this.decoder.push(this.chunks.shift() as Uint8Array);
      const frame = this.decoder.next();
      if (frame === null) {
        if (this.decoder.unreadBytes === 0 && this.chunks.length > 0 && !this.decoder.waitingForMemory) continue;
        return;
      }
      this.waiting.push(frame);
      this.waitingBytes += frame.length;
      this.context.broker.memory.charge(frame.length);
    }
  }

  private isBlocked(): boolean {
    const config = this.context.broker.config;
    return (
      this.waiting.length >= config.requestsInFlightMax ||
      this.waitingBytes > config.frameBytesMax ||
      this.outbound.queuedBytes > config.outboundQueueBytesMax ||
      this.decoder.waitingForMemory
    );
  }

  private runNext(): void {
    while (!this.busy && !this.closed) {
      const frame = this.waiting.shift();
      if (frame === undefined) return;
      this.waitingBytes -= frame.length;
      this.context.broker.memory.release(frame.length);
      let result: DispatchResult | Promise<DispatchResult>;
      try {
        result = dispatch(this.context, frame, this.session);
      } catch (error) {
        return this.fail(error);
      }
      if (result instanceof Promise) {
        this.busy = true;
        result.then(
          (settled) => {
            this.busy = false;
            this.finish(settled);
            this.pump();
            this.onSettled();
          },
          (error: unknown) => {
            this.fail(error);
            this.onSettled();
          },
        );
        return;
      }
      this.finish(result);
    }
  }

  private finish(result: DispatchResult): void {
    if (this.closed) {
      if (result.kind === "reply") releaseFrame(result.frame);
      return;
    }
    if (result.kind === "close") return this.close(result.reason);
    if (result.kind === "none") return;
    const { parts } = result.frame;
    // The queue sends each reply's bytes then its slices: hand it the pieces in order.
    for (let index = 0; index < parts.length; index++) {
      const part = parts[index];
      if (part instanceof Uint8Array) {
        const next = parts[index + 1];
        if (next !== undefined && !(next instanceof Uint8Array)) {
          this.outbound.pushReply(part, [next]);
          index++;
        } else this.outbound.pushReply(part);
      }
    }
    this.send();
  }

  private send(): void {
    if (this.closed) return;
    try {
      if (this.outbound.flush() === "closed") this.close("peer closed");
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    this.context.broker.logger.warn({ err: error, listener: "kafka" }, "Kafka request failed; closing its connection");
    this.close(error instanceof Error ? error.message : String(error));
  }

  /** Closes a connection whose partial frame is older than frameTimeoutMs, or that was idle for idleTimeoutMs. */
  checkTimeouts(nowMs: number): void {
    const config = this.context.broker.config;
    if (this.partialSinceMs !== null && !this.paused && nowMs - this.partialSinceMs > config.frameTimeoutMs) return this.close("partial frame timed out");
    if (config.idleTimeoutMs > 0 && this.isQuiet && !this.decoder.hasPartialFrame && nowMs - this.lastActivityMs > config.idleTimeoutMs) this.close("idle");
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused || this.closed) return;
    this.paused = paused;
    if (paused) this.socket.pause();
    else this.socket.resume();
  }

  close(reason = "closed"): void {
    if (this.closed) return;
    this.context.broker.logger.debug({ reason, listener: "kafka" }, "Kafka connection closed");
    this.onClose();
    this.socket.end();
  }

  /** Frees what the connection holds (socket closed by either side). */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.context.broker.memory.cancelWait(this.memoryWaiter);
    this.decoder.reset();
    this.outbound.discard();
    this.waiting.length = 0;
    this.chunks.length = 0;
    this.context.broker.memory.release(this.waitingBytes);
    this.waitingBytes = 0;
  }
}

function releaseFrame(frame: KafkaFrame): void {
  for (const part of frame.parts) if (!(part instanceof Uint8Array)) part.release();
}
