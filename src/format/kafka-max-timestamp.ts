/**
 * @module format/kafka-max-timestamp
 * Fills in a Kafka batch's maxTimestamp when the client left it unset (-1). Sarama before 1.26
 * (seen with Debian's 1.22) writes magic 2 batches with firstTimestamp set and maxTimestamp -1;
 * Apache Kafka accepts them because its log validator rewrites maxTimestamp (and the CRC) on
 * every append. Our log refuses a maxTimestamp before firstTimestamp (record-batch.ts), so the
 * Kafka produce path calls this first, on the request's own bytes.
 *
 * Only a batch whose CRC-32C checks is rewritten — a corrupt one is left for the log to refuse.
 * The new maxTimestamp is the largest record timestamp, read from the records (decompressed,
 * within decompressedBatchBytesMax, for a compressed batch; this costs one decompression, for
 * these batches only). When the records do not decode, a compressed batch gets the later of
 * firstTimestamp and the broker's clock — an upper bound for a batch stamped by its producer just
 * now, so a ListOffsets by time never skips it and retention keeps it no shorter than its records
 * ask — and an uncompressed one is left for the log to refuse.
 */
import { crc32c } from "./crc32c.ts";
import { decodeKafkaRecords } from "./kafka-batch.ts";
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, BATCH_MAGIC_KAFKA, CRC_START, FIELD, readBatchHeader, writeInt64 } from "./record-batch.ts";

/** Kafka's "no timestamp" (RecordBatch.NO_TIMESTAMP). */
export const KAFKA_NO_TIMESTAMP = -1;

const CODEC_MASK = 0x07;

/** Rewrites an unset maxTimestamp in place (and the CRC over it); true when it did. */
export function fillMissingMaxTimestamp(batch: Uint8Array, nowMs: number): boolean {
  if (batch.length < BATCH_HEADER_BYTES) return false;
  const header = readBatchHeader(batch);
  if (header.magic !== BATCH_MAGIC_KAFKA || header.maxTimestamp !== KAFKA_NO_TIMESTAMP || header.firstTimestamp < 0) return false;
  if (header.batchLength !== batch.length - BATCH_LOG_OVERHEAD_BYTES) return false;
  if (crc32c(batch.subarray(CRC_START)) !== header.crc) return false;
  const compressed = (header.attributes & CODEC_MASK) !== 0;
  const maxTimestampMs = largestRecordTimestamp(batch) ?? (compressed ? Math.max(header.firstTimestamp, nowMs) : null);
  if (maxTimestampMs === null) return false;
  const view = new DataView(batch.buffer, batch.byteOffset, batch.length);
  writeInt64(view, FIELD.maxTimestamp, maxTimestampMs);
  view.setUint32(FIELD.crc, crc32c(batch.subarray(CRC_START)));
  return true;
}

/** The largest record timestamp of a batch; null when its records do not decode. */
function largestRecordTimestamp(batch: Uint8Array): number | null {
  try {
    let largest = Number.NEGATIVE_INFINITY;
    for (const record of decodeKafkaRecords(batch)) largest = Math.max(largest, record.timestamp);
    return Number.isFinite(largest) ? largest : null;
  } catch {
    return null;
  }
}
