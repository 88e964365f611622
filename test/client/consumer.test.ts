import { afterEach, describe, expect, test } from "bun:test";
import { RunnelError } from "../../src/errors.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { Consumer, type ConsumerOptions, type Message } from "../../src/client/consumer.ts";
import { FakeBroker, type FakeBrokerOptions } from "./fake-broker.ts";
import { until } from "../support/wait.ts";

const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fake broker with topic "t": `batches` batches of `perBatch` records "v<offset>", timestamps 1000 + offset. */
function seeded(batches: number, perBatch: number, partitions = 1, options: FakeBrokerOptions = {}): FakeBroker {
  const broker = new FakeBroker(options);
  cleanups.push(() => broker.stop());
  broker.createTopic("t", partitions);
  for (let partition = 0; partition < partitions; partition++) {
    for (let batch = 0; batch < batches; batch++) {
      const records = Array.from({ length: perBatch }, (_, index) => {
        const offset = batch * perBatch + index;
        return { key: `k${offset}`, value: `v${offset}`, timestamp: 1000 + offset, headers: { p: String(partition) } };
      });
      broker.append("t", partition, encodeBatch(records));
    }
  }
  return broker;
}

function consumerFor(broker: FakeBroker, options: ConsumerOptions = {}): Consumer {
  const consumer = new Consumer({ broker: broker.address, maxWaitMs: 50, ...options });
  cleanups.push(() => consumer.close().catch(() => undefined));
  return consumer;
}

async function take(consumer: Consumer, count: number): Promise<Message[]> {
  const messages: Message[] = [];
  if (count === 0) return messages;
  for await (const message of consumer) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

const values = (messages: Message[]) => messages.map((message) => text(message.value));


describe("Consumer start positions", () => {
  test("from earliest: every record, in order, with key, value, timestamp and headers", async () => {
    const broker = seeded(3, 4);
    const messages = await take(consumerFor(broker, { from: "earliest" }).assign([{ topic: "t", partition: 0 }]), 12);
    expect(messages.map((message) => message.offset)).toEqual(Array.from({ length: 12 }, (_, index) => index));
    expect(values(messages)).toEqual(Array.from({ length: 12 }, (_, index) => `v${index}`));
    expect(text(messages[5]!.key)).toBe("k5");
    expect(messages[5]!.timestamp).toBe(1005);
    expect(text(messages[5]!.headers!.p!)).toBe("0");
    expect(messages[5]).toMatchObject({ topic: "t", partition: 0 });
  });

  test("from an offset inside a batch: records below it in that batch are skipped", async () => {
    const broker = seeded(3, 4);
    const messages = await take(consumerFor(broker, { from: { offset: 6 } }).assign([{ topic: "t", partition: 0 }]), 6);
    expect(messages.map((message) => message.offset)).toEqual([6, 7, 8, 9, 10, 11]);
  });

  test("from a timestamp: starts at the first record at or after it", async () => {
    const broker = seeded(3, 4);
    const messages = await take(consumerFor(broker, { from: { timestamp: 1007 } }).assign([{ topic: "t", partition: 0 }]), 5);
    expect(messages.map((message) => message.offset)).toEqual([7, 8, 9, 10, 11]);
  });

  test("from latest: only records produced after the start", async () => {
    const broker = seeded(2, 3);
    const consumer = consumerFor(broker, { from: "latest" }).assign([{ topic: "t", partition: 0 }]);
    const first = consumer.next();
    await until(() => broker.requestsOf("fetch").length > 0);
    broker.append("t", 0, encodeBatch([{ value: "new" }]));
    const result = await first;
    expect(result.done).toBe(false);
    expect(result.value).toMatchObject({ offset: 6 });
    expect(text((result.value as Message).value)).toBe("new");
  });

  test("subscribe(topic) reads every partition of the topic", async () => {
    const broker = seeded(1, 3, 3);
    const messages = await take(consumerFor(broker).subscribe("t"), 9);
    for (let partition = 0; partition < 3; partition++) {
      const mine = messages.filter((message) => message.partition === partition);
      expect(values(mine)).toEqual(["v0", "v1", "v2"]);
      expect(mine.every((message) => text(message.headers!.p!) === String(partition))).toBe(true);
    }
  });

  test("a subscription picks up partitions added later, from their first record", async () => {
    const broker = seeded(1, 1);
    const consumer = consumerFor(broker, { metadataMaxAgeMs: 0 }).subscribe("t");
    expect(values(await take(consumer, 1))).toEqual(["v0"]);
    broker.topics.get("t")!.push([]);
    broker.append("t", 1, encodeBatch([{ value: "in the new partition" }]));
    const [message] = await take(consumer, 1);
    expect(message).toMatchObject({ partition: 1, offset: 0 });
    expect(text(message!.value)).toBe("in the new partition");
  });

  test("subscribing to a topic that does not exist fails with UNKNOWN_TOPIC", async () => {
    const broker = seeded(1, 1);
    const error = await consumerFor(broker).subscribe("nope").next().catch((caught: unknown) => caught);
    expect((error as RunnelError).code).toBe("UNKNOWN_TOPIC");
  });
});

describe("Consumer prefetch and long polling", () => {
  test("the next fetch is in flight before the caller asks for the next message", async () => {
    const broker = seeded(1, 2);
    const consumer = consumerFor(broker).assign([{ topic: "t", partition: 0 }]);
    const first = await consumer.next();
    expect(first.value).toMatchObject({ offset: 0 });
    // The caller is "working" on message 0 and has not called next(): the broker still gets fetch #2, from offset 2.
    await until(() => broker.requestsOf("fetch").length === 2);
    const second = broker.requestsOf("fetch")[1]!;
    expect((second.partitions as Array<{ offset: number }>)[0]!.offset).toBe(2);
  });

  test("when caught up it long-polls and wakes for new records", async () => {
    const broker = seeded(1, 1);
    const consumer = consumerFor(broker, { maxWaitMs: 10_000 }).assign([{ topic: "t", partition: 0 }]);
    expect(values(await take(consumer, 1))).toEqual(["v0"]);
    const next = consumer.next();
    await until(() => broker.requestsOf("fetch").length >= 2);
    expect((broker.requestsOf("fetch")[1]!.maxWaitMs as number)).toBe(10_000);
    broker.append("t", 0, encodeBatch([{ value: "woken" }]));
    expect(text(((await next).value as Message).value)).toBe("woken");
  });

  test("a lost connection is retried and consumption continues where it was", async () => {
    const broker = seeded(1, 3);
    const consumer = consumerFor(broker, { retryBackoffMs: 1 }).assign([{ topic: "t", partition: 0 }]);
    expect(values(await take(consumer, 3))).toEqual(["v0", "v1", "v2"]);
    broker.dropConnections();
    broker.append("t", 0, encodeBatch([{ value: "after" }]));
    expect(values(await take(consumer, 1))).toEqual(["after"]);
  });
});

describe("Consumer commits", () => {
  test("commit() then a new consumer of the group resumes after the committed message", async () => {
    const broker = seeded(2, 5);
    const first = consumerFor(broker, { groupId: "g", autoCommit: false }).assign([{ topic: "t", partition: 0 }]);
    const read = await take(first, 4);
    await first.commit();
    expect(broker.commits.get("g/t/0")).toBe(4);
    await first.close();
    expect(read.map((message) => message.offset)).toEqual([0, 1, 2, 3]);
    const second = consumerFor(broker, { groupId: "g" }).assign([{ topic: "t", partition: 0 }]);
    expect((await take(second, 6)).map((message) => message.offset)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  test("auto-commit on close commits processed messages only", async () => {
    const broker = seeded(1, 5);
    const consumer = consumerFor(broker, { groupId: "auto" }).assign([{ topic: "t", partition: 0 }]);
    await consumer.next(); // 0: handed out
    await consumer.next(); // 1: handed out, so 0 is processed
    await consumer.close();
    expect(broker.commits.get("auto/t/0")).toBe(1);
  });

  test("commit() without a groupId is refused", async () => {
    const broker = seeded(1, 1);
    const error = await consumerFor(broker).assign([{ topic: "t", partition: 0 }]).commit().catch((caught: unknown) => caught);
    expect((error as RunnelError).code).toBe("INVALID_CONFIG");
  });
});

describe("Consumer out of range and corruption", () => {
  test("offsetReset earliest moves an out-of-range position to the log start", async () => {
    const broker = seeded(1, 3);
    const messages = await take(consumerFor(broker, { from: { offset: 50 }, offsetReset: "earliest" }).assign([{ topic: "t", partition: 0 }]), 3);
    expect(messages.map((message) => message.offset)).toEqual([0, 1, 2]);
  });

  test("offsetReset error throws OFFSET_OUT_OF_RANGE with the partition's bounds", async () => {
    const broker = seeded(1, 3);
    const consumer = consumerFor(broker, { from: { offset: 50 }, offsetReset: "error" }).assign([{ topic: "t", partition: 0 }]);
    const error = (await consumer.next().catch((caught: unknown) => caught)) as RunnelError;
    expect(error.code).toBe("OFFSET_OUT_OF_RANGE");
    expect(error.details).toMatchObject({ offset: 50, nextOffset: 3 });
  });

  test("an out-of-range answer without the log's bounds is reset by an offset lookup, and the other partitions in that answer are still delivered", async () => {
    let stripped = 0;
    // The first out-of-range answer loses its hints, so the consumer must look the start up.
    const onFetch: FakeBrokerOptions["onFetch"] = (answer) => {
      const partitions = answer.partitions as Array<Record<string, unknown>>;
      for (const entry of partitions) {
        if (entry.error === undefined || stripped > 0) continue;
        stripped += 1;
        delete entry.logStartOffset;
        delete entry.nextOffset;
      }
      return answer;
    };
    const broker = seeded(2, 3, 2, { onFetch });
    const consumer = consumerFor(broker, { offsetReset: "earliest" }).assign([
      { topic: "t", partition: 0, from: { offset: 50 } },
      { topic: "t", partition: 1, from: { offset: 2 } },
    ]);
    const messages = await take(consumer, 6 + 4);
    expect(stripped).toBe(1);
    expect(broker.requestsOf("listOffsets").length).toBeGreaterThan(0);
    const offsetsOf = (partition: number) => messages.filter((message) => message.partition === partition).map((message) => message.offset);
    expect(offsetsOf(0)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(offsetsOf(1)).toEqual([2, 3, 4, 5]);
  });

  test("a batch whose checksum does not match is refused with CORRUPT_BATCH", async () => {
    const broker = seeded(1, 3);
    const stored = broker.batches("t", 0)[0]!;
    stored.bytes[stored.bytes.length - 1]! ^= 0xff;
    const error = (await consumerFor(broker).assign([{ topic: "t", partition: 0 }]).next().catch((caught: unknown) => caught)) as RunnelError;
    expect(error.code).toBe("CORRUPT_BATCH");
  });
});
