/**
 * @module test/client/producer-adaptive
 * The adaptive batch bound (ProducerOptions.batchBytes unset): it grows while records arrive
 * faster than answers and falls back once batches leave by linger; a bound that was set stays.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Producer } from "../../src/client/producer.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";

const KiB = 1024;
let server: TestBroker;

beforeAll(async () => {
  server = await startTestBroker();
  await server.broker.context.log.createTopicAsync("adaptive", { partitions: 4 });
});

afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

/** Sends `count` 1 KiB records as fast as the buffer lets it, then waits for every answer. */
async function saturate(producer: Producer, count: number): Promise<void> {
  const value = new Uint8Array(KiB);
  for (let index = 0; index < count; index++) {
    if (producer.saturated) await producer.ready();
    producer.sendWithCallback("adaptive", { value }, (error) => {
      if (error !== null) throw error;
    });
  }
  await producer.flush();
}

test("with batchBytes unset, a saturating load grows the batch bound and light load shrinks it back", async () => {
  const producer = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 1 });
  try {
    expect(producer.metrics.batchBytes).toBe(64 * KiB);
    await saturate(producer, 40_000);
    expect(producer.metrics.batchBytes).toBeGreaterThan(64 * KiB);
    // 40,000 KiB in 64 KiB batches would be ~650 batches; grown ones are fewer.
    expect(producer.metrics.batchesSent).toBeLessThan(600);
    for (let index = 0; index < 8; index++) await producer.send("adaptive", { value: "one at a time" });
    expect(producer.metrics.batchBytes).toBe(64 * KiB);
  } finally {
    await producer.close();
  }
});

test("a batchBytes that was set stays fixed under the same load", async () => {
  const producer = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 1, batchBytes: 64 * KiB });
  try {
    await saturate(producer, 40_000);
    expect(producer.metrics.batchBytes).toBe(64 * KiB);
    expect(producer.metrics.batchesSent).toBeGreaterThanOrEqual(600);
  } finally {
    await producer.close();
  }
});
