/**
 * @module bench/format
 * The record batch on the CPU: encoding on the client, checksum on the broker, decoding on the
 * consumer. Alternatives side by side so each figure comes with a baseline from the same run.
 *
 *   bun bench/format.bench.ts          full size (mitata)
 *   formatSmoke() from a test          tiny size, checks results only
 */
import { decode, decodeMulti, encode } from "@msgpack/msgpack";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { crc32 as zlibCrc32 } from "node:zlib";
import {
  assembleBatch, CRC_START, decodeRecords, encodeBatch, encodeRecord, verifyBatch, type RecordInput,
} from "../src/format/record-batch.ts";

export function makeRecords(count: number, valueBytes: number): RecordInput[] {
  const value = new Uint8Array(valueBytes).map((_, i) => (i * 31) & 0xff);
  return Array.from({ length: count }, (_, i) => ({ key: `key-${i % 64}`, value, timestamp: 1_700_000_000_000 + i }));
}

/** Runs every benchmark body once at a small size and returns what they produced. */
export function formatSmoke(): { records: number; crcAgrees: boolean } {
  const records = makeRecords(50, 100);
  const batch = encodeBatch(records, { nowMs: 1_700_000_000_000 });
  const header = verifyBatch(batch);
  const decoded = decodeRecords(batch, header);
  const viaZlib = zlibCrc32(batch.subarray(CRC_START)) >>> 0;
  return { records: decoded.length, crcAgrees: viaZlib === header.crc };
}

function registerBenchmarks(recordCount: number, valueBytes: number): void {
  const records = makeRecords(recordCount, valueBytes);
  const batch = encodeBatch(records);
  const preEncoded = records.map((record) => encodeRecord(record, 1_700_000_000_000));
  const preEncodedBytes = preEncoded.reduce((sum, r) => sum + r.length, 0);
  const plainArray = encode(records.map((r) => [0, r.key, r.value, null]));

  summary(() => {
    group(`encode ${recordCount} x ${valueBytes} B records`, () => {
      bench("encodeBatch (records -> batch)", () => do_not_optimize(encodeBatch(records)));
      bench("assembleBatch (pre-encoded records)", () =>
        do_not_optimize(assembleBatch({ encodedRecords: preEncoded, recordsBytes: preEncodedBytes, firstTimestamp: 0, maxTimestamp: 0 })),
      );
      bench("baseline: msgpack encode of a plain array", () => do_not_optimize(encode(records.map((r) => [0, r.key, r.value, null]))));
    });
  });
  summary(() => {
    group(`checksum of a ${batch.length} B batch`, () => {
      bench("Bun.hash.crc32", () => do_not_optimize(Bun.hash.crc32(batch.subarray(CRC_START))));
      bench("baseline: node:zlib crc32", () => do_not_optimize(zlibCrc32(batch.subarray(CRC_START))));
    });
  });
  summary(() => {
    group(`decode ${recordCount} records`, () => {
      bench("verifyBatch + decodeRecords", () => do_not_optimize(decodeRecords(batch, verifyBatch(batch))));
      bench("baseline: msgpack decode of a plain array", () => do_not_optimize(decode(plainArray)));
      bench("baseline: decodeMulti without verification", () => {
        let n = 0;
        for (const item of decodeMulti(batch.subarray(61))) n += item === null ? 0 : 1;
        do_not_optimize(n);
      });
    });
  });
}

if (import.meta.main) {
  registerBenchmarks(1000, 100);
  await run();
}
