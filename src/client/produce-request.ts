/**
 * @module client/produce-request
 * One produce request of the Producer, reused: its batches, its frame's chunk list and its
 * callbacks live as long as the object, and the Producer keeps answered ones for the next
 * request (a small pool). Why: built afresh, every request cost a closure scope, two function
 * objects, the framed-batch list and its entries, and the chunk list — garbage the producer's
 * process paused for at tens of thousands of requests a second (bench/alloc.bench.ts).
 *
 * Life: `add` batches, hand `encode` and `done` to the connection; the connection calls `encode`
 * once when it writes the request and `done` once with its answer (or failure). The owner reads
 * the outcome in `done` and only then may `reset` the request for reuse: the connection no longer
 * holds it, and the chunks were written before any answer could come.
 */
import type { AnswerCallback, EncodeFrame } from "./connection.ts";
import { type FramedBatch, encodeProduceFrame } from "./produce-frame.ts";
import type { ProducerBatch } from "./producer-batches.ts";
import type { WireMap } from "./wire.ts";
import type { RunnelError } from "../errors.ts";

/** What the request reports to: the Producer. */
export interface ProduceRequestOwner {
  onProduceWritten(request: ProduceRequest): void;
  onProduceSettled(request: ProduceRequest, error: RunnelError | null, response: WireMap | null): void;
}

export class ProduceRequest {
  readonly batches: ProducerBatch[] = [];
  /** Bytes of the batches added so far (the request's size bound is checked against it). */
  bytes = 0;
  durability = "written";
  private readonly framed: FramedBatch[] = [];
  /** framed's entries, kept across requests (framed itself is emptied by reset). */
  private readonly framedStore: FramedBatch[] = [];
  private readonly chunks: Uint8Array[] = [];

  constructor(private readonly owner: ProduceRequestOwner) {}

  add(batch: ProducerBatch): void {
    const index = this.batches.length;
    this.batches.push(batch);
    this.bytes += batch.bytes!.length;
    const framed = (this.framedStore[index] ??= { topicName: batch.state.topic.encodedName, partition: 0, bytes: batch.bytes!, headroomBytes: 0 });
    framed.topicName = batch.state.topic.encodedName;
    framed.partition = batch.state.partition;
    framed.bytes = batch.bytes!;
    // Envelope written into each batch's headroom: the batches are not copied (produce-frame).
    framed.headroomBytes = batch.bytes!.byteOffset - batch.storage!.byteOffset;
    this.framed.push(framed);
  }

  /** Called by the connection only when it writes the request: from then on its fate is unknown until answered. */
  readonly encode: EncodeFrame = (id) => {
    this.owner.onProduceWritten(this);
    return encodeProduceFrame(id, this.durability, this.framed, this.chunks);
  };

  readonly done: AnswerCallback = (error, response) => this.owner.onProduceSettled(this, error, response);

  /** Empties the request for reuse; drops its references to batches and their bytes. */
  reset(): void {
    this.batches.length = 0;
    this.bytes = 0;
    for (const framed of this.framed) framed.bytes = EMPTY;
    this.framed.length = 0;
    this.chunks.length = 0;
  }
}

const EMPTY = new Uint8Array(0);
