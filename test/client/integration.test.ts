/**
 * The client library against the real broker (`runnel serve` as a child process).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import { Admin, Consumer, Producer, RunnelError, type Message, type StartPosition } from "../../src/client/index.ts";
import { type RealBroker, startRealBroker } from "./real-broker.ts";
import { until } from "../support/wait.ts";

const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
let broker: RealBroker;
let admin: Admin;
const closers: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  broker = await startRealBroker();
  admin = new Admin({ broker: broker.address });
});

afterEach(async () => {
  for (const client of closers.splice(0).reverse()) await client.close().catch(() => undefined);
});

afterAll(async () => {
  await admin.close();
  expect(await broker.stop()).toBe(0);
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

function track<Client extends { close(): Promise<void> }>(client: Client): Client {
  closers.push(client);
  return client;
}

async function take(consumer: Consumer, count: number): Promise<Message[]> {
  const messages: Message[] = [];
  for await (const message of consumer) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

describe("Admin against the real broker", () => {
  test("creates, lists, describes and deletes a topic", async () => {
    const created = await admin.createTopic("admin-t", { partitions: 3, config: { "retention.ms": 60_000 } });
    expect(created.partitions).toHaveLength(3);
    expect(created.config["retention.ms"]).toBe(60_000);
    expect((await admin.listTopics()).map((topic) => topic.name)).toContain("admin-t");
    expect((await admin.describeTopic("admin-t")).partitions.map((partition) => partition.nextOffset)).toEqual([0, 0, 0]);
    await admin.deleteTopic("admin-t");
    const error = (await admin.describeTopic("admin-t").catch((caught: unknown) => caught)) as RunnelError;
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.code).toBe("UNKNOWN_TOPIC");
    expect(error.details?.brokerCode).toBe("UNKNOWN_TOPIC");
  });

  test("broker errors keep the broker's code", async () => {
    await admin.createTopic("dup");
    expect(((await admin.createTopic("dup").catch((caught: unknown) => caught)) as RunnelError).code).toBe("TOPIC_EXISTS");
    expect(((await admin.createTopic("bad name!").catch((caught: unknown) => caught)) as RunnelError).code).toBe("INVALID_TOPIC_NAME");
  });
});

describe("Producer and Consumer against the real broker", () => {
  test("keyed messages round-trip in order per key across partitions", async () => {
    await admin.createTopic("orders", { partitions: 4 });
    const producer = track(new Producer({ broker: broker.address }));
    const sends = [];
    for (let index = 0; index < 3000; index++) sends.push(producer.send("orders", { key: `customer-${index % 37}`, value: `order-${index}`, headers: { n: String(index) } }));
    const results = await Promise.all(sends);
    const consumer = track(new Consumer({ broker: broker.address, maxWaitMs: 100 }).subscribe("orders"));
    const messages = await take(consumer, 3000);
    const byKey = new Map<string, number[]>();
    for (const message of messages) {
      const list = byKey.get(text(message.key)!) ?? [];
      list.push(Number(text(message.headers!.n!)));
      byKey.set(text(message.key)!, list);
    }
    expect(byKey.size).toBe(37);
    for (const [key, indexes] of byKey) {
      expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
      expect(indexes.every((index) => `customer-${index % 37}` === key)).toBe(true);
    }
    // Every acknowledged (partition, offset) is where the consumer found the message.
    const found = new Map(messages.map((message) => [`${message.partition}/${message.offset}`, text(message.value)]));
    results.forEach((result, index) => expect(found.get(`${result.partition}/${result.offset}`)).toBe(`order-${index}`));
  });

  test("consumer starts from earliest, latest, an offset and a timestamp", async () => {
    await admin.createTopic("positions");
    const producer = track(new Producer({ broker: broker.address, lingerMs: 0 }));
    for (let index = 0; index < 10; index++) await producer.send("positions", { value: `p${index}`, timestamp: 1_000_000 + index * 10 });
    const at = async (from: StartPosition, count: number) =>
      (await take(track(new Consumer({ broker: broker.address, from, maxWaitMs: 100 }).assign([{ topic: "positions", partition: 0 }])), count)).map((message) => message.offset);
    expect(await at("earliest", 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await at({ offset: 7 }, 3)).toEqual([7, 8, 9]);
    expect(await at({ timestamp: 1_000_045 }, 4)).toEqual([5, 6, 7, 8]);
    const latest = track(new Consumer({ broker: broker.address, from: "latest", maxWaitMs: 5_000 }).assign([{ topic: "positions", partition: 0 }]));
    const next = latest.next();
    await until(() => latest.positions()[0]!.offset === 10);
    await producer.send("positions", { value: "late" });
    const message = (await next).value as Message;
    expect(message.offset).toBe(10);
    expect(text(message.value)).toBe("late");
  });

  test("a group commits, and a new consumer resumes after the last committed message", async () => {
    await admin.createTopic("resume", { partitions: 2 });
    const producer = track(new Producer({ broker: broker.address }));
    await Promise.all(Array.from({ length: 40 }, (_, index) => producer.send("resume", { value: `r${index}`, partition: index % 2 })));
    const first = new Consumer({ broker: broker.address, groupId: "g1", maxWaitMs: 100 }).subscribe("resume");
    const seen = await take(first, 15);
    await first.commit();
    await first.close();
    const second = track(new Consumer({ broker: broker.address, groupId: "g1", maxWaitMs: 100 }).subscribe("resume"));
    const rest = await take(second, 25);
    const all = [...seen, ...rest].map((message) => `${message.partition}/${message.offset}`);
    expect(new Set(all).size).toBe(40);
    const committed = await admin.committedOffsets("g1", [{ topic: "resume", partition: 0 }, { topic: "resume", partition: 1 }]);
    const expected = [0, 1].map((partition) => {
      const mine = seen.filter((message) => message.partition === partition);
      return mine.length === 0 ? -1 : mine[mine.length - 1]!.offset + 1;
    });
    expect(committed.map((entry) => entry.offset)).toEqual(expected);
  });

  test("listOffsets reports earliest, latest and a timestamp's offset", async () => {
    await admin.createTopic("offsets");
    const producer = track(new Producer({ broker: broker.address, lingerMs: 0 }));
    for (let index = 0; index < 5; index++) await producer.send("offsets", { value: "x", timestamp: 5_000 + index });
    const lookups = await admin.listOffsets([
      { topic: "offsets", partition: 0, at: "earliest" },
      { topic: "offsets", partition: 0, at: "latest" },
      { topic: "offsets", partition: 0, at: 5_003 },
    ]);
    expect(lookups).toEqual([0, 5, 3]);
  });

  test("an unreachable broker fails with BROKER_UNAVAILABLE naming host:port", async () => {
    const lonely = track(new Admin({ broker: "127.0.0.1:1", connectTimeoutMs: 300 }));
    const error = (await lonely.listTopics().catch((caught: unknown) => caught)) as RunnelError;
    expect(error.code).toBe("BROKER_UNAVAILABLE");
    expect(error.message).toContain("127.0.0.1:1");
    expect(error.message).toContain("runnel serve");
  });
});

