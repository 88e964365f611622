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
interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number } }) => {
    producer(): { connect(): Promise<void>; disconnect(): Promise<void>; send(record: { topic: string; acks: number; messages: Array<{ key: string; value: string; partition: number }> }): Promise<unknown> };
    consumer(config: { groupId: string; sessionTimeout: number; heartbeatInterval: number; maxWaitTimeInMs: number }): {
      connect(): Promise<void>;
      disconnect(): Promise<void>;
      subscribe(subscription: { topic: string; fromBeginning: boolean }): Promise<void>;
      run(config: { eachMessage(payload: { partition: number; message: { key: Buffer | null; value: Buffer | null } }): Promise<void> }): Promise<void>;
    };
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
});
