/**
 * Consumer.nextBatch(): the batch-at-a-time read, against the real broker.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { Admin, Consumer, Producer } from "../../src/client/index.ts";
import { type RealBroker, startRealBroker } from "./real-broker.ts";

let broker: RealBroker;
let admin: Admin;

beforeAll(async () => {
  broker = await startRealBroker();
  admin = new Admin({ broker: broker.address });
});

afterAll(async () => {
  await admin.close();
  expect(await broker.stop()).toBe(0);
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

async function produce(topic: string, partitions: number, count: number): Promise<void> {
  await admin.createTopic(topic, { partitions });
  const producer = new Producer({ broker: broker.address, lingerMs: 1, batchBytes: 2048 });
  await Promise.all(Array.from({ length: count }, (_, index) => producer.send(topic, { value: `m${index}`, partition: index % partitions })));
  await producer.close();
}

test("nextBatch hands out every message once, in offset order per partition", async () => {
  await produce("batch-read", 2, 3000);
  const consumer = new Consumer({ broker: broker.address, partitionMaxBytes: 4096 }).subscribe("batch-read");
  const seen = new Map<number, number[]>([[0, []], [1, []]]);
  let total = 0;
  let batches = 0;
  while (total < 3000) {
    const batch = await consumer.nextBatch();
    expect(batch.length).toBeGreaterThan(0);
    batches += 1;
    for (const message of batch) seen.get(message.partition)!.push(message.offset);
    total += batch.length;
  }
  expect(total).toBe(3000);
  expect(batches).toBeGreaterThan(1);
  for (const offsets of seen.values()) expect(offsets).toEqual(Array.from({ length: 1500 }, (_, index) => index));
  await consumer.close();
  expect(await consumer.nextBatch()).toEqual([]);
});

test("a batch counts as processed at the next call: commit() then resumes after it", async () => {
  await produce("batch-commit", 1, 500);
  const first = new Consumer({ broker: broker.address, groupId: "g-batch", autoCommit: false, partitionMaxBytes: 2048 }).subscribe("batch-commit");
  const batch = await first.nextBatch();
  const last = batch[batch.length - 1]!.offset;
  expect(last).toBeLessThan(499);
  await first.commit();
  await first.close();
  const second = new Consumer({ broker: broker.address, groupId: "g-batch", autoCommit: false }).subscribe("batch-commit");
  const resumed = await second.nextBatch();
  expect(resumed[0]!.offset).toBe(last + 1);
  // Mixing forms: next() after nextBatch() marks the batch processed and carries on from there.
  const rest = resumed.length;
  const following = rest + last + 1 < 500 ? await second.next() : null;
  if (following !== null && !following.done) expect(following.value.offset).toBe(last + 1 + rest);
  await second.close();
});

test("after next() and nextBatch() across partitions, commit() records each partition's last message handed out", async () => {
  await produce("batch-mixed", 3, 900);
  const first = new Consumer({ broker: broker.address, groupId: "g-mixed", autoCommit: false, partitionMaxBytes: 1024 }).subscribe("batch-mixed");
  const lastSeen = new Map<number, number>();
  const step = await first.next();
  if (step.done) throw new Error("no message");
  lastSeen.set(step.value.partition, step.value.offset);
  // The rest of that answer (several partitions): handed out from the middle of the buffer.
  for (const message of await first.nextBatch()) lastSeen.set(message.partition, message.offset);
  expect(lastSeen.size).toBeGreaterThan(1);
  await first.commit();
  await first.close();
  const committed = await admin.connection.request("fetchOffsets", { group: "g-mixed", partitions: [0, 1, 2].map((partition) => ({ topic: "batch-mixed", partition })) });
  const offsets = new Map<number, number>();
  for (const entry of committed.offsets as Array<{ partition: number; offset: number }>) offsets.set(entry.partition, entry.offset);
  for (const [partition, offset] of lastSeen) expect(offsets.get(partition)).toBe(offset + 1);
});

/** 2000-byte values whose every byte says which message they belong to. */
async function produceLarge(topic: string, count: number): Promise<void> {
  await admin.createTopic(topic, { partitions: 1 });
  const producer = new Producer({ broker: broker.address, lingerMs: 1, batchBytes: 64 * 1024 });
  await Promise.all(Array.from({ length: count }, (_, index) => producer.send(topic, { value: new Uint8Array(2000).fill(index & 0xff), partition: 0 })));
  await producer.close();
}

function holdsOwnBytes(message: { offset: number; value: Uint8Array | null }): boolean {
  return message.value !== null && message.value.length === 2000 && message.value.every((byte) => byte === (message.offset & 0xff));
}

test("with reuseFetchBuffers, every batch's values are intact until the next call", async () => {
  await produceLarge("batch-reuse", 1500);
  const consumer = new Consumer({ broker: broker.address, partitionMaxBytes: 256 * 1024, reuseFetchBuffers: true }).subscribe("batch-reuse");
  let total = 0;
  let batches = 0;
  const objects = new Set<unknown>();
  const offsets: number[] = [];
  while (total < 1500) {
    const batch = await consumer.nextBatch();
    // Give the prefetched answer a chance to arrive (and be assembled) while this batch is
    // held; the buffer rotation itself is pinned down in test/protocol/frame-reuse.test.ts.
    await Bun.sleep(0);
    for (const message of batch) {
      expect(holdsOwnBytes(message)).toBe(true);
      expect(message.topic).toBe("batch-reuse");
      objects.add(message);
      offsets.push(message.offset);
    }
    total += batch.length;
    batches += 1;
  }
  expect(total).toBe(1500);
  expect(batches).toBeGreaterThan(3);
  expect(offsets).toEqual(Array.from({ length: 1500 }, (_, offset) => offset));
  // The Message objects are refilled answer after answer: far fewer of them than messages.
  expect(objects.size).toBeLessThan(total / 2);
  await consumer.close();
});

test("by default, values stay valid after later fetches", async () => {
  await produceLarge("batch-keep", 1500);
  const consumer = new Consumer({ broker: broker.address, partitionMaxBytes: 256 * 1024 }).subscribe("batch-keep");
  const kept: Array<{ offset: number; value: Uint8Array | null }> = [];
  while (kept.length < 1500) kept.push(...(await consumer.nextBatch()));
  await consumer.close();
  expect(kept.filter((message) => !holdsOwnBytes(message))).toEqual([]);
  // Each message its own object, valid for as long as it is referenced.
  expect(new Set(kept).size).toBe(1500);
  expect(kept.map((message) => message.offset)).toEqual(Array.from({ length: 1500 }, (_, offset) => offset));
});
