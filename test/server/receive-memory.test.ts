/**
 * Issue 17 part 3: the broker frees each large chunk it receives from Bun as soon as the frame
 * decoder has taken all of its bytes (server/received-chunks.ts), and the decoder frees the
 * assembly buffers it lets go of. A chunk or buffer freed too early would hand dispatch empty or
 * foreign bytes: these tests check that nothing is lost or mixed up; never memory figures.
 */
import { describe, expect, test } from "bun:test";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { freeBytesNow } from "../../src/protocol/frame.ts";
import { CHUNK_FREE_BYTES_MIN, freeReceivedChunk } from "../../src/server/received-chunks.ts";
import { type Message, startTestBroker, TestClient } from "./helpers.ts";

const BATCH_VALUES = 64;
const VALUE_BYTES = 16 * 1024;

/** A ~1 MiB batch whose every byte depends on (connection, index): a mix-up fails its checksum or the count. */
function bigBatch(connection: number, index: number): Uint8Array {
  const values = Array.from({ length: BATCH_VALUES }, (_, record) => ({ value: new Uint8Array(VALUE_BYTES).fill((connection * 97 + index * 31 + record) & 0xff) }));
  return encodeBatch(values, { nowMs: 1_700_000_000_000 + index });
}

/** Sends `requests` produce requests of two 1 MiB batches each without waiting, then checks every answer. */
async function produceMany(client: TestClient, connection: number, requests: number): Promise<number> {
  let bytes = 0;
  const ids: number[] = [];
  for (let index = 0; index < requests; index++) {
    const batches = [0, 1].map((half) => bigBatch(connection, index * 2 + half));
    bytes += batches.reduce((sum, batch) => sum + batch.length, 0);
    ids.push(client.send({ op: "produce", durability: "written", batches: batches.map((batch) => ({ topic: "big", partition: connection, batch })) }));
  }
  for (const id of ids) {
    const answer = await client.next(30_000);
    expect(answer.id).toBe(id);
    for (const result of answer.results as Message[]) expect(result.error).toBeUndefined();
  }
  return bytes;
}

describe("broker: received chunks are freed once decoded, and nothing is lost", () => {
  test("two connections sending 2 MiB produce requests at once have every batch appended whole", async () => {
    await using server = await startTestBroker();
    await using admin = await TestClient.connect(server.port);
    await admin.request({ op: "createTopic", topic: "big", partitions: 2 });
    await using first = await TestClient.connect(server.port);
    await using second = await TestClient.connect(server.port);
    const before = await admin.request({ op: "stats" });
    const sent = await Promise.all([produceMany(first, 0, 8), produceMany(second, 1, 8)]);
    const stats = await admin.request({ op: "stats" });
    expect((stats.bytesAppended as number) - (before.bytesAppended as number)).toBe(sent[0]! + sent[1]!);
    expect((stats.batchesAppended as number) - (before.batchesAppended as number)).toBe(32);
    const offsets = await admin.request({ op: "listOffsets", partitions: [0, 1].map((partition) => ({ topic: "big", partition, at: "latest" })) });
    expect(offsets.partitions).toEqual([0, 1].map((partition) => ({ topic: "big", partition, offset: 16 * BATCH_VALUES })));
  });

  test("hundreds of small produce requests sent in one burst (large chunks of many frames) are all appended, in order", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "burst", partitions: 1 });
    const requests = 400;
    const ids: number[] = [];
    for (let index = 0; index < requests; index++) {
      const batch = encodeBatch([{ value: new Uint8Array(1_000).fill(index & 0xff) }], { nowMs: 1_700_000_000_000 + index });
      ids.push(client.send({ op: "produce", durability: "written", batches: [{ topic: "burst", partition: 0, batch }] }));
    }
    for (const [index, id] of ids.entries()) {
      const answer = await client.next(30_000);
      expect(answer.id).toBe(id);
      expect(answer.results).toEqual([{ topic: "burst", partition: 0, baseOffset: index, lastOffset: index }]);
    }
  });
});

describe("freeing buffers at once", () => {
  test("freeBytesNow frees an array that is its whole buffer; its views then read as empty", () => {
    const bytes = new Uint8Array(100_000).fill(7);
    const view = bytes.subarray(10, 20);
    expect(freeBytesNow(bytes)).toBe(true);
    expect(bytes.length).toBe(0);
    expect(view.length).toBe(0);
    expect(freeBytesNow(bytes)).toBe(false);
  });

  test("freeBytesNow leaves a view into a larger buffer, and an empty array, alone", () => {
    const whole = new Uint8Array(1_000).fill(1);
    expect(freeBytesNow(whole.subarray(0, 500))).toBe(false);
    expect(freeBytesNow(whole.subarray(500))).toBe(false);
    expect(freeBytesNow(new Uint8Array(0))).toBe(false);
    expect(whole.length).toBe(1_000);
  });

  test("freeReceivedChunk frees large chunks and leaves small ones to the collector", () => {
    const small = new Uint8Array(CHUNK_FREE_BYTES_MIN - 1);
    const large = new Uint8Array(CHUNK_FREE_BYTES_MIN);
    expect(freeReceivedChunk(small)).toBe(false);
    expect(small.length).toBe(CHUNK_FREE_BYTES_MIN - 1);
    expect(freeReceivedChunk(large)).toBe(true);
    expect(large.length).toBe(0);
  });
});
