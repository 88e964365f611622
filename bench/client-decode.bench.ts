/**
 * @module bench/client-decode
 * The consumer's CPU per fetched record (target C1: >= 5,000,000 records/s of 100 B messages):
 * one 1 MiB fetch response frame of 100 B-record batches, decoded the way the Consumer does it
 * (msgpack response -> scanBatches -> verifyBatch -> decodeRecords -> one Message per record),
 * against decoding records only, and against walking batch headers only (a raw fetch).
 *
 *   bun bench/client-decode.bench.ts   full size (mitata)
 *   clientDecodeSmoke() from a test    small size, checks the counts agree
 */
import { encode } from "@msgpack/msgpack";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { createResponseDecoder } from "../src/client/frame.ts";
import type { Message } from "../src/client/consumer.ts";
import { decodeRecords, encodeBatch, recordSection, scanBatches, stampBaseOffset, verifyBatch } from "../src/format/record-batch.ts";
import { decodeRecordsFastInto } from "../src/format/record-decode.ts";

/** A fetch response body (msgpack map) whose records are `batches` batches of `perBatch` records. */
export function makeFetchBody(batches: number, perBatch: number, valueBytes: number): Uint8Array {
  const value = new Uint8Array(valueBytes).map((_, index) => index & 0xff);
  const parts: Uint8Array[] = [];
  for (let batch = 0; batch < batches; batch++) {
    const bytes = encodeBatch(Array.from({ length: perBatch }, () => ({ value })), { nowMs: 1_700_000_000_000 });
    stampBaseOffset(bytes, batch * perBatch);
    parts.push(bytes);
  }
  const records = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    records.set(part, at);
    at += part.length;
  }
  return encode({ id: 1, partitions: [{ topic: "t", partition: 0, logStartOffset: 0, nextOffset: batches * perBatch, recordsBytes: records.length }], records });
}

const decoder = createResponseDecoder(64 << 20);

function recordsOf(body: Uint8Array): Uint8Array {
  return (decoder.decode(body) as { records: Uint8Array }).records;
}

/** As the Consumer: verify each batch, decode its records, make one Message per record. */
export function decodeLikeConsumer(body: Uint8Array): Message[] {
  const records = recordsOf(body);
  const messages: Message[] = [];
  const make = (offset: number, timestamp: number, key: Uint8Array | null, value: Uint8Array | null): Message => ({ topic: "t", partition: 0, offset, timestamp, key, value, headers: null });
  for (const span of scanBatches(records)) {
    const batch = records.subarray(span.position, span.position + span.bytes);
    const header = verifyBatch(batch);
    // The Consumer's path: records straight into Message objects (no intermediate record).
    if (decodeRecordsFastInto(recordSection(batch, header), header.baseOffset, header.firstTimestamp, header.recordCount, 0, make, messages)) continue;
    for (const record of decodeRecords(batch, header)) {
      messages.push({ topic: "t", partition: 0, offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers });
    }
  }
  return messages;
}

/** Records decoded, no checksum and no Message objects. */
export function decodeRecordsOnly(body: Uint8Array): number {
  const records = recordsOf(body);
  let count = 0;
  for (const span of scanBatches(records)) count += decodeRecords(records.subarray(span.position, span.position + span.bytes), span.header).length;
  return count;
}

/** Raw fetch: batch headers only. */
export function countFromHeaders(body: Uint8Array): number {
  let count = 0;
  for (const span of scanBatches(recordsOf(body))) count += span.header.recordCount;
  return count;
}

export function clientDecodeSmoke(): { consumer: number; recordsOnly: number; headers: number; lastOffset: number } {
  const body = makeFetchBody(5, 40, 100);
  const messages = decodeLikeConsumer(body);
  return { consumer: messages.length, recordsOnly: decodeRecordsOnly(body), headers: countFromHeaders(body), lastOffset: messages[messages.length - 1]?.offset ?? -1 };
}

if (import.meta.main) {
  // ~1 MiB: 16 batches of 600 records of 100 B (a 64 KiB producer batch holds ~600).
  const body = makeFetchBody(16, 600, 100);
  summary(() => {
    group(`decode one ${(body.length / 1024).toFixed(0)} KiB fetch response: 9,600 records of 100 B`, () => {
      bench("as the Consumer (verify + decode + Message)", () => do_not_optimize(decodeLikeConsumer(body)));
      bench("decodeRecords only", () => do_not_optimize(decodeRecordsOnly(body)));
      bench("baseline: batch headers only (raw fetch)", () => do_not_optimize(countFromHeaders(body)));
    });
  });
  await run();
}
