/**
 * The benchmark's streaming fetch reader (src/bench/follow-fetch.ts): it counts an answer's
 * records without assembling the frame, however the answer is cut into chunks, and refuses
 * answers it cannot account for (an error, a first batch other than the one asked for, records
 * that are not whole batches).
 */
import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { FetchFollower } from "../../src/bench/follow-fetch.ts";
import { encodeBatch, FIELD } from "../../src/format/record-batch.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";

const RECORDS_PER_BATCH = 3;
const batch = encodeBatch(Array.from({ length: RECORDS_PER_BATCH }, (_, index) => ({ value: new Uint8Array(100).fill(index) })));

/** `count` stored batches starting at `baseOffset`, as a broker would send them. */
function storedBatches(baseOffset: number, count: number): Uint8Array {
  const records = new Uint8Array(batch.length * count);
  for (let index = 0; index < count; index++) {
    records.set(batch, index * batch.length);
    new DataView(records.buffer).setBigInt64(index * batch.length + FIELD.baseOffset, BigInt(baseOffset + index * RECORDS_PER_BATCH));
  }
  return records;
}

/** A fetch answer frame: map of 3, `records` last and always bin32 (docs/protocol.md). */
function answerFrame(records: Uint8Array): Uint8Array {
  const head = [Uint8Array.of(0x83), encode("id"), encode(1), encode("partitions"), encode([{ topic: "t", partition: 0, logStartOffset: 0, nextOffset: 99, recordsBytes: records.length }])];
  const prefix = new Uint8Array(5);
  prefix[0] = 0xc6;
  new DataView(prefix.buffer).setUint32(1, records.length);
  const parts = [...head, encode("records"), prefix, records];
  const body = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  return encodeFrame(body);
}

function follower(): FetchFollower {
  return new FetchFollower("t", 0, { batchBytes: batch.length, recordsPerBatch: RECORDS_PER_BATCH, fetchBytesMax: 1 << 20, endMs: 0 });
}

/** Feeds `stream` in chunks of `chunkBytes`; returns the answers completed. */
function feed(reader: FetchFollower, stream: Uint8Array, chunkBytes: number): number {
  let answers = 0;
  for (let at = 0; at < stream.length; at += chunkBytes) answers += reader.push(stream.subarray(at, at + chunkBytes));
  return answers;
}

describe("FetchFollower", () => {
  test("counts the records of consecutive answers and moves its offset on, whatever the chunk size", () => {
    const first = answerFrame(storedBatches(0, 2));
    const second = answerFrame(storedBatches(2 * RECORDS_PER_BATCH, 1));
    const empty = answerFrame(new Uint8Array(0));
    const stream = new Uint8Array([...first, ...second, ...empty]);
    for (const chunkBytes of [1, 3, 7, 64, 1000, stream.length]) {
      const reader = follower();
      expect(feed(reader, stream, chunkBytes)).toBe(3);
      expect(reader.bytes).toBe(3 * batch.length);
      expect(reader.offset).toBe(3 * RECORDS_PER_BATCH);
    }
  });

  test("refuses an answer whose first batch is not the offset it asked for", () => {
    expect(() => feed(follower(), answerFrame(storedBatches(RECORDS_PER_BATCH, 1)), 16)).toThrow("the first batch starts at 3, 0 was asked for");
  });

  test("refuses records that are not whole batches", () => {
    expect(() => feed(follower(), answerFrame(storedBatches(0, 2).subarray(0, batch.length + 5)), 16)).toThrow("not whole batches");
  });

  test("reports an error answer with its code", () => {
    const error = encodeFrame(encode({ id: 1, error: { code: "UNKNOWN_TOPIC", message: "no such topic" } }));
    expect(() => feed(follower(), error, 5)).toThrow("UNKNOWN_TOPIC");
  });
});
