/**
 * @module test/server/long-poll
 * Long-poll fetches through a real broker: each parked fetch answered at its own deadline,
 * woken by data on any of its partitions, kept parked until minBytes is reached, and released
 * by a broker stop or by its client going away.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { type Message, startTestBroker, TestClient, type TestBroker, waitUntil } from "./helpers.ts";

const batchOf = (...values: string[]) => encodeBatch(values.map((value) => ({ value })), { nowMs: 1_700_000_000_000 });
const LONG_WAIT_MS = 60_000;

let server: TestBroker;
let control: TestClient;

beforeAll(async () => {
  server = await startTestBroker();
  control = await TestClient.connect(server.port);
  await control.request({ op: "createTopic", topic: "lp", partitions: 4 });
});

afterAll(async () => {
  await control[Symbol.asyncDispose]();
  await server[Symbol.asyncDispose]();
});

async function fetchesWaiting(client: TestClient): Promise<number> {
  return (await client.request({ op: "stats" })).fetchesWaiting as number;
}

function partitionsOf(response: Message): Array<{ partition: number; recordsBytes: number }> {
  return response.partitions as Array<{ partition: number; recordsBytes: number }>;
}

describe("long poll: deadlines", () => {
  test("fetches parked with different maxWaitMs are each answered, empty, no sooner than their own deadline", async () => {
    const waitsMs = [180, 30, 120, 60, 150, 10, 90];
    const clients = await Promise.all(waitsMs.map(() => TestClient.connect(server.port)));
    try {
      const answered = clients.map(async (client, index) => {
        const waitMs = waitsMs[index] as number;
        const sentAtMs = Date.now();
        const response = await client.request({ op: "fetch", partitions: [{ topic: "lp", partition: 3, offset: 0 }], maxWaitMs: waitMs, minBytes: 1 });
        return { waitMs, elapsedMs: Date.now() - sentAtMs, response };
      });
      for (const { waitMs, elapsedMs, response } of await Promise.all(answered)) {
        expect(elapsedMs).toBeGreaterThanOrEqual(waitMs);
        expect(partitionsOf(response)).toEqual([expect.objectContaining({ partition: 3, recordsBytes: 0 })]);
      }
      expect(await fetchesWaiting(control)).toBe(0);
    } finally {
      for (const client of clients) await client[Symbol.asyncDispose]();
    }
  });
});

describe("long poll: waking on data", () => {
  test("a fetch on several partitions is woken by data on any one of them, while a fetch on another stays parked", async () => {
    await using many = await TestClient.connect(server.port);
    await using other = await TestClient.connect(server.port);
    const manyId = many.send({ op: "fetch", partitions: [{ topic: "lp", partition: 0, offset: 0 }, { topic: "lp", partition: 1, offset: 0 }, { topic: "lp", partition: 0, offset: 0 }], maxWaitMs: LONG_WAIT_MS, minBytes: 1 });
    const otherId = other.send({ op: "fetch", partitions: [{ topic: "lp", partition: 2, offset: 0 }], maxWaitMs: LONG_WAIT_MS, minBytes: 1 });
    await waitUntil(async () => (await fetchesWaiting(control)) === 2, 5_000, "two parked fetches");

    await control.request({ op: "produce", batches: [{ topic: "lp", partition: 1, batch: batchOf("one") }] });
    const woken = await many.next();
    expect(woken.id).toBe(manyId);
    expect(partitionsOf(woken).map((entry) => entry.recordsBytes > 0)).toEqual([false, true, false]);
    expect(await fetchesWaiting(control)).toBe(1);

    await control.request({ op: "produce", batches: [{ topic: "lp", partition: 2, batch: batchOf("two") }] });
    const second = await other.next();
    expect(second.id).toBe(otherId);
    expect(partitionsOf(second)[0]?.recordsBytes).toBeGreaterThan(0);
    expect(await fetchesWaiting(control)).toBe(0);
  });

  test("a fetch whose minBytes one produce does not reach stays parked until a later produce does", async () => {
    const batch = batchOf("a small record");
    await using consumer = await TestClient.connect(server.port);
    const id = consumer.send({ op: "fetch", partitions: [{ topic: "lp", partition: 0, offset: 0 }], maxWaitMs: LONG_WAIT_MS, minBytes: batch.length + 1 });
    await waitUntil(async () => (await fetchesWaiting(control)) === 1, 5_000, "a parked fetch");
    await control.request({ op: "produce", batches: [{ topic: "lp", partition: 0, batch }] });
    // The produce's answer leaves after the fetch has read again and parked again.
    expect(await fetchesWaiting(control)).toBe(1);
    expect(consumer.frames.length).toBe(0);
    await control.request({ op: "produce", batches: [{ topic: "lp", partition: 0, batch }] });
    const response = await consumer.next();
    expect(response.id).toBe(id);
    expect(partitionsOf(response)[0]?.recordsBytes).toBe(2 * batch.length);
    expect(await fetchesWaiting(control)).toBe(0);
  });

  test("a parked fetch woken by several produce requests read together answers with all of them, not only the first", async () => {
    await control.request({ op: "createTopic", topic: "lp-together", partitions: 1 });
    await using consumer = await TestClient.connect(server.port);
    await using producer = await TestClient.connect(server.port);
    const id = consumer.send({ op: "fetch", partitions: [{ topic: "lp-together", partition: 0, offset: 0 }], maxWaitMs: LONG_WAIT_MS, minBytes: 1 });
    await waitUntil(async () => (await fetchesWaiting(control)) === 1, 5_000, "a parked fetch");
    const batches = ["first", "second", "third"].map((value) => batchOf(value));
    // One write: the broker reads the three requests in one go and appends them one after another.
    const frames = batches.map((batch, index) => encodeFrame(encode({ id: 1000 + index, op: "produce", durability: "written", batches: [{ topic: "lp-together", partition: 0, batch }] })));
    producer.writeRaw(Buffer.concat(frames));
    const response = await consumer.next();
    expect(response.id).toBe(id);
    expect(partitionsOf(response)[0]?.recordsBytes).toBe(batches.reduce((sum, batch) => sum + batch.length, 0));
    for (let index = 0; index < 3; index++) expect((await producer.next()).id).toBe(1000 + index);
  });
});

describe("long poll: release", () => {
  test("a client that goes away while its fetch is parked leaves no waiter behind once the wait ends", async () => {
    const leaving = await TestClient.connect(server.port);
    leaving.send({ op: "fetch", partitions: [{ topic: "lp", partition: 3, offset: 0 }], maxWaitMs: 50, minBytes: 1 });
    await waitUntil(async () => (await fetchesWaiting(control)) === 1, 5_000, "a parked fetch");
    await leaving[Symbol.asyncDispose]();
    await waitUntil(async () => (await fetchesWaiting(control)) === 0, 5_000, "the waiter to go");
    // The broker still serves long polls afterwards.
    const response = await control.request({ op: "fetch", partitions: [{ topic: "lp", partition: 3, offset: 0 }], maxWaitMs: 5, minBytes: 1 });
    expect(partitionsOf(response)[0]?.recordsBytes).toBe(0);
  });

  test("stopping the broker answers every parked fetch at once, pipelined ones in order, and the stop completes", async () => {
    const own = await startTestBroker();
    const clients: TestClient[] = [];
    try {
      const setup = await TestClient.connect(own.port);
      clients.push(setup);
      await setup.request({ op: "createTopic", topic: "stop", partitions: 2 });
      const pipelined = await TestClient.connect(own.port);
      const single = await TestClient.connect(own.port);
      clients.push(pipelined, single);
      const ids = [0, 1, 0].map((partition) => pipelined.send({ op: "fetch", partitions: [{ topic: "stop", partition, offset: 0 }], maxWaitMs: LONG_WAIT_MS, minBytes: 1 }));
      const singleId = single.send({ op: "fetch", partitions: [{ topic: "stop", partition: 0, offset: 0 }, { topic: "stop", partition: 1, offset: 0 }], maxWaitMs: LONG_WAIT_MS, minBytes: 1 });
      await waitUntil(async () => (await setup.request({ op: "stats" })).fetchesWaiting === 4, 5_000, "four parked fetches");

      await own.broker.stop();
      const answers = [await pipelined.next(), await pipelined.next(), await pipelined.next()];
      expect(answers.map((answer) => answer.id)).toEqual(ids);
      const singleAnswer = await single.next();
      expect(singleAnswer.id).toBe(singleId);
      for (const answer of [...answers, singleAnswer]) for (const entry of partitionsOf(answer)) expect(entry.recordsBytes).toBe(0);
    } finally {
      for (const client of clients) await client[Symbol.asyncDispose]();
      await own[Symbol.asyncDispose]();
    }
  });
});

describe("long poll: maxWaitMs is clamped to fetchWaitMsMax, never refused", () => {
  test("a fetch asking to wait far longer than fetchWaitMsMax waits only that long and answers empty, on both decoding paths", async () => {
    await using clamped = await startTestBroker({ fetchWaitMsMax: 20 });
    await using consumer = await TestClient.connect(clamped.port);
    await consumer.request({ op: "createTopic", topic: "idle", partitions: 1 });
    const partitions = [{ topic: "idle", partition: 0, offset: 0 }];
    for (const request of [
      { op: "fetch", partitions, maxWaitMs: 10 ** 12, minBytes: 1 },
      { op: "fetch", partitions, maxWaitMs: Number.MAX_SAFE_INTEGER, minBytes: 1, unknownKey: "takes the generic path" },
    ]) {
      const response = await consumer.request(request);
      expect(response.error).toBeUndefined();
      expect(partitionsOf(response)).toEqual([expect.objectContaining({ partition: 0, recordsBytes: 0 })]);
    }
  });

  test("hello reports the fetchWaitMsMax that maxWaitMs is clamped to", async () => {
    await using clamped = await startTestBroker({ fetchWaitMsMax: 20 });
    await using client = await TestClient.connect(clamped.port);
    expect(((await client.request({ op: "hello", versions: [1] })).limits as Message).fetchWaitMsMax).toBe(20);
  });
});
