/**
 * @module log/producer-state
 * Idempotent-producer state of one partition: for each producer id, its epoch and the last
 * few batches it appended (sequence range and the offsets they got). With it the append path
 * answers a retried batch with its original offsets instead of storing it twice, and rejects a
 * sequence gap (OUT_OF_ORDER_SEQUENCE) or a fenced epoch (INVALID_PRODUCER_EPOCH).
 *
 * Rules for a batch whose producerId >= 0 (docs/protocol.md, "Idempotent producer"):
 *   - unknown producer id          -> accepted (a new producer, or one evicted from the table)
 *   - epoch older than the known   -> INVALID_PRODUCER_EPOCH
 *   - epoch newer than the known   -> accepted only with baseSequence 0 (the epoch restarts at 0)
 *   - same epoch, same (baseSequence, lastSequence) as a remembered batch -> duplicate
 *   - same epoch, baseSequence == last remembered lastSequence + 1 -> accepted
 *   - anything else                -> OUT_OF_ORDER_SEQUENCE
 * Sequences are i32 and wrap from 2^31 - 1 to 0, like Kafka's.
 *
 * Bounds: BATCHES_PER_PRODUCER batches per producer, and at most `producersMax` producers per
 * partition; the least recently used producer is forgotten first (its next batch is then
 * accepted as from a new producer, so a retry of a batch older than that is not recognised).
 *
 * Durability: the table is rebuilt on open from a snapshot plus a scan of the batch headers
 * after the snapshot's position (headers only, 61 bytes each, never the records). The snapshot
 * is written just before each recovery-point write, so the scan covers about the same bytes as
 * the log's own recovery scan. File `<partition dir>/producer-state`, one line of JSON:
 *
 *   {"version":1,"offset":O,"segment":S,"position":P,"producers":[[id,epoch,[[baseSeq,lastSeq,baseOffset,lastOffset],...]],...]}
 */
import { z } from "zod";
import { RunnelError } from "../errors.ts";
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, FIELD, readInt64, type BatchHeader } from "../format/record-batch.ts";
import type { Storage } from "./storage.ts";

export const PRODUCER_STATE_FILE = "producer-state";
/** Batches remembered per producer and partition: a retry of any of them is recognised. */
export const BATCHES_PER_PRODUCER = 5;
/** Producers tracked per partition before the least recently used is forgotten. */
export const PRODUCERS_PER_PARTITION_DEFAULT = 1_024;
const SEQUENCE_MODULUS = 2 ** 31;

export interface ProducerBatchRecord {
  baseSequence: number;
  lastSequence: number;
  baseOffset: number;
  lastOffset: number;
}

interface ProducerEntry {
  epoch: number;
  /** Oldest first, at most BATCHES_PER_PRODUCER. */
  batches: ProducerBatchRecord[];
}

/** Where a snapshot's state ends in the log: the rebuild scan starts there. */
export interface SnapshotPosition {
  offset: number;
  segment: number;
  position: number;
}

/** The sequence `count` places after `sequence`, wrapping at 2^31. */
export function sequenceAfter(sequence: number, count: number): number {
  return (sequence + count) % SEQUENCE_MODULUS;
}

const snapshotSchema = z.strictObject({
  version: z.literal(1),
  offset: z.number().int().min(0),
  segment: z.number().int().min(0),
  position: z.number().int().min(0),
  producers: z.array(
    z.tuple([
      z.number().int().min(0),
      z.number().int().min(0).max(0x7fff),
      z.array(z.tuple([z.number().int().min(0), z.number().int().min(0), z.number().int().min(0), z.number().int().min(0)])).max(BATCHES_PER_PRODUCER),
    ]),
  ),
});

export class ProducerStateTable {
  /** Map order is recency order: a producer is moved to the end whenever it appends. */
  private readonly entries = new Map<number, ProducerEntry>();
  /** Changed since the last snapshot. */
  dirty = false;

  constructor(private readonly producersMax: number = PRODUCERS_PER_PARTITION_DEFAULT) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Checks an idempotent batch before it is appended. Returns the remembered batch when this one
   * is a retry of it (append nothing, answer with its offsets), null when it should be appended;
   * throws OUT_OF_ORDER_SEQUENCE, INVALID_PRODUCER_EPOCH or INVALID_REQUEST.
   */
  check(header: BatchHeader, where: string): ProducerBatchRecord | null {
    const { producerId, producerEpoch, baseSequence } = header;
    if (producerEpoch < 0 || baseSequence < 0) {
      throw new RunnelError("INVALID_REQUEST", `${where}: producer ${producerId} sent epoch ${producerEpoch} and base sequence ${baseSequence}; both must be >= 0`);
    }
    const entry = this.entries.get(producerId);
    if (entry === undefined) return null;
    if (producerEpoch < entry.epoch) {
      throw new RunnelError("INVALID_PRODUCER_EPOCH", `${where}: producer ${producerId} epoch ${producerEpoch} is fenced by epoch ${entry.epoch}`, {
        details: { producerId, producerEpoch, currentEpoch: entry.epoch },
      });
    }
    const expectedSequence = producerEpoch > entry.epoch ? 0 : nextExpected(entry);
    if (producerEpoch === entry.epoch) {
      const lastSequence = sequenceAfter(baseSequence, header.recordCount - 1);
      for (const batch of entry.batches) {
        if (batch.baseSequence === baseSequence && batch.lastSequence === lastSequence) return batch;
      }
    }
    if (baseSequence !== expectedSequence) {
      throw new RunnelError("OUT_OF_ORDER_SEQUENCE", `${where}: producer ${producerId} epoch ${producerEpoch} sent base sequence ${baseSequence} where ${expectedSequence} was expected`, {
        details: { producerId, producerEpoch, expectedSequence, receivedSequence: baseSequence },
      });
    }
    return null;
  }

  /** Records an appended idempotent batch (also used by the rebuild scan, which trusts the log). */
  record(producerId: number, producerEpoch: number, baseSequence: number, recordCount: number, baseOffset: number): void {
    let entry = this.entries.get(producerId);
    if (entry !== undefined) this.entries.delete(producerId);
    if (entry === undefined || producerEpoch !== entry.epoch) entry = { epoch: producerEpoch, batches: [] };
    entry.batches.push({ baseSequence, lastSequence: sequenceAfter(baseSequence, recordCount - 1), baseOffset, lastOffset: baseOffset + recordCount - 1 });
    if (entry.batches.length > BATCHES_PER_PRODUCER) entry.batches.shift();
    this.entries.set(producerId, entry);
    if (this.entries.size > this.producersMax) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.dirty = true;
  }

  /** The snapshot file's bytes for the state as it is now, which ends at `position`. */
  encodeSnapshot(position: SnapshotPosition): string {
    const producers = [...this.entries].map(([id, entry]) => [id, entry.epoch, entry.batches.map((b) => [b.baseSequence, b.lastSequence, b.baseOffset, b.lastOffset])]);
    return `${JSON.stringify({ version: 1, ...position, producers })}\n`;
  }

  /** Reads a snapshot into this (empty) table; returns its position, or a problem. */
  loadSnapshot(bytes: Uint8Array): { position: SnapshotPosition } | { problem: string } {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return { problem: "producer-state is not JSON" };
    }
    const parsed = snapshotSchema.safeParse(json);
    if (!parsed.success) return { problem: `producer-state is invalid: ${parsed.error.issues[0]?.message ?? "?"}` };
    for (const [id, epoch, batches] of parsed.data.producers.slice(-this.producersMax)) {
      const records = batches.map(([baseSequence, lastSequence, baseOffset, lastOffset]) => ({ baseSequence, lastSequence, baseOffset, lastOffset }));
      this.entries.set(id, { epoch, batches: records });
    }
    const { offset, segment, position } = parsed.data;
    return { position: { offset, segment, position } };
  }

  clear(): void {
    this.entries.clear();
  }
}

function nextExpected(entry: ProducerEntry): number {
  const last = entry.batches[entry.batches.length - 1];
  return last === undefined ? 0 : sequenceAfter(last.lastSequence, 1);
}

const SCAN_BYTES = 64 * 1024;

/**
 * Walks the batch headers of one segment file from `fromPosition` to `end` (bytes already
 * verified by recovery) and records every idempotent batch. Reads 64 KiB windows and looks at
 * the headers only; a batch larger than the window costs one extra pread for its header.
 */
export function scanProducerBatches(storage: Storage, fd: number, fromPosition: number, end: number, table: ProducerStateTable): number {
  const window = new Uint8Array(SCAN_BYTES);
  const view = new DataView(window.buffer);
  let windowStart = 0;
  let windowLength = 0;
  let position = fromPosition;
  let batches = 0;
  while (end - position >= BATCH_HEADER_BYTES) {
    if (position < windowStart || position + BATCH_HEADER_BYTES > windowStart + windowLength) {
      windowStart = position;
      windowLength = storage.pread(fd, window.subarray(0, Math.min(SCAN_BYTES, end - position)), position);
      if (windowLength < BATCH_HEADER_BYTES) break;
    }
    const at = position - windowStart;
    const batchLength = view.getInt32(at + FIELD.batchLength);
    if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) break;
    const producerId = readInt64(view, at + FIELD.producerId);
    if (producerId >= 0) {
      const recordCount = view.getInt32(at + FIELD.recordCount);
      table.record(producerId, view.getInt16(at + FIELD.producerEpoch), view.getInt32(at + FIELD.baseSequence), recordCount, readInt64(view, at + FIELD.baseOffset));
    }
    position += BATCH_LOG_OVERHEAD_BYTES + batchLength;
    batches++;
  }
  return batches;
}
