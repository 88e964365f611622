/**
 * @module log/read-records
 * Reads one bounded slice of a partition and hands on each record at or after an offset: for
 * the few places that need records in the broker itself (a coordinator replaying
 * `__consumer_offsets`, the HTTP API's message browser). The data path never does this: it
 * sends batches whole and the consumer decodes them.
 */
import { type BatchRecord, decodeRecords, scanBatches } from "../format/record-batch.ts";
import type { Partition } from "./api.ts";

/**
 * Copies at most `maxBytes` of whole batches from `offset` (below `endOffset` when given) and
 * calls `onRecord` for each record at or after `offset`, in order. Returns the offset after the
 * last batch read (`offset` when there was none).
 */
export function forEachRecordFrom(partition: Partition, offset: number, maxBytes: number, endOffset: number | undefined, onRecord: (record: BatchRecord) => void): number {
  const slice = partition.read(offset, maxBytes, endOffset);
  if (slice === null) return offset;
  let bytes: Uint8Array;
  try {
    bytes = partition.readBytes(slice);
  } finally {
    slice.release();
  }
  let next = offset;
  for (const span of scanBatches(bytes)) {
    for (const record of decodeRecords(bytes.subarray(span.position, span.position + span.bytes), span.header)) {
      if (record.offset >= offset) onRecord(record);
    }
    next = Math.max(next, span.header.baseOffset + span.header.lastOffsetDelta + 1);
  }
  return next;
}
