/**
 * @platformatic/kafka 2.12.1 (npm devDependency), unmodified, against the Kafka listener. It
 * uses the highest version both sides serve (its base client walks down from our ApiVersions
 * maximum), so against our ranges it speaks the flexible versions throughout (Produce v9, Fetch v12, Metadata v12, ListOffsets v7, JoinGroup v7,
 * SyncGroup v5, OffsetCommit v8, OffsetFetch v7, CreateTopics v7...): tagged fields and compact
 * strings everywhere. Produce with acks 0, 1 and all and idempotently; consume from the earliest,
 * the latest, an offset and a timestamp; a group of two rebalancing when one joins and one leaves;
 * commit and resume; admin create and delete topics, list and describe groups.
 *
 * Needs the @platformatic/kafka package (`npm install`); skipped loudly outside CI when missing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type * as Platformatic from "@platformatic/kafka";
import { scanBatches } from "../../../src/format/record-batch.ts";
import { startTestBroker, type TestBroker } from "../../server/helpers.ts";

type Module = typeof Platformatic;
type StringConsumer = Platformatic.Consumer<string, string, string, string>;
type StringMessage = Platformatic.Message<string, string, string, string>;
const PACKAGE = "@platformatic/kafka";
const WAIT_MS_MAX = 20_000;

async function loadPlatformatic(): Promise<Module | null> {
  try {
    // A name in a variable, as for kafkajs: a missing package skips the tests instead of failing the import.
    return (await import(PACKAGE)) as Module;
  } catch {
    if (process.env.CI === "true") throw new Error(`${PACKAGE} is required in CI (npm install)`);
    console.warn(`skipping the @platformatic/kafka tests: the package is not installed (npm install)`);
    return null;
  }
}

const kafka = await loadPlatformatic();
let test_: TestBroker;

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** Collects "partition:offset value" of every message the stream hands out, as they come (flowing mode). */
function collect(stream: Platformatic.MessagesStream<string, string, string, string>): { lines: string[]; messages: StringMessage[] } {
  const collected = { lines: [] as string[], messages: [] as StringMessage[] };
  stream.on("data", (message: StringMessage) => {
    collected.lines.push(`${message.partition}:${message.offset} ${message.value}`);
    collected.messages.push(message);
  });
  return collected;
}

/** The first `count` lines a stream hands out. */
async function take(stream: Platformatic.MessagesStream<string, string, string, string>, count: number): Promise<string[]> {
  const collected = collect(stream);
  await until(() => collected.lines.length >= count, `${count} messages`);
  return collected.lines.slice(0, count);
}

/** The producer id of every batch stored in partition 0 of `topic` from `offset` on. */
function storedProducerIds(topic: string, offset: number): number[] {
  const partition = test_.broker.context.log.partition(topic, 0);
  const slice = partition.read(offset, 1 << 20);
  if (slice === null) return [];
  try {
    return [...scanBatches(partition.readBytes(slice))].map((span) => span.header.producerId);
  } finally {
    slice.release();
  }
}

function assigned(consumer: StringConsumer): string[] {
  return (consumer.assignments ?? []).flatMap((assignment) => assignment.partitions.map((partition) => `${assignment.topic}/${partition}`)).sort();
}

describe.skipIf(kafka === null)("@platformatic/kafka against the Kafka listener", () => {
  const { Admin, Consumer, Producer, stringDeserializers, stringSerializers } = kafka as Module;
  let brokers: string[];
  const closers: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    test_ = await startTestBroker();
    brokers = [`127.0.0.1:${test_.broker.kafkaPort}`];
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await test_[Symbol.asyncDispose]();
  });

  function producer(idempotent: boolean) {
    const made = new Producer({ clientId: "plt-producer", bootstrapBrokers: brokers, serializers: stringSerializers, idempotent, retries: 2 });
    closers.push(() => made.close());
    return made;
  }

  function consumer(groupId: string): StringConsumer {
    const made = new Consumer({ clientId: "plt-consumer", groupId, bootstrapBrokers: brokers, deserializers: stringDeserializers, sessionTimeout: 6_000, heartbeatInterval: 200, maxWaitTime: 200, retries: 2 });
    closers.push(() => made.close(true));
    return made;
  }

  test("admin creates a topic; produces with acks 0, 1 and all and idempotently; consumes every message from the earliest offset", async () => {
    const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers: brokers });
    closers.push(() => admin.close());
    const created = await admin.createTopics({ topics: ["plt"], partitions: 2, replicas: 1 });
    expect(created.map((topic) => [topic.name, topic.partitions])).toEqual([["plt", 2]]);
    expect(test_.broker.context.log.hasTopic("plt")).toBe(true);
    const plain = producer(false);
    for (const acks of [0, 1, -1]) {
      const sent = await plain.send({ acks, messages: [0, 1].map((partition) => ({ topic: "plt", key: `k${partition}`, value: `acks=${acks}`, partition })) });
      expect((sent.offsets ?? []).map((each) => `${each.partition}:${each.offset}`)).toEqual(acks === 0 ? [] : [`0:${acks === 1 ? 1 : 2}`, `1:${acks === 1 ? 1 : 2}`]);
    }
    const idempotent = await producer(true).send({ messages: [{ topic: "plt", key: "i", value: "idempotent", partition: 0 }] });
    expect(idempotent.offsets?.map((each) => `${each.partition}:${each.offset}`)).toEqual(["0:3"]);
    const producerIds = storedProducerIds("plt", 3);
    expect(producerIds.length).toBe(1);
    expect(producerIds.every((producerId) => test_.broker.context.producerIds.isIssued(producerId))).toBe(true);
    const reader = consumer("plt-earliest");
    const stream = await reader.consume({ topics: ["plt"], mode: "earliest", autocommit: false });
    closers.push(() => stream.close());
    expect((await take(stream, 7)).sort()).toEqual(["0:0 acks=0", "0:1 acks=1", "0:2 acks=-1", "0:3 idempotent", "1:0 acks=0", "1:1 acks=1", "1:2 acks=-1"]);
  });

  test("consumes from an offset (manual mode) and from a timestamp looked up with listOffsets", async () => {
    const reader = consumer("plt-manual");
    const fromOffset = await reader.consume({ topics: ["plt"], mode: "manual", offsets: [{ topic: "plt", partition: 0, offset: 2n }], autocommit: false });
    closers.push(() => fromOffset.close());
    expect(await take(fromOffset, 2)).toEqual(["0:2 acks=-1", "0:3 idempotent"]);
    await fromOffset.close();
    const beforeMs = Date.now();
    await Bun.sleep(5); // the next batch's timestamps must be later than beforeMs
    await producer(false).send({ acks: -1, messages: [{ topic: "plt", value: "late", partition: 0 }] });
    const found = await reader.listOffsets({ topics: ["plt"], partitions: { plt: [0] }, timestamp: BigInt(beforeMs + 1) });
    expect(found.get("plt")?.[0]).toBe(4n);
    const fromTime = await reader.consume({ topics: ["plt"], mode: "manual", offsets: [{ topic: "plt", partition: 0, offset: 4n }], autocommit: false });
    closers.push(() => fromTime.close());
    expect(await take(fromTime, 1)).toEqual(["0:4 late"]);
  });

  test("consumes from the latest offset: only what is produced after it joined", async () => {
    const reader = consumer("plt-latest");
    const stream = await reader.consume({ topics: ["plt"], mode: "latest", autocommit: false });
    closers.push(() => stream.close());
    const collected = collect(stream);
    await until(() => assigned(reader).length === 2, "the assignment");
    const fetches = () => test_.broker.context.metrics?.kafka.byOperation.get("fetch")?.requests ?? 0;
    const fetchesBefore = fetches();
    // A fetch after the assignment is at the latest offsets: what is produced now comes after them.
    await until(() => fetches() > fetchesBefore, "a fetch at the latest offsets");
    await producer(false).send({ acks: -1, messages: [{ topic: "plt", value: "after", partition: 1 }] });
    await until(() => collected.lines.length > 0, "the message produced after");
    expect(collected.lines).toEqual(["1:3 after"]);
  });

  test("a member commits and the next resumes there; two members split the partitions and one takes them all when the other leaves; admin lists and describes the group and deletes the topic", async () => {
    const first = consumer("plt-group");
    const firstStream = await first.consume({ topics: ["plt"], mode: "committed", fallbackMode: "earliest", autocommit: false });
    closers.push(() => firstStream.close());
    await until(() => assigned(first).length === 2, "the first member's assignment");
    const firstRead = collect(firstStream);
    await until(() => firstRead.lines.length >= 9, "every message so far");
    const lastOnZero = firstRead.messages.find((message) => message.partition === 0 && message.offset === 2n);
    await lastOnZero?.commit();
    expect(test_.broker.context.offsets.fetch("plt-group", "plt", 0)?.offset).toBe(3);
    const second = consumer("plt-group");
    const secondStream = await second.consume({ topics: ["plt"], mode: "committed", fallbackMode: "earliest", autocommit: false });
    closers.push(() => secondStream.close());
    await until(() => assigned(first).length === 1 && assigned(second).length === 1, "a split of the two partitions");
    expect([...assigned(first), ...assigned(second)].sort()).toEqual(["plt/0", "plt/1"]);
    const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers: brokers });
    closers.push(() => admin.close());
    const listed = await admin.listGroups();
    expect([...listed.values()].find((group) => group.id === "plt-group")?.state).toBe("Stable");
    const described = (await admin.describeGroups({ groups: ["plt-group"] })).get("plt-group");
    expect([described?.state, described?.protocolType, described?.members.size]).toEqual(["Stable", "consumer", 2]);
    await secondStream.close();
    await second.close(true);
    await until(() => assigned(first).length === 2, "the first member taking both partitions back");
    await firstStream.close();
    await first.close(true);
    const resumed = consumer("plt-group");
    const resumedStream = await resumed.consume({ topics: ["plt"], mode: "committed", fallbackMode: "earliest", autocommit: false });
    closers.push(() => resumedStream.close());
    // Partition 0 resumes after the commit at 3; partition 1, never committed, from the earliest.
    const afterCommit = await take(resumedStream, 6);
    expect(afterCommit.filter((line) => line.startsWith("0:"))).toEqual(["0:3 idempotent", "0:4 late"]);
    expect(afterCommit.filter((line) => line.startsWith("1:"))).toEqual(["1:0 acks=0", "1:1 acks=1", "1:2 acks=-1", "1:3 after"]);
    await admin.deleteTopics({ topics: ["plt"] });
    expect(test_.broker.context.log.hasTopic("plt")).toBe(false);
  });

  test("static members (groupInstanceId, flexible JoinGroup v7): described with their instance ids; one that leaves on close (this client sends LeaveGroup for static members) rejoins under its id", async () => {
    test_.broker.context.log.createTopic("plt-static", { partitions: 2 });
    const staticMember = (instance: string) => {
      const made = new Consumer({ clientId: `plt-${instance}`, groupId: "plt-static", groupInstanceId: instance, bootstrapBrokers: brokers, deserializers: stringDeserializers, sessionTimeout: 6_000, heartbeatInterval: 200, maxWaitTime: 200, retries: 2 });
      closers.push(() => made.close(true));
      return made;
    };
    const group = () => test_.broker.context.groups.classicGroup("plt-static");
    const one = staticMember("one");
    collect(await one.consume({ topics: ["plt-static"], mode: "earliest", autocommit: false }));
    await until(() => assigned(one).length === 2, "the first static member's assignment");
    const two = staticMember("two");
    const twoStream = await two.consume({ topics: ["plt-static"], mode: "earliest", autocommit: false });
    collect(twoStream);
    await until(() => assigned(one).length === 1 && assigned(two).length === 1, "a split between the static members");
    const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers: brokers });
    closers.push(() => admin.close());
    const described = (await admin.describeGroups({ groups: ["plt-static"] })).get("plt-static");
    expect([...(described?.members.values() ?? [])].map((member) => member.groupInstanceId).sort()).toEqual(["one", "two"]);
    // @platformatic/kafka sends LeaveGroup for a static member too: the group rebalances without it.
    await twoStream.close();
    await two.close(true);
    expect([...(group()?.members.values() ?? [])].map((member) => member.instanceId)).toEqual(["one"]);
    const again = staticMember("two");
    collect(await again.consume({ topics: ["plt-static"], mode: "earliest", autocommit: false }));
    await until(() => assigned(again).length === 1 && assigned(one).length === 1, "the replacement's assignment");
    expect([...assigned(one), ...assigned(again)].sort()).toEqual(["plt-static/0", "plt-static/1"]);
    expect([...(group()?.members.values() ?? [])].map((member) => member.instanceId).sort()).toEqual(["one", "two"]);
  });
});
