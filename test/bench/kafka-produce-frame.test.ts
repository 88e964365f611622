/**
 * The bench's hand-written Produce v9 request (bench/kafka-produce-frame.ts) is byte for byte
 * what the broker's codec writes for the same request, in one chunk when the batch's buffer has
 * room around it and in three when it has not, and it leaves the batch itself untouched.
 */
import { describe, expect, test } from "bun:test";
import { encodeProduceFrame, PRODUCE_HEADROOM_BYTES, PRODUCE_TAILROOM_BYTES } from "../../src/bench/kafka-produce-frame.ts";
import { encodeKafkaBatch } from "../../src/format/kafka-batch.ts";
import { encodeMessage, KafkaWriter } from "../../src/listeners/kafka/codec.ts";
import { API_KEYS, MESSAGES } from "../../src/listeners/kafka/definitions.ts";

const CLIENT_ID = new TextEncoder().encode("bench-test");
const FIELDS = { clientId: CLIENT_ID, topic: "orders-é", partition: 3, acks: 1, timeoutMs: 30_000 };

function batchOf(records: number, valueBytes: number, reuse: Uint8Array | null): Uint8Array {
  const value = new Uint8Array(valueBytes).fill(7);
  return encodeKafkaBatch(Array.from({ length: records }, (_, index) => ({ value, timestamp: 1_700_000_000_000 + index })), undefined, reuse);
}

/** The same request written by the broker's generic codec, as one array. */
function codecFrame(correlationId: number, batch: Uint8Array): Uint8Array {
  const pair = MESSAGES.get(API_KEYS.produce)!;
  const writer = new KafkaWriter();
  writer.int32(0);
  writer.int16(API_KEYS.produce);
  writer.int16(9);
  writer.int32(correlationId);
  writer.int16(CLIENT_ID.length);
  writer.raw(CLIENT_ID);
  writer.uvarint(0);
  encodeMessage(pair.request, 9, { transactionalId: null, acks: FIELDS.acks, timeoutMs: FIELDS.timeoutMs, topicData: [{ name: FIELDS.topic, partitionData: [{ index: FIELDS.partition, records: batch }] }] }, writer);
  const bytes = writer.finishBytes();
  new DataView(bytes.buffer, bytes.byteOffset).setInt32(0, bytes.length - 4);
  return bytes;
}

function joined(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let position = 0;
  for (const chunk of chunks) {
    all.set(chunk, position);
    position += chunk.length;
  }
  return all;
}

describe("the bench's hand-written Produce request", () => {
  test("is one chunk around a batch with head- and tailroom, equal to the codec's bytes", () => {
    const buffer = new Uint8Array(PRODUCE_HEADROOM_BYTES + 70_000 + PRODUCE_TAILROOM_BYTES).fill(0xee);
    const batch = batchOf(300, 200, buffer.subarray(PRODUCE_HEADROOM_BYTES, PRODUCE_HEADROOM_BYTES + 70_000));
    expect(batch.buffer).toBe(buffer.buffer);
    const before = batch.slice();
    const chunks = encodeProduceFrame(77, FIELDS, batch);
    expect(chunks).toHaveLength(1);
    expect(joined(chunks)).toEqual(codecFrame(77, before));
    expect(batch).toEqual(before);
  });

  test("falls back to head, batch and tail when the batch has no room around it", () => {
    const batch = batchOf(20, 1_000, null);
    const chunks = encodeProduceFrame(5, FIELDS, batch);
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(batch);
    expect(joined(chunks)).toEqual(codecFrame(5, batch));
  });

  test("a recycled buffer gives the same batch as a fresh one (stale bytes from an earlier batch do not leak in)", () => {
    const buffer = new Uint8Array(100_000).fill(0xab);
    const recycled = batchOf(50, 100, buffer);
    expect(recycled).toEqual(batchOf(50, 100, null));
  });
});
