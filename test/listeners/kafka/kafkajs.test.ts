/**
 * kafkajs 2.2.4 (npm devDependency), unmodified, against the Kafka listener: a producer with
 * acks=all and a consumer in a group (JoinGroup with KIP-394's member id handshake, SyncGroup
 * with kafkajs's own round-robin assignor in the leader, Heartbeat, OffsetCommit with its
 * generation); every message consumed once, the group's offsets in the native store. Also:
 * produce with acks 0 and 1; consume from an offset (seek), a timestamp
 * (fetchTopicOffsetsByTimestamp) and the latest offset; a member commits and the next resumes.
 *
 * Needs the kafkajs package (`npm install`); skipped loudly outside CI when missing.
 */
import { loadKafkajs } from "../../support/kafkajs.ts";
import { describe, expect, test } from "bun:test";
import { startTestBroker } from "../../server/helpers.ts";

/** The part of kafkajs's API this test uses, declared here so the type check passes without the package. */
interface KafkajsConsumer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topic: string; fromBeginning: boolean }): Promise<void>;
  run(config: { autoCommit?: boolean; eachMessage(payload: { partition: number; message: { key: Buffer | null; value: Buffer | null; offset: string } }): Promise<void> }): Promise<void>;
  seek(target: { topic: string; partition: number; offset: string }): void;
}

interface KafkajsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  createTopics(options: { topics: Array<{ topic: string; numPartitions: number }> }): Promise<boolean>;
  deleteTopics(options: { topics: string[] }): Promise<void>;
  listGroups(): Promise<{ groups: Array<{ groupId: string; protocolType: string }> }>;
  describeGroups(groupIds: string[]): Promise<{ groups: Array<{ groupId: string; state: string; protocolType: string; protocol: string; members: Array<{ memberId: string; clientId: string }> }> }>;
  deleteGroups(groupIds: string[]): Promise<Array<{ groupId: string; errorCode?: number }>>;
  fetchTopicOffsetsByTimestamp(topic: string, timestamp: number): Promise<Array<{ partition: number; offset: string }>>;
}

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number } }) => {
    producer(): { connect(): Promise<void>; disconnect(): Promise<void>; send(record: { topic: string; acks: number; messages: Array<{ key: string; value: string; partition: number }> }): Promise<Array<{ partition: number; baseOffset?: string }>> };
    consumer(config: { groupId: string; sessionTimeout: number; heartbeatInterval: number; maxWaitTimeInMs: number }): KafkajsConsumer;
    admin(): KafkajsAdmin;
  };
}

const kafkajs = await loadKafkajs<KafkajsModule>("the kafkajs tests");
const WAIT_MS_MAX = 30_000;

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

describe.skipIf(kafkajs === null)("kafkajs against the Kafka listener", () => {
  test("a kafkajs producer (acks=all) and a group consumer: every message consumed once, the group's offsets committed", async () => {
    const { Kafka, logLevel } = kafkajs as KafkajsModule;
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("js", { partitions: 2 });
    const kafka = new Kafka({ clientId: "runnel-test", brokers: [`127.0.0.1:${test.broker.kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: "jsg", sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    const received: string[] = [];
    try {
      await producer.connect();
      const sent = Array.from({ length: 10 }, (_, index) => ({ key: `k${index}`, value: `v${index}`, partition: index % 2 }));
      await producer.send({ topic: "js", acks: -1, messages: sent });
      await consumer.connect();
      await consumer.subscribe({ topic: "js", fromBeginning: true });
      await consumer.run({ eachMessage: async ({ partition, message }) => void received.push(`${partition}:${message.key?.toString()}=${message.value?.toString()}`) });
      await until(() => received.length >= sent.length, "ten messages");
      expect(received.sort()).toEqual(sent.map((message) => `${message.partition}:${message.key}=${message.value}`).sort());
      await consumer.disconnect();
      expect([0, 1].map((partition) => test.broker.context.offsets.fetch("jsg", "js", partition)?.offset)).toEqual([5, 5]);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  });

  test("kafkajs admin creates a topic; two group members share it and rebalance; the group is listed, described and deleted; the topic deleted", async () => {
    const { Kafka, logLevel } = kafkajs as KafkajsModule;
    await using test = await startTestBroker();
    const kafka = new Kafka({ clientId: "runnel-admin", brokers: [`127.0.0.1:${test.broker.kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const members = [0, 1].map(() => kafka.consumer({ groupId: "pairjs", sessionTimeout: 6_000, heartbeatInterval: 300, maxWaitTimeInMs: 200 }));
    const received: string[][] = [[], []];
    const groups = test.broker.context.groups;
    try {
      await admin.connect();
      expect(await admin.createTopics({ topics: [{ topic: "jsadmin", numPartitions: 2 }] })).toBe(true);
      expect(test.broker.context.log.hasTopic("jsadmin")).toBe(true);
      for (const [index, member] of members.entries()) {
        await member.connect();
        await member.subscribe({ topic: "jsadmin", fromBeginning: true });
        await member.run({ eachMessage: async ({ partition, message }) => void received[index]?.push(`${partition}:${message.value?.toString()}`) });
      }
      await until(() => groups.classicGroup("pairjs")?.state === "stable" && groups.classicGroup("pairjs")?.members.size === 2, "a stable group of two");
      const described = (await admin.describeGroups(["pairjs"])).groups[0];
      expect([described?.state, described?.protocolType, described?.members.length]).toEqual(["Stable", "consumer", 2]);
      expect((await admin.listGroups()).groups).toEqual([{ groupId: "pairjs", protocolType: "consumer" }]);
      await producer.connect();
      const sent = Array.from({ length: 10 }, (_, index) => ({ key: `k${index}`, value: `v${index}`, partition: index % 2 }));
      await producer.send({ topic: "jsadmin", acks: -1, messages: sent });
      await until(() => (received[0]?.length ?? 0) + (received[1]?.length ?? 0) >= sent.length, "ten messages across the two members");
      expect([...(received[0] ?? []), ...(received[1] ?? [])].sort()).toEqual(sent.map((message) => `${message.partition}:${message.value}`).sort());
      expect(received.map((lines) => lines.length > 0)).toEqual([true, true]);
      for (const member of members) await member.disconnect();
      expect(groups.classicGroup("pairjs")).toBeUndefined();
      expect((await admin.deleteGroups(["pairjs"])).map((result) => result.groupId)).toEqual(["pairjs"]);
      expect(test.broker.context.offsets.fetchAll("pairjs")).toEqual([]);
      await admin.deleteTopics({ topics: ["jsadmin"] });
      expect(test.broker.context.log.hasTopic("jsadmin")).toBe(false);
    } finally {
      for (const member of members) await member.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  test("produces with acks 0, 1 and all; consumes from an offset, a timestamp and the latest offset; a member commits and the next resumes", async () => {
    const { Kafka, logLevel } = kafkajs as KafkajsModule;
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("jsx", { partitions: 1 });
    const partition = test.broker.context.log.partition("jsx", 0);
    const kafka = new Kafka({ clientId: "runnel-matrix", brokers: [`127.0.0.1:${test.broker.kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const producer = kafka.producer();
    const admin = kafka.admin();
    const consumers: KafkajsConsumer[] = [];
    const consumer = (groupId: string) => {
      const made = kafka.consumer({ groupId, sessionTimeout: 6_000, heartbeatInterval: 300, maxWaitTimeInMs: 200 });
      consumers.push(made);
      return made;
    };
    /** Starts a consumer; "offset value" of what it reads. */
    const reading = async (member: KafkajsConsumer, fromBeginning: boolean, autoCommit = true) => {
      const read: string[] = [];
      await member.connect();
      await member.subscribe({ topic: "jsx", fromBeginning });
      await member.run({ autoCommit, eachMessage: async ({ message }) => void read.push(`${message.offset} ${message.value?.toString()}`) });
      return read;
    };
    try {
      await producer.connect();
      const learned: string[] = [];
      for (const acks of [0, 1, -1]) {
        const before = partition.nextOffset;
        const sent = await producer.send({ topic: "jsx", acks, messages: [0, 1].map((index) => ({ key: "k", value: `acks=${acks} ${index}`, partition: 0 })) });
        learned.push(`acks=${acks} ${sent.map((each) => each.baseOffset ?? "-").join(" ")}`);
        // acks=0 is not answered: wait until it is stored before the next level is sent.
        await until(() => partition.nextOffset >= before + 2, `the acks=${acks} messages`);
      }
      expect(learned).toEqual(["acks=0 ", "acks=1 2", "acks=-1 4"]);

      const seeker = consumer("jsseek");
      const fromOffset = await reading(seeker, true, false);
      seeker.seek({ topic: "jsx", partition: 0, offset: "3" });
      await until(() => fromOffset.length >= 3, "three messages from offset 3");
      expect(fromOffset.slice(0, 3)).toEqual(["3 acks=1 1", "4 acks=-1 0", "5 acks=-1 1"]);

      const beforeMs = Date.now();
      await Bun.sleep(5); // the next batch's timestamps must be later than beforeMs
      await producer.send({ topic: "jsx", acks: -1, messages: [{ key: "t", value: "timed", partition: 0 }] });
      await admin.connect();
      const byTime = await admin.fetchTopicOffsetsByTimestamp("jsx", beforeMs + 1);
      expect(byTime).toEqual([{ partition: 0, offset: "6" }]);

      const latest = await reading(consumer("jslatest"), false);
      await until(() => test.broker.context.groups.classicGroup("jslatest")?.state === "stable", "the latest reader's group");
      const fetches = () => test.broker.context.metrics?.kafka.byOperation.get("fetch")?.requests ?? 0;
      const fetchesBefore = fetches();
      // Its fetches after the join are at the latest offset: what is produced now comes after it.
      await until(() => fetches() > fetchesBefore + 1, "fetches at the latest offset");
      await producer.send({ topic: "jsx", acks: -1, messages: [{ key: "l", value: "after", partition: 0 }] });
      await until(() => latest.length >= 1, "the message produced after");
      expect(latest).toEqual(["7 after"]);

      const first = consumer("jsresume");
      const firstRead = await reading(first, true);
      await until(() => firstRead.length >= 8, "every message so far");
      await first.disconnect(); // commits what it read
      expect(test.broker.context.offsets.fetch("jsresume", "jsx", 0)?.offset).toBe(8);
      await producer.send({ topic: "jsx", acks: -1, messages: [{ key: "r", value: "resumed", partition: 0 }] });
      const resumed = await reading(consumer("jsresume"), true);
      await until(() => resumed.length >= 1, "the message after the commit");
      expect(resumed).toEqual(["8 resumed"]);
    } finally {
      for (const each of consumers) await each.disconnect();
      await admin.disconnect();
      await producer.disconnect();
    }
  });
});
