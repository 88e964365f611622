import { describe, expect, test } from "bun:test";
import { decode } from "@msgpack/msgpack";
import { BatchBuilder } from "../../src/format/batch-builder.ts";
import { PRODUCE_HEADROOM_BYTES, encodeProduceFrame, encodeTopicName, type FramedBatch } from "../../src/client/produce-frame.ts";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame.ts";

function builtBatch(value: string, headroomBytes: number): Uint8Array {
  const builder = new BatchBuilder(1024, null, headroomBytes);
  builder.append({ value }, 1_700_000_000_000);
  return builder.finish();
}

/** The frame as the broker receives it: the chunks back to back. */
function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  return joined;
}

function decodeFrame(chunks: Uint8Array[]): { length: number; body: unknown } {
  const frame = joinChunks(chunks);
  const length = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
  expect(length).toBe(frame.length - FRAME_HEADER_BYTES);
  return { length, body: decode(frame.subarray(FRAME_HEADER_BYTES)) };
}

describe("produce frames written around their batches", () => {
  test("decode as the same request the generic encoder would describe, batches byte for byte", () => {
    const first = builtBatch("a", PRODUCE_HEADROOM_BYTES);
    const second = builtBatch("bb", PRODUCE_HEADROOM_BYTES);
    const batches: FramedBatch[] = [
      { topicName: encodeTopicName("orders"), partition: 0, bytes: first, headroomBytes: PRODUCE_HEADROOM_BYTES },
      { topicName: encodeTopicName("orders"), partition: 70_000, bytes: second, headroomBytes: PRODUCE_HEADROOM_BYTES },
    ];
    const expectedFirst = first.slice();
    const chunks = encodeProduceFrame(42, "synced", batches);
    // One chunk per batch: each envelope part sits in its batch's headroom, in the same buffer.
    expect(chunks).toHaveLength(2);
    expect(chunks[0]!.buffer).toBe(first.buffer);
    expect(chunks[1]!.buffer).toBe(second.buffer);
    expect(decodeFrame(chunks).body).toEqual({
      id: 42,
      op: "produce",
      durability: "synced",
      batches: [
        { topic: "orders", partition: 0, batch: expectedFirst },
        { topic: "orders", partition: 70_000, batch: second.slice() },
      ],
    });
  });

  test("a batch without headroom gets its head as a separate chunk, and is not copied either", () => {
    const bare = builtBatch("x", 0);
    const chunks = encodeProduceFrame(1, "written", [{ topicName: encodeTopicName("t"), partition: 2, bytes: bare, headroomBytes: 0 }]);
    expect(chunks).toHaveLength(2);
    expect(chunks[1]).toBe(bare);
    expect(decodeFrame(chunks).body).toEqual({ id: 1, op: "produce", durability: "written", batches: [{ topic: "t", partition: 2, batch: bare.slice() }] });
  });

  test("many batches (array32), long and non-ASCII topic names, ids up to 2^32 - 1", () => {
    const names = ["é".repeat(40), "x".repeat(249), "short"];
    const batches: FramedBatch[] = Array.from({ length: 20 }, (_, index) => {
      const headroomBytes = index % 3 === 0 ? 0 : PRODUCE_HEADROOM_BYTES;
      return { topicName: encodeTopicName(names[index % names.length]!), partition: index, bytes: builtBatch(`v${index}`, headroomBytes), headroomBytes };
    });
    const expected = batches.map((batch, index) => ({ topic: names[index % names.length], partition: index, batch: batch.bytes.slice() }));
    const { body } = decodeFrame(encodeProduceFrame(0xffff_ffff, "none", batches));
    expect(body).toEqual({ id: 0xffff_ffff, op: "produce", durability: "none", batches: expected });
  });

  test("the batch's own bytes are left as they were (only the headroom in front is written)", () => {
    const batch = builtBatch("payload", PRODUCE_HEADROOM_BYTES);
    const before = batch.slice();
    encodeProduceFrame(9, "written", [{ topicName: encodeTopicName("t"), partition: 0, bytes: batch, headroomBytes: PRODUCE_HEADROOM_BYTES }]);
    expect(batch).toEqual(before);
  });
});
