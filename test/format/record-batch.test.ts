import { describe, expect, test } from "bun:test";
import {
  BATCH_HEADER_BYTES, CRC_START, checkBatchTimestamps, decodeRecords, encodeBatch, readBatchHeader, scanBatches, stampBaseOffset, verifyBatch,
} from "../../src/format/record-batch.ts";
import { RunnelError } from "../../src/errors.ts";

const fixedBatch = () =>
  encodeBatch(
    [
      { key: "k1", value: "hello", timestamp: 1_700_000_000_000 },
      { value: new Uint8Array([1, 2, 3]), headers: { trace: "abc" }, timestamp: 1_700_000_000_005 },
    ],
    { nowMs: 1_700_000_000_000, producer: { producerId: 7, producerEpoch: 1, baseSequence: 42 } },
  );

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof RunnelError ? error.code : "NOT_RUNNEL";
  }
  return undefined;
}

describe("record batch", () => {
  test("round trip: decoded records equal what was encoded", () => {
    const batch = fixedBatch();
    stampBaseOffset(batch, 1000);
    const header = verifyBatch(batch);
    expect(header).toMatchObject({ baseOffset: 1000, recordCount: 2, lastOffsetDelta: 1, producerId: 7, producerEpoch: 1, baseSequence: 42 });
    expect(header.firstTimestamp).toBe(1_700_000_000_000);
    expect(header.maxTimestamp).toBe(1_700_000_000_005);
    const records = decodeRecords(batch, header);
    expect(records.map((r) => r.offset)).toEqual([1000, 1001]);
    expect(new TextDecoder().decode(records[0]!.key!)).toBe("k1");
    expect(new TextDecoder().decode(records[0]!.value!)).toBe("hello");
    expect(records[1]!.key).toBeNull();
    expect([...records[1]!.value!]).toEqual([1, 2, 3]);
    expect(new TextDecoder().decode(records[1]!.headers!.trace!)).toBe("abc");
    expect(records[1]!.timestamp).toBe(1_700_000_000_005);
  });

  test("fixed expected bytes for a known batch", () => {
    const batch = encodeBatch([{ key: "a", value: "b", timestamp: 1 }], { nowMs: 1 });
    expect(Buffer.from(batch).toString("hex")).toBe(
      "0000000000000000" + // baseOffset
        "0000003a" + // batchLength = 70 - 12
        "00000000" + // leaderEpoch
        "01" + // magic
        "b303fefe" + // crc32 of bytes [21, 70), checked independently below
        "0000" + "00000000" + "0000000000000001" + "0000000000000001" + // attributes, lastOffsetDelta, timestamps
        "ffffffffffffffff" + "ffff" + "ffffffff" + "00000001" + // producer id/epoch/sequence, recordCount
        "9400c40161c40162c0", // [0, bin "a", bin "b", nil]
    );
    expect(readBatchHeader(batch).crc).toBe(Bun.hash.crc32(batch.subarray(CRC_START)) >>> 0);
  });

  test("stamping the base offset keeps the checksum valid", () => {
    const batch = fixedBatch();
    stampBaseOffset(batch, 2 ** 40 + 3, 5);
    expect(verifyBatch(batch).baseOffset).toBe(2 ** 40 + 3);
    expect(verifyBatch(batch).leaderEpoch).toBe(5);
  });

  test("every truncated prefix is rejected", () => {
    const batch = fixedBatch();
    for (let length = 0; length < batch.length; length++) {
      expect(codeOf(() => verifyBatch(batch.subarray(0, length)))).toBe("CORRUPT_BATCH");
    }
  });

  test("a flipped bit anywhere after the stamped fields is detected", () => {
    const batch = fixedBatch();
    for (let byte = 16; byte < batch.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = batch.slice();
        copy[byte]! ^= 1 << bit;
        expect(codeOf(() => verifyBatch(copy))).toBe("CORRUPT_BATCH");
      }
    }
  });

  test("a flipped bit in batchLength is detected", () => {
    const batch = fixedBatch();
    for (let byte = 8; byte < 12; byte++) {
      const copy = batch.slice();
      copy[byte]! ^= 0x01;
      expect(codeOf(() => verifyBatch(copy))).toBe("CORRUPT_BATCH");
    }
  });

  test("over-limit batches are rejected as MESSAGE_TOO_LARGE", () => {
    const batch = encodeBatch([{ value: new Uint8Array(10_000) }]);
    expect(codeOf(() => verifyBatch(batch, 1000))).toBe("MESSAGE_TOO_LARGE");
  });

  test("trailing bytes after one batch are rejected", () => {
    const batch = fixedBatch();
    const longer = new Uint8Array(batch.length + 1);
    longer.set(batch);
    expect(codeOf(() => verifyBatch(longer))).toBe("CORRUPT_BATCH");
  });

  test("scanBatches walks concatenated batches and stops before a partial one", () => {
    const a = fixedBatch();
    const b = encodeBatch([{ value: "x" }]);
    const joined = new Uint8Array(a.length + b.length + 10);
    joined.set(a);
    joined.set(b, a.length);
    joined.set(b.subarray(0, 10), a.length + b.length);
    const spans = [...scanBatches(joined)];
    expect(spans.map((s) => s.position)).toEqual([0, a.length]);
    expect(spans[1]!.bytes).toBe(b.length);
    expect(BATCH_HEADER_BYTES).toBe(61);
  });

  test("an empty batch cannot be encoded", () => {
    expect(codeOf(() => encodeBatch([]))).toBe("INVALID_REQUEST");
  });
});

describe("record batch: the produce path's timestamp rule (docs/protocol.md, section 3)", () => {
  const batchAt = (...timestampsMs: number[]) => encodeBatch(timestampsMs.map((timestamp) => ({ value: "v", timestamp })));

  test("takes timestamps from 0 to 2^53-1 with maxTimestamp >= firstTimestamp", () => {
    for (const timestamps of [[0], [2 ** 53 - 1], [0, 2 ** 53 - 1], [1_700_000_000_000, 1_700_000_000_005]]) {
      expect(codeOf(() => checkBatchTimestamps(batchAt(...timestamps)))).toBeUndefined();
    }
  });

  test("refuses a negative timestamp (Kafka's -1 included) or one past 2^53-1 as CORRUPT_BATCH, naming the field", () => {
    for (const timestamp of [-1, -1_700_000_000_000, 2 ** 53, 2 ** 62]) {
      expect(codeOf(() => checkBatchTimestamps(batchAt(timestamp)))).toBe("CORRUPT_BATCH");
    }
    expect(codeOf(() => checkBatchTimestamps(batchAt(5, 2 ** 53)))).toBe("CORRUPT_BATCH");
    expect(() => checkBatchTimestamps(batchAt(5, 2 ** 53))).toThrow(/maxTimestamp/);
  });

  test("refuses maxTimestamp before firstTimestamp", () => {
    const batch = batchAt(1_000);
    batch.set([0, 0, 0, 0, 0, 0, 0, 9], 35); // maxTimestamp = 9 < firstTimestamp
    expect(() => checkBatchTimestamps(batch)).toThrow(/maxTimestamp 9 is before firstTimestamp 1000/);
  });

  test("leaves a batch too short for a header to the log's own check", () => {
    expect(codeOf(() => checkBatchTimestamps(new Uint8Array(BATCH_HEADER_BYTES - 1)))).toBeUndefined();
    expect(codeOf(() => verifyBatch(new Uint8Array(BATCH_HEADER_BYTES - 1)))).toBe("CORRUPT_BATCH");
  });
});
