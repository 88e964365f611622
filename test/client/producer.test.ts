import { afterEach, describe, expect, test } from "bun:test";
import { RunnelError } from "../../src/errors.ts";
import { LIMITS } from "../../src/limits.ts";
import { decodeRecords, verifyBatch } from "../../src/format/record-batch.ts";
import { partitionForKey } from "../../src/client/partitioner.ts";
import { Producer, type ProducerOptions } from "../../src/client/producer.ts";
import { FakeBroker, type Request } from "./fake-broker.ts";
import { until } from "../support/wait.ts";

const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setUp(options: ProducerOptions = {}, broker = new FakeBroker()): { broker: FakeBroker; producer: Producer } {
  broker.createTopic("t", 1);
  const producer = new Producer({ broker: broker.address, ...options });
  cleanups.push(() => broker.stop());
  cleanups.push(() => producer.close().catch(() => undefined));
  return { broker, producer };
}

/** The batches of every produce request the broker saw, for one partition, decoded. */
function storedValues(broker: FakeBroker, topic: string, partition: number): string[] {
  return broker.batches(topic, partition).flatMap((batch) => decodeRecords(batch.bytes, verifyBatch(batch.bytes)).map((record) => text(record.value)!));
}

function producedBatchSizes(broker: FakeBroker): number[] {
  return broker.requestsOf("produce").flatMap((request) => (request.batches as Array<{ batch: Uint8Array }>).map((entry) => entry.batch.length));
}

/** One answered request proves the broker has read everything sent before it (answers are in order). */
async function roundTrip(producer: Producer): Promise<void> {
  await producer.connection.request("metadata", { topics: [] });
}

function codeOf(error: unknown): string {
  return error instanceof RunnelError ? error.code : `not a RunnelError: ${String(error)}`;
}

describe("Producer batching", () => {
  test("a batch holds at most the broker's record-count limit, however small the records and large batchBytes", async () => {
    const { broker, producer } = setUp({ lingerMs: 60_000, batchBytes: LIMITS.batchBytesMax });
    const count = LIMITS.recordsPerBatchMax + 10;
    const sends: Array<Promise<unknown>> = [];
    for (let index = 0; index < count; index++) sends.push(producer.send("t", { value: null }));
    await producer.flush();
    await Promise.all(sends);
    const recordCounts = broker.batches("t", 0).map((batch) => verifyBatch(batch.bytes).recordCount);
    expect(Math.max(...recordCounts)).toBe(LIMITS.recordsPerBatchMax);
    expect(recordCounts.reduce((sum, records) => sum + records, 0)).toBe(count);
  });

  test("a record stamped earlier than the open batch's first starts a new batch: every batch's firstTimestamp is its smallest (deltas >= 0)", async () => {
    const { broker, producer } = setUp({ lingerMs: 60_000 });
    const timestampsMs = [1_700_000_000_010, 1_700_000_000_000, 1_700_000_000_005, 1_699_999_999_000, 1_700_000_000_020];
    const sends = Promise.all(timestampsMs.map((timestamp, index) => producer.send("t", { value: `m${index}`, timestamp })));
    await producer.flush();
    await sends;
    const batches = broker.batches("t", 0).map((batch) => ({ header: verifyBatch(batch.bytes), records: decodeRecords(batch.bytes) }));
    for (const { header, records } of batches) {
      for (const record of records) expect(record.timestamp).toBeGreaterThanOrEqual(header.firstTimestamp);
      expect(Math.max(...records.map((record) => record.timestamp))).toBe(header.maxTimestamp);
    }
    expect(batches.flatMap(({ records }) => records.map((record) => record.timestamp))).toEqual(timestampsMs);
    expect(batches.length).toBe(3);
  });

  test("many send() calls become few batches, with consecutive offsets", async () => {
    const { broker, producer } = setUp({ lingerMs: 50 });
    const results = await Promise.all(Array.from({ length: 1000 }, (_, index) => producer.send("t", { value: `m${index}` })));
    expect(results.map((result) => result.offset)).toEqual(Array.from({ length: 1000 }, (_, index) => index));
    expect(producedBatchSizes(broker).length).toBeLessThanOrEqual(2);
    expect(storedValues(broker, "t", 0)).toEqual(Array.from({ length: 1000 }, (_, index) => `m${index}`));
    expect(producer.metrics.recordsAcked).toBe(1000);
  });

  test("no batch is larger than batchBytes (unless one record alone is)", async () => {
    const { broker, producer } = setUp({ lingerMs: 60_000, batchBytes: 1024 });
    const value = "v".repeat(90);
    const sends = Promise.all(Array.from({ length: 200 }, () => producer.send("t", { value })));
    await producer.flush();
    await sends;
    const sizes = producedBatchSizes(broker);
    expect(sizes.every((size) => size <= 1024)).toBe(true);
    expect(sizes.length).toBeGreaterThanOrEqual(Math.ceil((200 * 95) / 1024));
    const big = producer.send("t", { value: "x".repeat(5000) });
    await producer.flush();
    expect((await big).offset).toBe(200);
    expect(Math.max(...producedBatchSizes(broker))).toBeGreaterThan(5000);
  });

  test("a batch waits for lingerMs: nothing is sent before it, flush() sends at once", async () => {
    const { broker, producer } = setUp({ lingerMs: 60_000 });
    const sent = producer.send("t", { value: "held" });
    await roundTrip(producer);
    await roundTrip(producer);
    expect(broker.requestsOf("produce")).toHaveLength(0);
    await producer.flush();
    expect(broker.requestsOf("produce")).toHaveLength(1);
    expect((await sent).offset).toBe(0);
  });

  test("a short linger sends without flush()", async () => {
    const { broker, producer } = setUp({ lingerMs: 1 });
    expect(await producer.send("t", { value: "soon" })).toEqual({ partition: 0, offset: 0 });
    expect(storedValues(broker, "t", 0)).toEqual(["soon"]);
  });

  test("with lingerMs 0 the sends of one turn share a batch, sent on the next turn without flush()", async () => {
    const { broker, producer } = setUp({ lingerMs: 0 });
    await producer.send("t", { value: "first" }); // metadata and the connection first
    const results = await Promise.all(Array.from({ length: 50 }, (_, index) => producer.send("t", { value: `z${index}` })));
    expect(results.map((result) => result.offset)).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
    expect(producedBatchSizes(broker)).toHaveLength(2);
    expect(storedValues(broker, "t", 0)).toEqual(["first", ...Array.from({ length: 50 }, (_, index) => `z${index}`)]);
  });

  test("one produce request carries the batches of several partitions", async () => {
    const broker = new FakeBroker();
    broker.createTopic("multi", 4);
    const { producer } = setUp({ lingerMs: 60_000 }, broker);
    const sends = [0, 1, 2, 3].map((partition) => producer.send("multi", { value: `p${partition}`, partition }));
    await producer.flush();
    await Promise.all(sends);
    const requests = broker.requestsOf("produce");
    expect(requests).toHaveLength(1);
    expect((requests[0]!.batches as unknown[]).length).toBe(4);
  });
});

describe("Producer partitioning", () => {
  test("keyed records land on murmur2(key) % partitions, in send order", async () => {
    const broker = new FakeBroker();
    broker.createTopic("keyed", 8);
    const { producer } = setUp({}, broker);
    const keys = Array.from({ length: 64 }, (_, index) => `user-${index % 16}`);
    const results = await Promise.all(keys.map((key, index) => producer.send("keyed", { key, value: `${key}:${index}` })));
    results.forEach((result, index) => expect(result.partition).toBe(partitionForKey(keys[index]!, 8)));
    for (let partition = 0; partition < 8; partition++) {
      const expected = keys.map((key, index) => `${key}:${index}`).filter((_, index) => results[index]!.partition === partition);
      expect(storedValues(broker, "keyed", partition)).toEqual(expected);
    }
  });

  test("keyless records stick to one partition per batch and move on when it is sealed", async () => {
    const broker = new FakeBroker();
    broker.createTopic("sticky", 4);
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const { producer } = setUp({ lingerMs: 60_000, batchBytes: 500, random }, broker);
    const sends = Promise.all(Array.from({ length: 100 }, (_, index) => producer.send("sticky", { value: `value-${String(index).padStart(4, "0")}` })));
    await producer.flush();
    const results = await sends;
    const perBatch = broker.requestsOf("produce").flatMap((request) => request.batches as Array<{ partition: number; batch: Uint8Array }>);
    expect(perBatch.length).toBeGreaterThan(2);
    expect(new Set(results.map((result) => result.partition)).size).toBeGreaterThan(1);
    // Each batch is one contiguous run of sends: the partition changes only at batch boundaries.
    const switches = results.filter((result, index) => index > 0 && result.partition !== results[index - 1]!.partition).length;
    expect(switches).toBe(perBatch.length - 1);
  });

  test("an explicit partition wins; one that does not exist is refused", async () => {
    const broker = new FakeBroker();
    broker.createTopic("two", 2);
    const { producer } = setUp({}, broker);
    expect((await producer.send("two", { key: "k", value: "v", partition: 1 })).partition).toBe(1);
    const error = await producer.send("two", { value: "v", partition: 2 }).catch((caught: unknown) => caught);
    expect(codeOf(error)).toBe("UNKNOWN_PARTITION");
  });
});

describe("Producer backpressure", () => {
  test("send() waits once bufferBytesMax is reached, and resumes as answers free the buffer", async () => {
    const held: Array<() => void> = [];
    const broker = new FakeBroker({
      onProduce: (request) => {
        const results = (request.batches as Array<{ topic: string; partition: number; batch: Uint8Array }>).map((entry) => broker.append(entry.topic, entry.partition, entry.batch));
        return new Promise((resolve) => held.push(() => resolve({ results })));
      },
    });
    const { producer } = setUp({ lingerMs: 0, batchBytes: 512, bufferBytesMax: 2048 }, broker);
    const settled: number[] = [];
    const sends = Array.from({ length: 200 }, (_, index) => producer.send("t", { value: "x".repeat(100) }).then((result) => {
      settled.push(index);
      return result;
    }));
    await until(() => held.length > 0);
    // Answers are in order, so nothing can be freed while the first answer is held.
    const bufferedWhileHeld = producer.metrics.bufferedBytes;
    expect(bufferedWhileHeld).toBeLessThanOrEqual(2048 + 200);
    expect(settled).toHaveLength(0);
    let readyResolved = false;
    void producer.ready().then(() => (readyResolved = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(readyResolved).toBe(false);
    expect(held).toHaveLength(1); // one batch in flight per partition
    // Release answers one at a time until every send is done.
    while (settled.length < 200) {
      await until(() => held.length > 0 || settled.length === 200);
      const before = settled.length;
      held.shift()?.();
      await until(() => settled.length > before);
    }
    const results = await Promise.all(sends);
    expect(results.map((result) => result.offset)).toEqual(Array.from({ length: 200 }, (_, index) => index));
    expect(settled).toEqual(Array.from({ length: 200 }, (_, index) => index));
    expect(producer.metrics.bufferedBytes).toBe(0);
    await producer.ready();
  });
});

describe("Producer retries and errors", () => {
  test("a retriable error is retried and order per partition is kept", async () => {
    let failuresLeft = 2;
    const broker = new FakeBroker({
      onProduce: (request: Request) => {
        if (failuresLeft-- > 0) {
          return { results: (request.batches as Array<{ topic: string; partition: number }>).map((entry) => ({ topic: entry.topic, partition: entry.partition, error: { code: "STORAGE_FULL", message: "disk full" } })) };
        }
        return undefined;
      },
    });
    const { producer } = setUp({ lingerMs: 1, batchBytes: 200, retryBackoffMs: 1 }, broker);
    const results = await Promise.all(Array.from({ length: 50 }, (_, index) => producer.send("t", { value: `r${index}` })));
    expect(results.map((result) => result.offset)).toEqual(Array.from({ length: 50 }, (_, index) => index));
    expect(storedValues(broker, "t", 0)).toEqual(Array.from({ length: 50 }, (_, index) => `r${index}`));
    expect(producer.metrics.retries).toBeGreaterThanOrEqual(2);
  });

  test("a lost connection is retried on a new one", async () => {
    let drops = 1;
    const broker: FakeBroker = new FakeBroker({
      onProduce: () => {
        if (drops-- > 0) {
          broker.dropConnections();
          return new Promise(() => undefined);
        }
        return undefined;
      },
    });
    const { producer } = setUp({ lingerMs: 1, retryBackoffMs: 1 }, broker);
    expect((await producer.send("t", { value: "survives" })).offset).toBe(0);
    expect(storedValues(broker, "t", 0)).toEqual(["survives"]);
    expect(producer.metrics.retries).toBe(1);
  });

  test("a non-retriable error rejects the batch's records with the broker's code", async () => {
    const broker = new FakeBroker({
      onProduce: (request) => ({ results: (request.batches as Array<{ topic: string; partition: number }>).map((entry) => ({ ...entry, error: { code: "CORRUPT_BATCH", message: "bad crc" } })) }),
    });
    const { producer } = setUp({ lingerMs: 1 }, broker);
    const error = await producer.send("t", { value: "x" }).catch((caught: unknown) => caught);
    expect(codeOf(error)).toBe("CORRUPT_BATCH");
    expect((error as RunnelError).details?.brokerCode).toBe("CORRUPT_BATCH");
  });

  test("sending to a topic that does not exist fails with UNKNOWN_TOPIC and says what to do", async () => {
    const { producer } = setUp();
    const error = await producer.send("missing", { value: "x" }).catch((caught: unknown) => caught);
    expect(codeOf(error)).toBe("UNKNOWN_TOPIC");
    expect((error as Error).message).toContain("runnel topics create missing");
  });

  test("malformed messages are refused at send() with INVALID_REQUEST", async () => {
    const { producer } = setUp();
    const bad = [{ value: 42 }, { value: "v", key: 7 }, { value: "v", timestamp: -1 }, { value: "v", headers: { h: 1 } }, null];
    for (const message of bad) {
      const error = await producer.send("t", message as never).catch((caught: unknown) => caught);
      expect(codeOf(error)).toBe("INVALID_REQUEST");
    }
  });

  test("durability none gets no answer and resolves with offset -1 once written", async () => {
    const { broker, producer } = setUp({ durability: "none", lingerMs: 1 });
    expect(await producer.send("t", { value: "fire" })).toEqual({ partition: 0, offset: -1 });
    await roundTrip(producer);
    expect(storedValues(broker, "t", 0)).toEqual(["fire"]);
  });

  test("send() after close() fails with CLIENT_CLOSED; close() flushed what came before", async () => {
    const { broker, producer } = setUp({ lingerMs: 60_000 });
    const before = producer.send("t", { value: "before" });
    await producer.close();
    expect((await before).offset).toBe(0);
    expect(storedValues(broker, "t", 0)).toEqual(["before"]);
    expect(codeOf(await producer.send("t", { value: "after" }).catch((caught: unknown) => caught))).toBe("CLIENT_CLOSED");
  });
});

describe("Producer.sendWithCallback", () => {
  test("each callback gets what send() would have resolved with, in send order", async () => {
    const { broker, producer } = setUp({ lingerMs: 1, batchBytes: 300 });
    const seen: Array<{ index: number; offset: number }> = [];
    for (let index = 0; index < 100; index++) {
      producer.sendWithCallback("t", { value: `c${index}` }, (error, result) => {
        expect(error).toBeNull();
        seen.push({ index, offset: result!.offset });
      });
    }
    const mixed = producer.send("t", { value: "promise" });
    await producer.flush();
    expect(seen.map((entry) => entry.index)).toEqual(Array.from({ length: 100 }, (_, index) => index));
    expect(seen.map((entry) => entry.offset)).toEqual(Array.from({ length: 100 }, (_, index) => index));
    expect((await mixed).offset).toBe(100);
    expect(storedValues(broker, "t", 0)).toEqual([...Array.from({ length: 100 }, (_, index) => `c${index}`), "promise"]);
  });

  test("failures reach the callback with the same codes: unknown topic, bad message, closed", async () => {
    const { producer } = setUp({ lingerMs: 1 });
    const codes: string[] = [];
    const record = (error: RunnelError | null, result: unknown) => {
      expect(result).toBeNull();
      codes.push(codeOf(error));
    };
    producer.sendWithCallback("missing", { value: "x" }, record);
    producer.sendWithCallback("t", { value: 42 } as never, record);
    await until(() => codes.length === 2);
    await producer.close();
    producer.sendWithCallback("t", { value: "late" }, record);
    expect(codes.sort()).toEqual(["CLIENT_CLOSED", "INVALID_REQUEST", "UNKNOWN_TOPIC"]);
  });

  test("says whether it is done with the message: a message reused after true is stored as it was sent", async () => {
    const { broker, producer } = setUp({ lingerMs: 1 });
    const results = new Set<unknown>();
    const offsets: number[] = [];
    const onDone = (error: RunnelError | null, result: { offset: number } | null): void => {
      expect(error).toBeNull();
      results.add(result);
      offsets.push(result!.offset);
    };
    // Before the producer knows the topic, the record waits to be read later: false.
    expect(producer.sendWithCallback("t", { value: "first" }, onDone)).toBe(false);
    await producer.flush();
    // Now each record is copied as it is sent: one message and one buffer serve them all.
    const value = new Uint8Array(3);
    const message = { value };
    for (let index = 0; index < 50; index++) {
      value.set(new TextEncoder().encode(`v${String(index).padStart(2, "0")}`));
      expect(producer.sendWithCallback("t", message, onDone)).toBe(true);
    }
    await producer.flush();
    expect(storedValues(broker, "t", 0)).toEqual(["first", ...Array.from({ length: 50 }, (_, index) => `v${String(index).padStart(2, "0")}`)]);
    expect(offsets).toEqual(Array.from({ length: 51 }, (_, index) => index));
    // One result object, refilled per callback: nothing allocated per record.
    expect(results.size).toBe(1);
  });

  test("returns false while the buffer is full, and the waiting message is read later, unchanged", async () => {
    const { broker, producer } = setUp({ lingerMs: 5, bufferBytesMax: 1024 });
    await producer.send("t", { value: "warm" }); // the topic is known
    const taken: boolean[] = [];
    const errors: string[] = [];
    for (let index = 0; index < 40; index++) taken.push(producer.sendWithCallback("t", { value: `w${index}`.padEnd(64, ".") }, (error) => error !== null && errors.push(codeOf(error))));
    expect(taken[0]).toBe(true);
    expect(taken.includes(false)).toBe(true);
    // Once false, every later one waits behind it (order holds).
    expect(taken.slice(taken.indexOf(false)).every((value) => !value)).toBe(true);
    await producer.flush();
    expect(errors).toEqual([]);
    expect(storedValues(broker, "t", 0)).toEqual(["warm", ...Array.from({ length: 40 }, (_, index) => `w${index}`.padEnd(64, "."))]);
  });

  test("a callback that throws does not stop the other records of its batch from being reported", async () => {
    const thrown: unknown[] = [];
    const { producer } = setUp({ lingerMs: 60_000, onCallbackError: (error) => thrown.push(error) });
    const offsets: number[] = [];
    producer.sendWithCallback("t", { value: "a" }, () => {
      throw new Error("callback bug");
    });
    producer.sendWithCallback("t", { value: "b" }, (_error, result) => offsets.push(result!.offset));
    await producer.flush();
    expect(offsets).toEqual([1]);
    expect(thrown.map((error) => (error as Error).message)).toEqual(["callback bug"]);
  });
});

