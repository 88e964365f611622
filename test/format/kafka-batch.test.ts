/**
 * Kafka's record batch v2 (magic 2) in Runnel's format module: CRC-32C against its published
 * check value, encode/decode round trip, and the log's header check accepting a good batch and
 * refusing a bad checksum, transactional and control batches and unknown codecs.
 */
import { describe, expect, test } from "bun:test";
import { RunnelError } from "../../src/errors.ts";
import { crc32c } from "../../src/format/crc32c.ts";
import { decodeKafkaRecords, encodeKafkaBatch } from "../../src/format/kafka-batch.ts";
import { CRC_START, FIELD, verifyBatch } from "../../src/format/record-batch.ts";

const text = new TextEncoder();

function expectCorrupt(run: () => unknown): void {
  let caught: unknown = null;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(RunnelError);
  expect((caught as RunnelError).code).toBe("CORRUPT_BATCH");
}

/** Sets the attributes and recomputes the CRC-32C, so only the attribute rule can refuse it. */
function withAttributes(batch: Uint8Array, attributes: number): Uint8Array {
  const copy = batch.slice();
  const view = new DataView(copy.buffer);
  view.setUint16(FIELD.attributes, attributes);
  view.setUint32(FIELD.crc, crc32c(copy.subarray(CRC_START)));
  return copy;
}

describe("CRC-32C", () => {
  test("matches the published check value for '123456789' and the empty input", () => {
    expect(crc32c(text.encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  test("gives the same answer on every length around the 8-byte step", () => {
    const bytes = Uint8Array.from({ length: 40 }, (_, index) => index * 7);
    const bitwise = (input: Uint8Array) => {
      let crc = 0xffffffff;
      for (const byte of input) {
        crc ^= byte;
        for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
      }
      return (crc ^ 0xffffffff) >>> 0;
    };
    for (let length = 0; length <= bytes.length; length++) expect(crc32c(bytes.subarray(0, length))).toBe(bitwise(bytes.subarray(0, length)));
  });
});

describe("Kafka batch (magic 2)", () => {
  const records = [
    { key: text.encode("k"), value: text.encode("one"), timestamp: 1_000, headers: [["h", text.encode("v")]] as Array<[string, Uint8Array | null]> },
    { key: null, value: null, timestamp: 1_005 },
    { value: new Uint8Array(300), timestamp: 999 },
  ];

  test("round-trips keys, values, nulls, headers, timestamps and offsets", () => {
    const batch = encodeKafkaBatch(records);
    const decoded = decodeKafkaRecords(batch);
    expect(decoded.map((record) => [record.offset, record.timestamp, record.key, record.value, record.headers])).toEqual([
      [0, 1_000, text.encode("k"), text.encode("one"), { h: text.encode("v") }],
      [1, 1_005, null, null, null],
      [2, 999, null, new Uint8Array(300), null],
    ]);
  });

  test("passes the log's check, and fails it with a flipped byte", () => {
    const batch = encodeKafkaBatch(records);
    expect(verifyBatch(batch).magic).toBe(2);
    const flipped = batch.slice();
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    expectCorrupt(() => verifyBatch(flipped));
  });

  test("compressed codecs and log-append time are accepted; transactional, control and unknown codecs are not", () => {
    const batch = encodeKafkaBatch(records);
    for (const codec of [1, 2, 3, 4]) expect(verifyBatch(withAttributes(batch, codec)).attributes).toBe(codec);
    expect(verifyBatch(withAttributes(batch, 0x08)).attributes).toBe(0x08);
    expectCorrupt(() => verifyBatch(withAttributes(batch, 0x10)));
    expectCorrupt(() => verifyBatch(withAttributes(batch, 0x20)));
    expectCorrupt(() => verifyBatch(withAttributes(batch, 5)));
  });

  test("a truncated record section is refused when decoded", () => {
    const batch = encodeKafkaBatch(records);
    const view = new DataView(batch.buffer);
    const cut = batch.slice(0, batch.length - 200);
    new DataView(cut.buffer).setInt32(FIELD.batchLength, cut.length - 12);
    expect(view.getInt8(FIELD.magic)).toBe(2);
    expectCorrupt(() => decodeKafkaRecords(cut));
  });
});
