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
