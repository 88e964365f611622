/**
 * @module listeners/kafka/native-batches
 * What a Kafka consumer gets from a partition slice. A slice of Kafka-written batches (magic 2)
 * goes out as it is stored, from the file (sendfile). A slice holding natively written batches
 * (magic 1, msgpack records) is read into memory and each such batch rewritten as an
 * uncompressed magic 2 batch with the same offsets, timestamps, keys, values, headers and
 * producer fields (the copy path; docs/kafka.md gives its cost).
 *
 * Finding out costs one 17-byte pread per batch header in the slice (page-cache reads; batches
 * are usually kilobytes or more), never a read of the records themselves.
 */
import { encodeKafkaBatch, type KafkaRecordInput } from "../../format/kafka-batch.ts";
import { BATCH_LOG_OVERHEAD_BYTES, BATCH_MAGIC_KAFKA, FIELD, decodeRecords, readBatchHeader, scanBatches, stampBaseOffset } from "../../format/record-batch.ts";
import type { Partition, ReadSlice } from "../../log/api.ts";
import type { FileRecords } from "./codec.ts";

const PEEK_BYTES = FIELD.magic + 1;

/** True when every batch in the slice is a Kafka batch (magic 2). */
function allKafkaBatches(partition: Partition, slice: ReadSlice): boolean {
  let position = 0;
  while (slice.length - position >= PEEK_BYTES) {
    const head = partition.readBytes({ fd: slice.fd, position: slice.position + position, length: PEEK_BYTES, firstOffset: slice.firstOffset, release() {} });
    if (head[FIELD.magic] !== BATCH_MAGIC_KAFKA) return false;
    position += BATCH_LOG_OVERHEAD_BYTES + new DataView(head.buffer, head.byteOffset).getInt32(FIELD.batchLength);
  }
  return true;
}

/** The slice itself when it holds only Kafka batches; otherwise its batches in memory, native ones converted. Releases the slice in that case. */
export function kafkaRecordsOf(partition: Partition, slice: ReadSlice): FileRecords | Uint8Array {
  let bytes: Uint8Array;
  try {
    if (allKafkaBatches(partition, slice)) return { kind: "file", slice };
    bytes = partition.readBytes(slice);
  } catch (error) {
    slice.release();
    throw error;
  }
  slice.release();
  const pieces: Uint8Array[] = [];
  for (const span of scanBatches(bytes)) {
    const batch = bytes.subarray(span.position, span.position + span.bytes);
    pieces.push(span.header.magic === BATCH_MAGIC_KAFKA ? batch : toKafkaBatch(batch));
  }
  const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}


/** A native (magic 1) batch rewritten as a magic 2 batch at the same base offset. */
function toKafkaBatch(batch: Uint8Array): Uint8Array {
  const header = readBatchHeader(batch);
  const records: KafkaRecordInput[] = decodeRecords(batch, header).map((record) => ({
    key: record.key,
    value: record.value,
    timestamp: record.timestamp,
    headers: record.headers === null ? [] : Object.entries(record.headers).map(([name, value]) => [name, value] as [string, Uint8Array]),
  }));
  const converted = encodeKafkaBatch(records, { producerId: header.producerId, producerEpoch: header.producerEpoch, baseSequence: header.baseSequence });
  stampBaseOffset(converted, header.baseOffset, header.leaderEpoch);
  return converted;
}
