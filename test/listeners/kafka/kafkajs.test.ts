/**
 * kafkajs 2.2.4 (npm devDependency), unmodified, against the Kafka listener: a producer with
 * acks=all and a consumer in a group (JoinGroup with KIP-394's member id handshake, SyncGroup
 * with kafkajs's own round-robin assignor in the leader, Heartbeat, OffsetCommit with its
 * generation); every message consumed once, the group's offsets in the native store.
 *
 * Needs the kafkajs package (`npm install`); skipped loudly outside CI when missing.
 */
import { describe, expect, test } from "bun:test";
import { startTestBroker } from "../../server/helpers.ts";

/** The part of kafkajs's API this test uses, declared here so the type check passes without the package. */
interface KafkajsConsumer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topic: string; fromBeginning: boolean }): Promise<void>;
  run(config: { eachMessage(payload: { partition: number; message: { key: Buffer | null; value: Buffer | null } }): Promise<void> }): Promise<void>;
}

interface KafkajsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  createTopics(options: { topics: Array<{ topic: string; numPartitions: number }> }): Promise<boolean>;
  deleteTopics(options: { topics: string[] }): Promise<void>;
  listGroups(): Promise<{ groups: Array<{ groupId: string; protocolType: string }> }>;
  describeGroups(groupIds: string[]): Promise<{ groups: Array<{ groupId: string; state: string; protocolType: string; protocol: string; members: Array<{ memberId: string; clientId: string }> }> }>;
  deleteGroups(groupIds: string[]): Promise<Array<{ groupId: string; errorCode?: number }>>;
}

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number } }) => {
    producer(): { connect(): Promise<void>; disconnect(): Promise<void>; send(record: { topic: string; acks: number; messages: Array<{ key: string; value: string; partition: number }> }): Promise<unknown> };
    consumer(config: { groupId: string; sessionTimeout: number; heartbeatInterval: number; maxWaitTimeInMs: number }): KafkajsConsumer;
    admin(): KafkajsAdmin;
  };
}

const KAFKAJS = "kafkajs";

async function loadKafkajs(): Promise<KafkajsModule | null> {
  try {
    // A name in a variable: the type check does not need the package installed.
    return (await import(KAFKAJS)) as KafkajsModule;
  } catch {
    if (process.env.CI === "true") throw new Error("kafkajs is required in CI (npm install)");
    console.warn("skipping the kafkajs tests: the kafkajs package is not installed (npm install)");
    return null;
  }
}

const kafkajs = await loadKafkajs();
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
});
