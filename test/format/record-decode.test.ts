import { decodeMulti, encode } from "@msgpack/msgpack";
import { expect, test } from "bun:test";
import { decodeRecordsFast } from "../../src/format/record-decode.ts";
import { BATCH_HEADER_BYTES, decodeRecords, encodeBatch, readBatchHeader, verifyBatch } from "../../src/format/record-batch.ts";

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
