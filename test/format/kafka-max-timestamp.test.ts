/**
 * fillMissingMaxTimestamp: a Kafka batch whose maxTimestamp is unset (-1, as Sarama 1.22 sends
 * it) gets the largest record timestamp (an upper bound when compressed records do not decode), with its
 * CRC-32C recomputed so the log accepts it; anything else is left exactly as it came.
 */
import { describe, expect, test } from "bun:test";
import { crc32c } from "../../src/format/crc32c.ts";
import { encodeKafkaBatch } from "../../src/format/kafka-batch.ts";
import { fillMissingMaxTimestamp, KAFKA_NO_TIMESTAMP } from "../../src/format/kafka-max-timestamp.ts";
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, CRC_START, FIELD, readBatchHeader, verifyBatch, writeInt64 } from "../../src/format/record-batch.ts";

const value = (text: string) => new TextEncoder().encode(text);

/** A batch of three records at 1000, 1030 and 1010 ms, its maxTimestamp rewritten to -1 and (unless `codec`) re-checksummed like a client would. */
function batchWithoutMax(codec = 0): Uint8Array {
  const batch = encodeKafkaBatch([1_000, 1_030, 1_010].map((timestamp) => ({ value: value(`at ${timestamp}`), timestamp })));
  const view = new DataView(batch.buffer, batch.byteOffset, batch.length);
  view.setInt16(FIELD.attributes, codec);
  writeInt64(view, FIELD.maxTimestamp, KAFKA_NO_TIMESTAMP);
  view.setUint32(FIELD.crc, crc32c(batch.subarray(CRC_START)));
  return batch;
}

describe("fillMissingMaxTimestamp", () => {
  test("an uncompressed batch gets its largest record timestamp and a matching CRC-32C: the log's check passes", () => {
    const batch = batchWithoutMax();
    expect(() => verifyBatch(batch)).toThrow(/maxTimestamp -1 is before firstTimestamp 1000/);
    expect(fillMissingMaxTimestamp(batch, 5_000)).toBe(true);
    expect(readBatchHeader(batch).maxTimestamp).toBe(1_030);
    expect(verifyBatch(batch).maxTimestamp).toBe(1_030);
  });

  test("a compressed batch gets its largest record timestamp, read from the decompressed records", () => {
    const plain = batchWithoutMax();
    const records = Bun.gzipSync(plain.slice(BATCH_HEADER_BYTES));
    const batch = new Uint8Array(BATCH_HEADER_BYTES + records.length);
    batch.set(plain.subarray(0, BATCH_HEADER_BYTES));
    batch.set(records, BATCH_HEADER_BYTES);
    const view = new DataView(batch.buffer);
    view.setInt32(FIELD.batchLength, batch.length - BATCH_LOG_OVERHEAD_BYTES);
    view.setInt16(FIELD.attributes, 1); // gzip
    view.setUint32(FIELD.crc, crc32c(batch.subarray(CRC_START)));
    expect(fillMissingMaxTimestamp(batch, 5_000)).toBe(true);
    expect(verifyBatch(batch).maxTimestamp).toBe(1_030);
  });

  test("a compressed batch whose records do not decompress gets the later of its first timestamp and the broker's clock", () => {
    const batch = batchWithoutMax(4); // "zstd" over records that are not zstd
    expect(fillMissingMaxTimestamp(batch, 5_000)).toBe(true);
    expect(readBatchHeader(batch).maxTimestamp).toBe(5_000);
    expect(readBatchHeader(batch).crc).toBe(crc32c(batch.subarray(CRC_START)));
    const clockBehind = batchWithoutMax(4);
    fillMissingMaxTimestamp(clockBehind, 10);
    expect(readBatchHeader(clockBehind).maxTimestamp).toBe(1_000);
  });

  test("a batch whose checksum does not match is left as it came, for the log to refuse", () => {
    const batch = batchWithoutMax();
    batch[batch.length - 1] = (batch[batch.length - 1] ?? 0) ^ 0xff;
    const before = batch.slice();
    expect(fillMissingMaxTimestamp(batch, 5_000)).toBe(false);
    expect(batch).toEqual(before);
    expect(() => verifyBatch(batch)).toThrow(/maxTimestamp|checksum/);
  });

  test("a batch with its maxTimestamp set, or some other wrong value, is not touched", () => {
    const complete = encodeKafkaBatch([{ value: value("x"), timestamp: 2_000 }]);
    const before = complete.slice();
    expect(fillMissingMaxTimestamp(complete, 5_000)).toBe(false);
    expect(complete).toEqual(before);
    const wrong = batchWithoutMax();
    const view = new DataView(wrong.buffer, wrong.byteOffset, wrong.length);
    writeInt64(view, FIELD.maxTimestamp, 5);
    view.setUint32(FIELD.crc, crc32c(wrong.subarray(CRC_START)));
    expect(fillMissingMaxTimestamp(wrong, 5_000)).toBe(false);
    expect(() => verifyBatch(wrong)).toThrow(/maxTimestamp 5 is before firstTimestamp 1000/);
  });
});
