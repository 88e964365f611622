/**
 * Several batches in flight per partition: the producer pipelines idempotent batches, and a
 * failure in the middle of the pipeline never reorders, loses or duplicates records. The fake
 * broker here checks sequences with the broker's own table (log/producer-state.ts), so it
 * refuses a gap exactly as the real one does, and it can hold, fail or drop answers on demand.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { RunnelError } from "../../src/errors.ts";
import { decodeRecords, readBatchHeader, verifyBatch } from "../../src/format/record-batch.ts";
import { Producer, type ProducerOptions, type SendResult } from "../../src/client/producer.ts";
import { ProducerStateTable } from "../../src/log/producer-state.ts";
import { FakeBroker, type Request } from "./fake-broker.ts";
import { until } from "../support/wait.ts";

type Entry = { topic: string; partition: number; batch: Uint8Array };
type Answer = Record<string, unknown>;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * A fake broker with idempotence: initProducer hands out id 7 and a new epoch each time, and
 * every produce batch goes through a ProducerStateTable. `decide` may fail a batch (by the
 * order of its arrival, retries included) before it is looked at; answers can be held.
 */
class IdempotentFake {
  readonly broker: FakeBroker;
  readonly table = new ProducerStateTable();
  epoch = 0;
  arrivals = 0;
  holding = false;
  readonly held: Array<() => void> = [];
  /** Batches received and not yet answered (one request may carry several of a partition). */
  unanswered = 0;
  unansweredMax = 0;
  readonly sequencesSeen: Array<{ epoch: number; baseSequence: number }> = [];

  constructor(private readonly decide: (arrival: number) => string | null = () => null) {
    this.broker = new FakeBroker({
      onProduce: (request) => this.produce(request),
      onOther: (request) => (request.op === "initProducer" ? { producerId: 7, producerEpoch: this.epoch++ } : undefined),
    });
    this.broker.createTopic("t", 1);
    cleanups.push(() => this.broker.stop());
  }

  private produce(request: Request): Answer | Promise<Answer> {
    const entries = request.batches as Entry[];
    const results = entries.map((entry) => this.appendOne(entry));
    this.unanswered += entries.length;
    this.unansweredMax = Math.max(this.unansweredMax, this.unanswered);
    const answer = (): Answer => {
      this.unanswered -= entries.length;
      return { results };
    };
    if (!this.holding) return answer();
    return new Promise((resolve) => this.held.push(() => resolve(answer())));
  }

  private appendOne(entry: Entry): Answer {
    const { topic, partition } = entry;
    const header = readBatchHeader(entry.batch, 0);
    this.sequencesSeen.push({ epoch: header.producerEpoch, baseSequence: header.baseSequence });
    const failure = this.decide(this.arrivals++);
    if (failure !== null) return { topic, partition, error: { code: failure, message: `injected ${failure}` } };
    if (header.producerId < 0) return this.broker.append(topic, partition, entry.batch);
    try {
      const duplicate = this.table.check(header, `${topic}/${partition}`);
      if (duplicate !== null) return { topic, partition, baseOffset: duplicate.baseOffset, lastOffset: duplicate.lastOffset };
    } catch (error) {
      const runnel = error as RunnelError;
      return { topic, partition, error: { code: runnel.code, message: runnel.message } };
    }
    const stored = this.broker.append(topic, partition, entry.batch);
    this.table.record(header.producerId, header.producerEpoch, header.baseSequence, header.recordCount, stored.baseOffset as number);
    return stored;
  }

  values(): string[] {
    return this.broker.batches("t", 0).flatMap((batch) => decodeRecords(batch.bytes, verifyBatch(batch.bytes)).map((record) => new TextDecoder().decode(record.value!)));
  }

  producer(options: ProducerOptions = {}): Producer {
    const producer = new Producer({ broker: this.broker.address, lingerMs: 0, batchBytes: 200, retryBackoffMs: 1, ...options });
    cleanups.push(() => producer.close().catch(() => undefined));
    // Runs first: a failed test must not leave close() waiting on held answers.
    cleanups.push(() => {
      this.holding = false;
      for (const release of this.held.splice(0)) release();
    });
    return producer;
  }

  /** Releases held answers one at a time until `done()`; bounded. */
  async release(done: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error("sends did not settle in time");
      const next = this.held.shift();
      if (next) next();
      else await Bun.sleep(1);
    }
  }
}

const values = (count: number) => Array.from({ length: count }, (_, index) => `value-${String(index).padStart(4, "0")}`);

/** Sends in waves of 5 with a turn of the event loop between, so batches go out in several requests. */
async function sendAll(producer: Producer, messages: string[]): Promise<{ promises: Array<Promise<SendResult | RunnelError>>; settled: () => number }> {
  let settled = 0;
  const promises: Array<Promise<SendResult | RunnelError>> = [];
  for (const [index, value] of messages.entries()) {
    promises.push(producer.send("t", { value }).then(
      (result) => { settled += 1; return result; },
      (error: unknown) => { settled += 1; return error as RunnelError; },
    ));
    if (index % 5 === 4) await new Promise((resolve) => setImmediate(resolve));
  }
  return { promises, settled: () => settled };
}


describe("Producer with several batches in flight", () => {
  test("keeps up to maxInFlight batches of one partition in flight, and no more", async () => {
    const fake = new IdempotentFake();
    const producer = fake.producer({ maxInFlight: 3 });
    const messages = values(200);
    // Metadata and the identity first, so the later sends go out as they come.
    await producer.send("t", { value: messages[0]! });
    fake.holding = true;
    const { promises, settled } = await sendAll(producer, messages.slice(1));
    await until(() => fake.unanswered === 3);
    expect(fake.held.length).toBeGreaterThan(1); // in more than one request
    await fake.release(() => settled() === messages.length - 1);
    const results = (await Promise.all(promises)) as SendResult[];
    expect(results.map((result) => result.offset)).toEqual(messages.slice(1).map((_, index) => index + 1));
    expect(fake.unansweredMax).toBe(3);
    expect(fake.values()).toEqual(messages);
  });

  test("a batch whose linger is over keeps taking records while its partition has no room in flight", async () => {
    const fake = new IdempotentFake();
    const producer = fake.producer({ maxInFlight: 1, batchBytes: 64 * 1024 });
    await producer.send("t", { value: "first" });
    fake.holding = true;
    const held = producer.send("t", { value: "held" });
    await until(() => fake.unanswered === 1);
    // Many turns of the event loop, each past lingerMs 0: with no room, they all join one batch.
    const { promises, settled } = await sendAll(producer, values(50));
    await fake.release(() => settled() === 50);
    await held;
    await Promise.all(promises);
    const batchesPerRequest = fake.broker.requestsOf("produce").map((request) => (request.batches as unknown[]).length);
    expect(batchesPerRequest).toEqual([1, 1, 1]);
    expect(fake.values()).toEqual(["first", "held", ...values(50)]);
  });

  test("without idempotence only one batch is in flight", async () => {
    const fake = new IdempotentFake();
    fake.holding = true;
    const producer = fake.producer({ idempotent: false });
    const messages = values(100);
    const { promises, settled } = await sendAll(producer, messages);
    await until(() => fake.unanswered === 1);
    await fake.release(() => settled() === messages.length);
    await Promise.all(promises);
    expect(fake.unansweredMax).toBe(1);
    expect(fake.values()).toEqual(messages);
  });

  test("a retriable failure in the middle is retried first and the batches refused behind it follow, in order", async () => {
    // The second batch to arrive fails; the ones sent behind it are refused as out of order.
    const fake = new IdempotentFake((arrival) => (arrival === 1 ? "STORAGE_FULL" : null));
    fake.holding = true;
    const producer = fake.producer();
    const messages = values(300);
    const { promises, settled } = await sendAll(producer, messages);
    await until(() => fake.unanswered === 5);
    await fake.release(() => settled() === messages.length);
    const results = (await Promise.all(promises)) as SendResult[];
    expect(results.every((result) => !(result instanceof Error))).toBe(true);
    expect(results.map((result) => result.offset)).toEqual(messages.map((_, index) => index));
    expect(fake.values()).toEqual(messages);
    expect(producer.metrics.retries).toBeGreaterThanOrEqual(4); // the failed batch and the 3 refused behind it
    expect(fake.sequencesSeen.every((seen) => seen.epoch === 0)).toBe(true);
  });

  test("a lost connection with several batches in flight stores each batch once, in order", async () => {
    const fake = new IdempotentFake();
    fake.holding = true;
    const producer = fake.producer();
    const messages = values(300);
    const { promises, settled } = await sendAll(producer, messages);
    await until(() => fake.unanswered === 5);
    // Every held batch is already stored; the answers are lost with the connection.
    fake.held.length = 0;
    fake.unanswered = 0;
    fake.holding = false;
    fake.broker.dropConnections();
    await fake.release(() => settled() === messages.length);
    const results = (await Promise.all(promises)) as SendResult[];
    expect(results.map((result) => result.offset)).toEqual(messages.map((_, index) => index));
    expect(fake.values()).toEqual(messages);
    expect(producer.metrics.retries).toBeGreaterThanOrEqual(5);
  });

  test("a batch that fails for good in the middle loses only its own records; the ones behind it go under the next epoch", async () => {
    const fake = new IdempotentFake((arrival) => (arrival === 1 ? "CORRUPT_BATCH" : null));
    fake.holding = true;
    const producer = fake.producer();
    const messages = values(300);
    const { promises, settled } = await sendAll(producer, messages);
    await until(() => fake.unanswered === 5);
    await fake.release(() => settled() === messages.length);
    const outcomes = await Promise.all(promises);
    const failed = outcomes.flatMap((outcome, index) => (outcome instanceof RunnelError ? [index] : []));
    expect(failed.length).toBeGreaterThan(0);
    expect(outcomes.filter((outcome) => outcome instanceof RunnelError).every((error) => (error as RunnelError).code === "CORRUPT_BATCH")).toBe(true);
    // The failed records are one contiguous run (one batch), and everything else is stored once, in order.
    expect(failed[failed.length - 1]! - failed[0]! + 1).toBe(failed.length);
    expect(fake.values()).toEqual(messages.filter((_, index) => !failed.includes(index)));
    const stored = outcomes.filter((outcome): outcome is SendResult => !(outcome instanceof RunnelError));
    expect(stored.map((result) => result.offset)).toEqual(stored.map((_, index) => index));
    expect(fake.epoch).toBe(2); // a second initProducer: the epoch was bumped
    expect(fake.sequencesSeen.some((seen) => seen.epoch === 1 && seen.baseSequence === 0)).toBe(true);
  });
});
