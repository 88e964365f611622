import { decodeMulti, encode } from "@msgpack/msgpack";
import { expect, test } from "bun:test";
import type { RunnelError } from "../../src/errors.ts";
import { batchBaseOffsetAt, batchLastOffsetDeltaAt, decodeRecordRangeInto, decodeRecordsFast, scratchBatchHeader, verifyBatchAt, wholeBatchBytesAt } from "../../src/format/record-decode.ts";
import { BATCH_HEADER_BYTES, type BatchRecord, decodeRecords, encodeBatch, readBatchHeader, scanBatches, stampBaseOffset, verifyBatch } from "../../src/format/record-batch.ts";

/** The reference: the generic msgpack decoder, as decodeRecords did it before the fast path. */
function reference(section: Uint8Array, baseOffset: number, firstTimestamp: number) {
  return [...decodeMulti(section)].map((item, index) => {
    const [delta, key, value, headers] = item as [number, Uint8Array | null, Uint8Array | null, Record<string, Uint8Array> | null];
    return { offset: baseOffset + index, timestamp: firstTimestamp + delta, key, value, headers };
  });
}

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

test("record-decode: the fast path decodes what the generic decoder does, for every size class of key, value and delta", () => {
  const random = seeded(7);
  for (let round = 0; round < 40; round++) {
    const sizes = [0, 1, 31, 255, 256, 65_535, 65_536, 70_000];
    const records = Array.from({ length: 1 + Math.floor(random() * 20) }, () => {
      const pick = () => (random() < 0.15 ? null : new Uint8Array(sizes[Math.floor(random() * (round < 5 ? sizes.length : 5))]!).map(() => Math.floor(random() * 256)));
      const timestamp = 1_700_000_000_000 + Math.floor(random() * [100, 70_000, 5e9, 2 ** 40][round % 4]!);
      return { key: pick(), value: pick(), timestamp };
    });
    const batch = encodeBatch(records);
    const header = verifyBatch(batch);
    const section = batch.subarray(BATCH_HEADER_BYTES);
    const fast = decodeRecordsFast(section, header.baseOffset, header.firstTimestamp, header.recordCount);
    expect(fast).not.toBeNull();
    expect(fast).toEqual(reference(section, header.baseOffset, header.firstTimestamp));
    expect(fast!.map((record) => record.timestamp)).toEqual(records.map((record) => record.timestamp));
  }
});

test("record-decode: records with headers, strings or a wrong count are left to the generic decoder", () => {
  const withHeaders = encodeBatch([{ value: "v", headers: { trace: "abc" } }]);
  const header = readBatchHeader(withHeaders);
  expect(decodeRecordsFast(withHeaders.subarray(BATCH_HEADER_BYTES), 0, header.firstTimestamp, 1)).toBeNull();
  expect(decodeRecords(withHeaders)[0]!.headers).toEqual({ trace: new TextEncoder().encode("abc") });
  const strings = encode([0, "key", "value", null]);
  expect(decodeRecordsFast(strings, 0, 0, 1)).toBeNull();
  const plain = encode([3, new Uint8Array([1]), null, null]);
  expect(decodeRecordsFast(plain, 10, 100, 1)).toEqual([{ offset: 10, timestamp: 103, key: new Uint8Array([1]), value: null, headers: null }]);
  expect(decodeRecordsFast(plain, 0, 0, 2)).toBeNull(); // fewer records than the header says
  expect(decodeRecordsFast(new Uint8Array([...plain, 0xc0]), 0, 0, 1)).toBeNull(); // trailing bytes
});

test("record-decode: every truncation of a valid section is refused, never misread", () => {
  const batch = encodeBatch([{ key: "k", value: new Uint8Array(300) }, { value: null }]);
  const section = batch.subarray(BATCH_HEADER_BYTES);
  for (let length = 0; length < section.length; length++) expect(decodeRecordsFast(section.subarray(0, length), 0, 0, 2)).toBeNull();
});

test("record-decode: the range form decodes a section inside a larger buffer as the subarray form does, every integer width included", () => {
  const deltas = [0, 127, -1, -32, -33, -200, 200, 60_000, -40_000, 2 ** 31, -(2 ** 31), 2 ** 40, -(2 ** 40)];
  const section = new Uint8Array(deltas.flatMap((delta, index) => [...encode([delta, index % 2 === 0 ? null : new Uint8Array([index]), new Uint8Array(index), null])]));
  const padded = new Uint8Array(section.length + 10);
  padded.set(section, 7);
  const make = (offset: number, timestamp: number, key: Uint8Array | null, value: Uint8Array | null): BatchRecord => ({ offset, timestamp, key, value, headers: null });
  const out: BatchRecord[] = [];
  expect(decodeRecordRangeInto(padded, 7, 7 + section.length, 100, 5_000_000_000_000, deltas.length, 103, make, out)).toBe(true);
  const expected = reference(section, 100, 5_000_000_000_000).slice(3);
  expect(out).toEqual(expected);
  expect(out.map((record) => record.timestamp - 5_000_000_000_000)).toEqual(deltas.slice(3));
  // A range one byte short is refused, and leaves `out` as it was.
  expect(decodeRecordRangeInto(padded, 7, 6 + section.length, 100, 0, deltas.length, 0, make, out)).toBe(false);
  expect(out).toEqual(expected);
});

test("record-decode: walking batches without objects finds what scanBatches finds, and stops before a partial batch", () => {
  const batches = [encodeBatch([{ value: "a" }, { value: "b" }]), encodeBatch([{ key: "k", value: new Uint8Array(500) }]), encodeBatch([{ value: null }])];
  batches.forEach((batch, index) => stampBaseOffset(batch, 10 * index + 3));
  const all = new Uint8Array(batches.reduce((sum, batch) => sum + batch.length, 0) + 30);
  let at = 0;
  for (const batch of batches) {
    all.set(batch, at);
    at += batch.length;
  }
  all.set(batches[0]!.subarray(0, 30), at); // a partial batch at the end
  const walked: Array<{ position: number; bytes: number; baseOffset: number; lastOffsetDelta: number }> = [];
  for (let position = 0, total = wholeBatchBytesAt(all, 0); total > 0; position += total, total = wholeBatchBytesAt(all, position)) {
    walked.push({ position, bytes: total, baseOffset: batchBaseOffsetAt(all, position), lastOffsetDelta: batchLastOffsetDeltaAt(all, position) });
  }
  const scanned = [...scanBatches(all)].map((span) => ({ position: span.position, bytes: span.bytes, baseOffset: span.header.baseOffset, lastOffsetDelta: span.header.lastOffsetDelta }));
  expect(walked).toEqual(scanned);
  expect(walked.map((span) => span.baseOffset)).toEqual([3, 13, 23]);
});

test("record-decode: a batchLength shorter than a header throws scanBatches's CORRUPT_BATCH", () => {
  const bytes = new Uint8Array(encodeBatch([{ value: "a" }]));
  new DataView(bytes.buffer).setInt32(8, 10);
  const expected = (() => {
    try {
      for (const _span of scanBatches(bytes)) continue;
    } catch (error) {
      return error as RunnelError;
    }
    throw new Error("scanBatches accepted it");
  })();
  expect(expected.code).toBe("CORRUPT_BATCH");
  expect(() => wholeBatchBytesAt(bytes, 0)).toThrow(expected.message);
});

test("record-decode: verifyBatchAt accepts and refuses exactly what verifyBatch does, with the same errors", () => {
  const batch = encodeBatch([{ key: "k", value: "v", timestamp: 1_700_000_000_123 }, { value: new Uint8Array(70), timestamp: 1_700_000_000_999 }], { producer: { producerId: 7, producerEpoch: -2, baseSequence: 9 } });
  stampBaseOffset(batch, 2 ** 40 + 5, 3);
  const framed = new Uint8Array(batch.length + 20);
  framed.set(batch, 11);
  const into = scratchBatchHeader();
  expect(verifyBatchAt(framed, 11, batch.length, into)).toEqual(verifyBatch(batch));
  // Every single-byte change of the batch: the same verdict, the same error.
  for (let index = 0; index < batch.length; index++) {
    const changed = batch.slice();
    changed[index] = changed[index]! ^ 0x41;
    const copy = new Uint8Array(changed.length + 11);
    copy.set(changed, 11);
    const outcome = (run: () => unknown) => {
      try {
        return { header: run() };
      } catch (error) {
        return { code: (error as RunnelError).code, message: (error as RunnelError).message };
      }
    };
    const total = changed.length;
    expect(outcome(() => ({ ...verifyBatchAt(copy, 11, total, scratchBatchHeader()) }))).toEqual(outcome(() => verifyBatch(changed)));
  }
});
