/**
 * kafkajs (npm devDependency, unmodified) producing with acks=-1 to the leader of a replicated
 * partition: the answer waits for the follower, as Kafka's acks=all does.
 */
import { loadKafkajs } from "../support/kafkajs.ts";
import { describe, expect, test } from "bun:test";
import { eventually, TestCluster } from "./harness.ts";

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number } }) => {
    producer(): { connect(): Promise<void>; disconnect(): Promise<void>; send(record: { topic: string; acks: number; messages: Array<{ value: string; partition: number }> }): Promise<Array<{ errorCode: number; baseOffset: string }>> };
    admin(): { connect(): Promise<void>; disconnect(): Promise<void>; fetchTopicOffsets(topic: string): Promise<Array<{ partition: number; offset: string; high: string; low: string }>> };
  };
}

const kafkajs = await loadKafkajs<KafkajsModule>("the kafkajs acks=-1 test");

describe.if(kafkajs !== null)("Replication with kafkajs", () => {
  test("acks=-1 is answered only once the follower holds the records", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    await cluster.stopNode(2);
    const kafka = new kafkajs!.Kafka({ clientId: "acks-test", brokers: [`127.0.0.1:${cluster.broker(1).kafkaPort}`], logLevel: kafkajs!.logLevel.NOTHING, retry: { retries: 0 } });
    const producer = kafka.producer();
    await producer.connect();
    try {
      let answered = false;
      const sent = producer.send({ topic: "t", acks: -1, messages: [{ value: "one", partition: 0 }, { value: "two", partition: 0 }] }).finally(() => (answered = true));
      await eventually(() => cluster.log(1, "t", 0).nextOffset === 2, "the leader's append");
      expect(answered).toBe(false);
      await cluster.startNode(2);
      const [result] = await sent;
      expect(result!.errorCode).toBe(0);
      // Answered means replicated: the follower had both records by then.
      expect(cluster.log(2, "t", 0).nextOffset).toBe(2);
      expect(cluster.log(2, "t", 0).latestLogEpoch).toBe(1);
    } finally {
      await producer.disconnect();
    }
  });

  test("Kafka ListOffsets latest is the high watermark, not the leader's log end", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const kafka = new kafkajs!.Kafka({ clientId: "hw-test", brokers: [`127.0.0.1:${cluster.broker(1).kafkaPort}`], logLevel: kafkajs!.logLevel.NOTHING, retry: { retries: 0 } });
    const producer = kafka.producer();
    const admin = kafka.admin();
    await producer.connect();
    await admin.connect();
    try {
      await producer.send({ topic: "t", acks: -1, messages: [{ value: "committed", partition: 0 }] });
      await cluster.stopNode(2);
      await producer.send({ topic: "t", acks: 1, messages: [{ value: "not yet", partition: 0 }] });
      expect(cluster.log(1, "t", 0).nextOffset).toBe(2);
      const [offsets] = await admin.fetchTopicOffsets("t");
      expect(offsets!.high).toBe("1");
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
