/**
 * The client across broker restarts: the real broker is killed (SIGKILL, a crash) or stopped
 * and started again on the same port and data dir while clients are working.
 */
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import { Admin, Consumer, Producer, type Message, type SendResult } from "../../src/client/index.ts";
import { type RealBroker, startRealBroker, tempDir } from "./real-broker.ts";
import { until } from "../support/wait.ts";

const text = (bytes: Uint8Array | null) => (bytes === null ? "" : new TextDecoder().decode(bytes));
const cleanups: Array<() => Promise<unknown> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function brokerIn(dataDir: string, port?: number): Promise<RealBroker> {
  const broker = await startRealBroker({ dataDir, ...(port === undefined ? {} : { port }) });
  cleanups.push(async () => {
    if (broker.child.exitCode === null && broker.child.signalCode === null) await broker.stop();
  });
  return broker;
}


async function readAll(address: string, topic: string, count: number): Promise<Message[]> {
  const consumer = new Consumer({ broker: address, maxWaitMs: 200 }).assign([{ topic, partition: 0 }]);
  const messages: Message[] = [];
  try {
    for await (const message of consumer) {
      messages.push(message);
      if (messages.length >= count) break;
    }
  } finally {
    await consumer.close();
  }
  return messages;
}

describe("Client across broker restarts", () => {
  test("a synced producer survives a broker crash: every acknowledged message is stored exactly once, in order", async () => {
    const dataDir = tempDir("runnel-restart-");
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const first = await brokerIn(dataDir);
    const admin = new Admin({ broker: first.address });
    await admin.createTopic("stream");
    await admin.close();
    const producer = new Producer({ broker: first.address, durability: "synced", lingerMs: 2, retryBackoffMs: 20, connectTimeoutMs: 15_000, deliveryTimeoutMs: 20_000 });
    cleanups.push(() => producer.close().catch(() => undefined));
    const total = 3_000;
    const results: Array<SendResult | Error> = [];
    const sends: Array<Promise<void>> = [];
    let acked = 0;
    // Crash the broker while sends keep flowing, then bring it back on the same port and data.
    const crash = (async () => {
      await until(() => acked >= 1_000, 10_000);
      await first.kill();
      return await brokerIn(dataDir, first.port);
    })();
    for (let index = 0; index < total; index++) {
      sends.push(producer.send("stream", { value: `seq-${index}` }).then(
        (result) => { results[index] = result; acked += 1; },
        (error: Error) => { results[index] = error; },
      ));
      // Pace the sends so that batches are in flight when the crash comes.
      if (index % 20 === 0) await Bun.sleep(1);
    }
    const restarted = await crash;
    await Promise.all(sends);
    expect(acked).toBe(total);
    const failures = results.filter((result) => result instanceof Error);
    expect(failures).toEqual([]);
    const stored = await readAll(restarted.address, "stream", total);
    const valueAt = new Map(stored.map((message) => [message.offset, text(message.value)]));
    // Every acknowledged message is at the offset it was acknowledged with.
    results.forEach((result, index) => expect(valueAt.get((result as SendResult).offset)).toBe(`seq-${index}`));
    // In order: the first occurrences of the values are seq-0, seq-1, ... with none missing.
    const seen = new Set<string>();
    const firstOccurrences = stored.map((message) => text(message.value)).filter((value) => !seen.has(value) && seen.add(value));
    expect(firstOccurrences).toEqual(Array.from({ length: total }, (_, index) => `seq-${index}`));
    // The producer is idempotent by default: a batch stored just before the crash whose answer
    // was lost is recognised on retry by its producer id and sequence, never stored twice.
    const duplicates = stored.length - firstOccurrences.length;
    console.log(`broker crash mid-stream: ${total} sent, ${stored.length} stored, ${duplicates} duplicates, ${producer.metrics.retries} batch retries`);
    expect(duplicates).toBe(0);
    // The partition holds exactly the acknowledged records: nothing stored twice past them.
    const checker = new Admin({ broker: restarted.address });
    const described = await checker.describeTopic("stream");
    await checker.close();
    expect(described.partitions[0]?.nextOffset).toBe(total);
  }, 30_000);

  test("committed offsets survive a broker restart and a new consumer resumes from them", async () => {
    const dataDir = tempDir("runnel-restart-");
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const first = await brokerIn(dataDir);
    const producer = new Producer({ broker: first.address });
    const admin = new Admin({ broker: first.address });
    await admin.createTopic("commits");
    await Promise.all(Array.from({ length: 20 }, (_, index) => producer.send("commits", { value: `c${index}` })));
    await producer.close();
    await admin.close();
    const consumer = new Consumer({ broker: first.address, groupId: "survivor", maxWaitMs: 100 }).subscribe("commits");
    let read = 0;
    for await (const _message of consumer) if (++read === 8) break;
    await consumer.commit();
    await consumer.close();
    expect(await first.stop()).toBe(0);
    const second = await brokerIn(dataDir, first.port);
    const resumed = new Consumer({ broker: second.address, groupId: "survivor", maxWaitMs: 100 }).subscribe("commits");
    cleanups.push(() => resumed.close());
    const next = await resumed.next();
    expect((next.value as Message).offset).toBe(8);
    expect(text((next.value as Message).value)).toBe("c8");
  }, 20_000);

  test("a consumer keeps going across a broker restart", async () => {
    const dataDir = tempDir("runnel-restart-");
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const first = await brokerIn(dataDir);
    const admin = new Admin({ broker: first.address });
    await admin.createTopic("steady");
    await admin.close();
    const producer = new Producer({ broker: first.address, lingerMs: 0 });
    await producer.send("steady", { value: "before" });
    const consumer = new Consumer({ broker: first.address, maxWaitMs: 100, retryBackoffMs: 20, connectTimeoutMs: 15_000 }).assign([{ topic: "steady", partition: 0 }]);
    cleanups.push(() => consumer.close());
    expect(text(((await consumer.next()).value as Message).value)).toBe("before");
    await first.kill();
    const second = await brokerIn(dataDir, first.port);
    await producer.send("steady", { value: "after" });
    await producer.close();
    expect(text(((await consumer.next()).value as Message).value)).toBe("after");
    expect(second.port).toBe(first.port);
  }, 20_000);
});
