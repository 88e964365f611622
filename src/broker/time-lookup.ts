/**
 * @module broker/time-lookup
 * Offsets by time, exact to the record, for any listener: the first record whose timestamp is at
 * or after a time (Kafka's ListOffsets by timestamp), and the record with the largest timestamp
 * (ListOffsets -3, KIP-734). The log's indexes find the first batch whose maxTimestamp reaches
 * the time; that batch's records are then read (either format; a compressed Kafka batch is
 * decompressed, bounded by `decompressedBytesMax`) for the exact record and its timestamp.
 *
 * Non-obvious: a compressed batch that inflates past the bound is not an error here — the
 * answer falls back to the batch's base offset with timestamp -1 (the consumer then skips the
 * older records itself), so a hostile batch costs no memory and the lookup still answers.
 */
import { toRunnelError } from "../errors.ts";
import { type BatchHeader, type BatchRecord, decodeRecords, readBatchHeader } from "../format/record-batch.ts";
import type { Partition } from "../log/api.ts";
import { LIMITS } from "../limits.ts";

export interface TimedOffset {
  offset: number;
  /** The record's timestamp; -1 when only the batch is known (see the module note). */
  timestampMs: number;
}

/** The first record (offset >= logStartOffset) with timestamp >= `timestampMs`, or null when none is. */
export function offsetForTime(partition: Partition, timestampMs: number, decompressedBytesMax: number = LIMITS.batchBytesMax): TimedOffset | null {
  let offset = partition.offsetForTimestamp(timestampMs);
  while (offset !== null && offset < partition.nextOffset) {
    const slice = partition.read(offset, 1); // at least the one whole batch holding `offset`
    if (slice === null) return null;
    let batch: Uint8Array;
    try {
      batch = partition.readBytes(slice);
    } finally {
      slice.release();
    }
    const header = readBatchHeader(batch);
    const lastOffset = header.baseOffset + header.lastOffsetDelta;
    if (header.maxTimestamp >= timestampMs) {
      const found = firstRecordAtOrAfter(batch, header, offset, timestampMs, decompressedBytesMax);
      if (found !== null) return found;
    }
    // Only when the log start cut into the batch, or its header's maxTimestamp overstated its records.
    offset = lastOffset + 1;
  }
  return null;
}

/** `batch` is exactly one whole batch (a read of 1 byte returns the one batch holding the offset). */
function firstRecordAtOrAfter(batch: Uint8Array, header: BatchHeader, fromOffset: number, timestampMs: number, decompressedBytesMax: number): TimedOffset | null {
  let records: BatchRecord[];
  try {
    records = decodeRecords(batch, header, decompressedBytesMax);
  } catch (error) {
    if (toRunnelError(error).code !== "MESSAGE_TOO_LARGE") throw error;
    return { offset: Math.max(fromOffset, header.baseOffset), timestampMs: -1 };
  }
  const record = records.find((candidate) => candidate.offset >= fromOffset && candidate.timestamp >= timestampMs);
  return record === undefined ? null : { offset: record.offset, timestampMs: record.timestamp };
}

/** The first record carrying the log's largest timestamp (ListOffsets -3), or null for an empty log. */
export function offsetOfMaxTimestamp(partition: Partition, decompressedBytesMax: number = LIMITS.batchBytesMax): TimedOffset | null {
  const maxTimestampMs = partition.maxTimestamp();
  if (maxTimestampMs < 0 || partition.nextOffset === partition.logStartOffset) return null;
  return offsetForTime(partition, maxTimestampMs, decompressedBytesMax);
}
