/**
 * @module server/workers/remote-connection
 * The log thread's half of a connection a network worker owns (connection-worker.ts): its
 * session, and its requests in order. Frame bodies arrive whole from the worker; each is run by
 * the same dispatch as a local connection's (server/dispatch.ts), so decoding, authorization,
 * appends, reads and their errors are the single-thread broker's, byte for byte. Answers go back
 * in request order (a long poll or a synced produce holds the ones after it, as in
 * server/connection.ts), and a request applied asynchronously (creating a topic) holds the
 * dispatch of the connection's later frames until it is applied.
 *
 * A fetch answer's file ranges stay pinned here (SlicePins) until the worker has sent them.
 */
import type { ReadSlice } from "../../log/api.ts";
import { Session } from "../../security/session.ts";
import { applicationOf, type BrokerContext, isClosingReply, releaseReply, type Reply } from "../context.ts";
import { dispatch, type RequestDecoder } from "../dispatch.ts";
import type { AnswerRef, SliceRef, ToWorker } from "./messages.ts";
import type { SharedBodies } from "./transfer-frames.ts";

type Slot = { reply: Reply | null };

/** File ranges lent to workers, by token, until they report them sent (or dropped). */
export class SlicePins {
  private readonly pinned = new Map<number, ReadSlice>();
  private nextToken = 1;

  pin(slice: ReadSlice): SliceRef {
    const token = this.nextToken++;
    this.pinned.set(token, slice);
    return { token, fd: slice.fd, position: slice.position, length: slice.length, firstOffset: slice.firstOffset };
  }

  /** Unpins once; a token already released (or from before releaseAll) is ignored. */
  release(token: number): void {
    const slice = this.pinned.get(token);
    if (slice === undefined) return;
    this.pinned.delete(token);
    slice.release();
  }

  /** Every range still lent (the workers are gone): unpin them all. */
  releaseAll(): void {
    for (const slice of this.pinned.values()) slice.release();
    this.pinned.clear();
  }

  get size(): number {
    return this.pinned.size;
  }
}

/** A head that is a view into a larger (possibly shared) buffer is copied so it can be transferred alone. */
function ownedBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
}

export class RemoteConnection {
  readonly session: Session;
  private readonly slots: Slot[] = [];
  private readonly waiting: Uint8Array[] = [];
  private holding = false;
  private closed = false;
  private closing = false;
  /** The closing answer went to the worker: nothing more is sent. */
  private closeSent = false;
  /** Requests finished since the last message to the worker (its in-flight count). */
  private settledUnsent = 0;
  private frameBytesMax: number;
  /** Ids of shared body buffers dispatch is done with, going back to the worker's pool with the next answers. */
  private spentBuffers: number[] = [];

  constructor(
    readonly id: number,
    remoteAddress: string,
    private readonly context: BrokerContext,
    private readonly decode: RequestDecoder,
    private readonly pins: SlicePins,
    private readonly shared: SharedBodies,
    private readonly send: (message: ToWorker, transfer: ArrayBuffer[]) => void,
    private readonly onSettled: () => void,
    firstFrameBytesMax: number,
  ) {
    this.session = new Session("native", remoteAddress);
    this.frameBytesMax = firstFrameBytesMax;
  }

  get isQuiet(): boolean {
    return this.closed || (this.slots.length === 0 && this.waiting.length === 0);
  }

  onFrames(bodies: readonly Uint8Array[]): void {
    if (this.closed || this.closing) return this.giveBack(bodies);
    for (const body of bodies) this.waiting.push(body);
    this.run();
  }

  /** The worker closed the connection: nothing more will be sent; release what is held. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this.slots) if (slot.reply !== null) releaseReply(slot.reply);
    this.slots.length = 0;
    this.giveBack(this.waiting.splice(0));
    this.onSettled();
  }

  /** Bodies that will never be dispatched: their shared buffers (and any spent ones not yet sent) go back to the worker's pool now. */
  private giveBack(bodies: readonly Uint8Array[]): void {
    const ids = this.spentBuffers;
    this.spentBuffers = [];
    for (const body of bodies) {
      const sharedId = this.shared.idOf(body);
      if (sharedId !== undefined) ids.push(sharedId);
    }
    if (ids.length > 0) this.send({ kind: "answers", connection: this.id, answers: [], settled: 0, buffers: ids }, []);
  }

  private run(): void {
    while (!this.holding && !this.closed && !this.closing) {
      const body = this.waiting.shift();
      if (body === undefined) break;
      this.handleFrame(body);
    }
    this.sendReady();
  }

  private handleFrame(body: Uint8Array): void {
    const result = dispatch(this.context, this.decode, body, this.session);
    // Dispatch is done with the body's bytes once it returns (as server/connection.ts relies on
    // for its reused assembly buffer): a shared one goes back to the worker's pool.
    const sharedId = this.shared.idOf(body);
    if (sharedId !== undefined) this.spentBuffers.push(sharedId);
    if (result instanceof Promise) {
      const slot: Slot = { reply: null };
      this.slots.push(slot);
      void result.then((reply) => this.settle(slot, reply));
      const applied = applicationOf(result);
      if (applied !== undefined) this.holdUntil(applied);
      return;
    }
    if (result.kind === "none") this.settledUnsent++;
    else this.slots.push({ reply: result });
  }

  private holdUntil(applied: Promise<unknown>): void {
    this.holding = true;
    const resume = (): void => {
      this.holding = false;
      this.run();
    };
    applied.then(resume, resume);
  }

  private settle(slot: Slot, reply: Reply): void {
    if (this.closed || this.closing) return releaseReply(reply);
    slot.reply = reply;
    this.sendReady();
  }

  /** Sends the answers at the front that are ready, with the count of requests settled. */
  private sendReady(): void {
    if (this.closed || this.closeSent) return;
    const answers: AnswerRef[] = [];
    const transfer: ArrayBuffer[] = [];
    let ready = 0;
    for (const slot of this.slots) {
      const reply = slot.reply;
      if (reply === null) break;
      ready++;
      const answer = this.toAnswer(reply);
      if (answer !== null) {
        answers.push(answer);
        transfer.push(answer.head.buffer as ArrayBuffer);
      }
      if (isClosingReply(reply)) {
        this.closing = true;
        for (const later of this.slots.slice(ready)) if (later.reply !== null) releaseReply(later.reply);
        ready = this.slots.length;
        break;
      }
    }
    if (ready > 0) this.slots.splice(0, ready);
    const settled = this.settledUnsent + ready;
    const frameBytesMax = this.raisedFrameLimit();
    if (answers.length === 0 && settled === 0 && frameBytesMax === undefined && !this.closing) return;
    this.settledUnsent = 0;
    this.closeSent = this.closing;
    const buffers = this.spentBuffers;
    if (buffers.length > 0) this.spentBuffers = [];
    this.send(
      { kind: "answers", connection: this.id, answers, settled, ...(frameBytesMax === undefined ? {} : { frameBytesMax }), ...(this.closing ? { close: true } : {}), ...(buffers.length > 0 ? { buffers } : {}) },
      transfer,
    );
    if (this.isQuiet) this.onSettled();
  }

  private toAnswer(reply: Reply): AnswerRef | null {
    if (reply.kind === "frame") return { head: ownedBytes(reply.frame), slices: [] };
    if (reply.kind === "fetch") return { head: ownedBytes(reply.head), slices: reply.slices.map((slice) => this.pins.pin(slice)) };
    return null;
  }

  /** Authenticated (authenticate answers synchronously): the ordinary frame limit from now on. */
  private raisedFrameLimit(): number | undefined {
    const full = this.context.config.frameBytesMax;
    if (this.frameBytesMax >= full || this.session.principal.kind !== "user") return undefined;
    this.frameBytesMax = full;
    return full;
  }
}
