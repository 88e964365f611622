import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BatchBuilder, BufferPool } from "../../src/format/batch-builder.ts";
import { type RecordInput, assembleBatch, decodeRecords, encodeRecord, verifyBatch } from "../../src/format/record-batch.ts";

/** The reference path: encodeRecord per record, then assembleBatch. */
function reference(records: readonly RecordInput[], timestamps: readonly number[]): Uint8Array {
  const first = timestamps[0]!;
  const encodedRecords = records.map((record, index) => encodeRecord({ ...record, timestamp: timestamps[index]! }, first));
  return assembleBatch({
    encodedRecords,
    recordsBytes: encodedRecords.reduce((sum, bytes) => sum + bytes.length, 0),
    firstTimestamp: first,
    maxTimestamp: Math.max(...timestamps),
  });
}

function built(records: readonly RecordInput[], timestamps: readonly number[], initialBytes = 64): Uint8Array {
  const builder = new BatchBuilder(initialBytes);
  records.forEach((record, index) => builder.append(record, timestamps[index]!));
  return builder.finish();
}

const bytesOrString = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 120 }),
  fc.uint8Array({ maxLength: 300 }),
  fc.constantFrom("", "x".repeat(31), "x".repeat(32), "é".repeat(90), "x".repeat(256), "x".repeat(70_000)),
);
const recordArbitrary: fc.Arbitrary<RecordInput> = fc.record(
  {
    key: fc.option(bytesOrString, { nil: null }),
    value: fc.option(bytesOrString, { nil: null }),
    headers: fc.option(fc.dictionary(fc.string({ maxLength: 40 }), bytesOrString, { maxKeys: 20 }), { nil: null }),
  },
  { requiredKeys: ["value"] },
);
const timestampArbitrary = fc.oneof(fc.integer({ min: 0, max: 2 ** 33 }), fc.constant(1_700_000_000_000), fc.integer({ min: 1_700_000_000_000 - 2 ** 33, max: 1_700_000_000_000 + 2 ** 33 }));

describe("BatchBuilder", () => {
  test("builds exactly the bytes assembleBatch builds from encodeRecord, for any records", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(recordArbitrary, timestampArbitrary), { minLength: 1, maxLength: 20 }), (pairs) => {
        const records = pairs.map(([record]) => record);
        const timestamps = pairs.map(([, timestamp]) => timestamp);
        expect(Buffer.from(built(records, timestamps)).equals(Buffer.from(reference(records, timestamps)))).toBe(true);
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  test("with a pool of reused (dirty) buffers it still builds exactly the reference bytes", () => {
    const pool = new BufferPool(2048, 2);
    // Dirty every pooled buffer first: reuse must not leak an earlier batch's bytes.
    for (let index = 0; index < 2; index++) pool.give(new Uint8Array(2048).fill(0xa5));
    fc.assert(
      fc.property(fc.array(fc.tuple(recordArbitrary, timestampArbitrary), { minLength: 1, maxLength: 20 }), (pairs) => {
        const records = pairs.map(([record]) => record);
        const timestamps = pairs.map(([, timestamp]) => timestamp);
        const builder = new BatchBuilder(64, pool);
        records.forEach((record, index) => builder.append(record, timestamps[index]!));
        const bytes = builder.finish();
        expect(Buffer.from(bytes).equals(Buffer.from(reference(records, timestamps)))).toBe(true);
        bytes.fill(0x5a); // the next batch gets this buffer back dirty
        pool.give(builder.storage);
      }),
      { numRuns: 200, seed: 7 },
    );
    expect(pool.idle).toBeLessThanOrEqual(2);
  });

  test("with headroom it builds the same bytes behind that many free bytes, growing and pooled alike", () => {
    const headroomBytes = 384;
    const pool = new BufferPool(4096, 2);
    fc.assert(
      fc.property(fc.array(fc.tuple(recordArbitrary, timestampArbitrary), { minLength: 1, maxLength: 20 }), fc.boolean(), (pairs, pooled) => {
        const records = pairs.map(([record]) => record);
        const timestamps = pairs.map(([, timestamp]) => timestamp);
        const builder = new BatchBuilder(64, pooled ? pool : null, headroomBytes);
        records.forEach((record, index) => builder.append(record, timestamps[index]!));
        const expected = reference(records, timestamps);
        expect(builder.byteLength).toBe(expected.length);
        const bytes = builder.finish();
        expect(bytes.byteOffset - builder.storage.byteOffset).toBe(headroomBytes);
        expect(bytes.buffer).toBe(builder.storage.buffer);
        expect(Buffer.from(bytes).equals(Buffer.from(expected))).toBe(true);
        bytes.fill(0x5a);
        pool.give(builder.storage);
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  test("a pool hands out buffers of its size and keeps only that size, up to its bound", () => {
    const pool = new BufferPool(1024, 1);
    const first = pool.take();
    expect(first.length).toBe(1024);
    pool.give(new Uint8Array(512));
    expect(pool.idle).toBe(0);
    pool.give(first);
    pool.give(new Uint8Array(1024));
    expect(pool.idle).toBe(1);
    expect(pool.take()).toBe(first);
    // A builder that outgrows its small start moves to one pooled buffer in one step.
    const builder = new BatchBuilder(128, pool);
    builder.append({ value: new Uint8Array(600) }, 1);
    expect(builder.storage.length).toBe(1024);
    builder.append({ value: new Uint8Array(5000) }, 1);
    expect(builder.storage.length).toBeGreaterThan(5000);
  });

  test("small batch-start buffers are reused too: a batch that stays small allocates nothing new", () => {
    const pool = new BufferPool(4096, 2, 256, 2);
    const start = new BatchBuilder(128, pool);
    expect(start.storage.length).toBe(256); // no full-size buffer idle: starts small
    start.append({ value: "x" }, 1);
    start.finish();
    pool.give(start.storage);
    expect(pool.idleSmall).toBe(1);
    const again = new BatchBuilder(128, pool);
    expect(again.storage).toBe(start.storage);
    // Outgrowing the small buffer gives it back at once, and the batch moves to a full one.
    again.append({ value: new Uint8Array(600) }, 1);
    expect(again.storage.length).toBe(4096);
    expect(pool.idleSmall).toBe(1);
    pool.give(again.storage);
    // With a full-size buffer idle, a new batch starts in it (it will not need to grow).
    expect(new BatchBuilder(128, pool).storage.length).toBe(4096);
    // Bounds: extra buffers of either size are left to the GC.
    for (let index = 0; index < 5; index++) pool.give(new Uint8Array(256));
    expect(pool.idleSmall).toBe(2);
  });

  test("a built batch verifies and decodes back to its records", () => {
    const records: RecordInput[] = [
      { key: "k", value: "héllo", headers: { trace: "t1", raw: new Uint8Array([0, 255]) } },
      { value: null },
      { key: new Uint8Array([1, 2, 3]), value: "x".repeat(100_000) },
    ];
    const batch = built(records, [1000, 999, 5000]);
    const header = verifyBatch(batch);
    expect(header).toMatchObject({ recordCount: 3, firstTimestamp: 1000, maxTimestamp: 5000 });
    const decoded = decodeRecords(batch, header);
    expect(decoded.map((record) => record.timestamp)).toEqual([1000, 999, 5000]);
    expect(new TextDecoder().decode(decoded[0]!.value!)).toBe("héllo");
    expect([...decoded[0]!.headers!.raw!]).toEqual([0, 255]);
    expect(decoded[1]!.value).toBeNull();
    expect(decoded[2]!.value!.length).toBe(100_000);
  });

  test("undoLast takes back exactly the last record", () => {
    const builder = new BatchBuilder(64);
    builder.append({ value: "a" }, 10);
    const lengthBefore = builder.byteLength;
    builder.append({ value: "b".repeat(1000) }, 50);
    builder.undoLast();
    expect(builder.byteLength).toBe(lengthBefore);
    expect(builder.recordCount).toBe(1);
    builder.append({ value: "c" }, 20);
    const batch = builder.finish();
    expect(Buffer.from(batch).equals(Buffer.from(reference([{ value: "a" }, { value: "c" }], [10, 20])))).toBe(true);
  });

  test("append reports the bytes each record took", () => {
    const builder = new BatchBuilder();
    const taken = builder.append({ key: "a", value: "b" }, 1);
    expect(taken).toBe(encodeRecord({ key: "a", value: "b", timestamp: 1 }, 1).length);
  });

  test("finishing an empty batch is refused", () => {
    expect(() => new BatchBuilder().finish()).toThrow("at least one record");
  });
});
