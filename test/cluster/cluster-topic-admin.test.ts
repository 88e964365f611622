/**
 * Topic administration in cluster mode through the ClusterView (issue 14), on three in-process
 * brokers sharing a StaticClusterView state: createTopic, alterTopicConfig and createPartitions
 * asked of one broker change the cluster's state and every broker applies them to its own log;
 * a replica whose copy is not created yet answers a retriable error, never UNKNOWN_TOPIC; Kafka
 * CreateTopics, CreatePartitions, IncrementalAlterConfigs and Metadata take the same path.
 */
import { describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { RunnelError } from "../../src/errors.ts";
import type { KafkaStruct } from "../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../src/listeners/kafka/errors.ts";
import { partitionForProduce } from "../../src/server/topic-rules.ts";
import { RawKafka } from "../listeners/kafka/raw-kafka.ts";
import { eventually, TestCluster } from "./harness.ts";

const IDS = [1, 2, 3];

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RunnelError) return error.code;
    throw error;
  }
  return "no error";
}

describe("topic administration in cluster mode", () => {
  test("createTopic, alterTopicConfig and createPartitions asked of one broker reach every broker's log, and the new partition takes records", async () => {
    await using cluster = await TestCluster.start(3);
    const bootstrap = IDS.map((id) => `127.0.0.1:${cluster.broker(id).port}`);
    const admin = new Admin({ broker: bootstrap[0] });
    try {
      const created = await admin.createTopic("orders", { partitions: 2, replicationFactor: 3, minInsyncReplicas: 2 });
      expect(created.partitions.length).toBe(2);
      // The answer came once the view named every leader.
      expect([0, 1].every((partition) => cluster.partitionState("orders", partition).leader > 0)).toBe(true);
      await eventually(() => IDS.every((id) => cluster.broker(id).context.log.hasTopic("orders")), "every replica's copy");

      const altered = await new Admin({ broker: bootstrap[1] }).alterTopicConfig("orders", { "retention.ms": 60_000 });
      expect(altered.config["retention.ms"]).toBe(60_000);
      await eventually(() => IDS.every((id) => cluster.broker(id).context.log.describeTopic("orders").config["retention.ms"] === 60_000), "the config on every broker");

      await admin.createPartitions("orders", 3);
      expect(cluster.partitionState("orders", 2).replicas.length).toBe(3);
      await eventually(() => IDS.every((id) => cluster.broker(id).context.log.describeTopic("orders").partitions.length === 3), "the new partition on every broker");
      const leader = cluster.partitionState("orders", 2).leader;
      await eventually(() => cluster.broker(leader).context.replication?.isLeader("orders", 2) === true, "the new partition's leader taking its role");

      const producer = new Producer({ broker: bootstrap, durability: "replicated", idempotent: false, lingerMs: 0, retryBackoffMs: 20 });
      await Promise.all(Array.from({ length: 5 }, (_, i) => producer.send("orders", { value: `new-${i}`, partition: 2 })));
      await producer.close();
      const consumer = new Consumer({ broker: bootstrap, maxWaitMs: 50, retryBackoffMs: 20 });
      consumer.assign([{ topic: "orders", partition: 2 }]);
      const values: string[] = [];
      try {
        while (values.length < 5) for (const message of await consumer.nextBatch()) values.push(new TextDecoder().decode(message.value!));
      } finally {
        await consumer.close();
      }
      expect(values.sort()).toEqual(Array.from({ length: 5 }, (_, i) => `new-${i}`));
    } finally {
      await admin.close();
    }
  });

  test("a bad change is refused as on a single node and changes nothing in the cluster", async () => {
    await using cluster = await TestCluster.start(3);
    const admin = new Admin({ broker: `127.0.0.1:${cluster.broker(2).port}` });
    try {
      await admin.createTopic("t", { partitions: 2, replicationFactor: 2 });
      expect(await codeOf(admin.createTopic("t", { partitions: 1 }))).toBe("TOPIC_EXISTS");
      expect(await codeOf(admin.createTopic("wide", { partitions: 1, replicationFactor: 4 }))).toBe("INVALID_CONFIG");
      expect(await codeOf(admin.alterTopicConfig("t", { "retention.ms": -5 } as never))).toBe("INVALID_CONFIG");
      expect(cluster.node(1).view!.topicConfig("t")).toEqual({});
      expect(await codeOf(admin.createPartitions("t", 2))).toBe("INVALID_PARTITIONS");
      expect(cluster.node(1).view!.partitionCount("t")).toBe(2);
      expect(await codeOf(admin.alterTopicConfig("absent", { "retention.ms": 1000 }))).toBe("UNKNOWN_TOPIC");
    } finally {
      await admin.close();
    }
  });

  test("a replica whose copy of a new topic is not created yet answers NOT_LEADER (retriable), not UNKNOWN_TOPIC", async () => {
    await using cluster = await TestCluster.start(2);
    const context = cluster.broker(2).context;
    cluster.state.setTopic("fresh", { replicationFactor: 2, minInsyncReplicas: 1 });
    cluster.setPartition("fresh", 0, { leader: 2, leaderEpoch: 0, isr: [1, 2], replicas: [1, 2] });
    // Same turn: broker 2's copy is being created off the event loop.
    expect(context.log.hasTopic("fresh")).toBe(false);
    let refusal: unknown = null;
    try {
      partitionForProduce(context, "fresh", 0);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(RunnelError);
    expect((refusal as RunnelError).code).toBe("NOT_LEADER");
    expect((refusal as RunnelError).retriable).toBe(true);
    // Admin.describeTopic retries it until the copy exists.
    const admin = new Admin({ broker: `127.0.0.1:${cluster.broker(2).port}` });
    try {
      expect((await admin.describeTopic("fresh")).partitions.map((partition) => partition.leader)).toEqual([2]);
    } finally {
      await admin.close();
    }
  });

  test("Kafka CreateTopics, CreatePartitions and IncrementalAlterConfigs go through the cluster, and Metadata lists its topics and controller", async () => {
    await using cluster = await TestCluster.start(3);
    await using client = await RawKafka.connect(cluster.broker(3).kafkaPort ?? 0);
    const topic = (name: string, extra: Partial<KafkaStruct> = {}) => ({ name, numPartitions: 2, replicationFactor: 2, assignments: [], configs: [], ...extra });
    const created = await client.request(API_KEYS.createTopics, 7, {
      topics: [topic("k", { configs: [{ name: "min.insync.replicas", value: "2" }] }), topic("too-wide", { replicationFactor: 4 })],
      timeoutMs: 5_000,
      validateOnly: false,
    });
    expect((created.topics as KafkaStruct[]).map((entry) => entry.errorCode)).toEqual([0, KAFKA_ERROR.INVALID_REPLICATION_FACTOR]);
    expect(cluster.state.topicReplication("k")).toEqual({ replicationFactor: 2, minInsyncReplicas: 2 });

    const grown = await client.request(API_KEYS.createPartitions, 3, { topics: [{ name: "k", count: 3, assignments: null }], timeoutMs: 5_000, validateOnly: false });
    expect((grown.results as KafkaStruct[])[0]?.errorCode).toBe(0);
    expect(cluster.node(1).view!.partitionCount("k")).toBe(3);

    const set = { name: "retention.bytes", configOperation: 0, value: "1048576" };
    const altered = await client.request(API_KEYS.incrementalAlterConfigs, 1, { resources: [{ resourceType: 2, resourceName: "k", configs: [set] }], validateOnly: false });
    expect((altered.responses as KafkaStruct[])[0]?.errorCode).toBe(0);
    expect(cluster.node(2).view!.topicConfig("k")?.["retention.bytes"]).toBe(1_048_576);

    const metadata = await client.request(API_KEYS.metadata, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    expect(metadata.controllerId).toBe(1);
    const listed = (metadata.topics as Array<KafkaStruct & { partitions: KafkaStruct[] }>).find((entry) => entry.name === "k");
    expect(listed?.partitions.map((partition) => partition.leaderId)).toEqual([0, 1, 2].map((partition) => cluster.partitionState("k", partition).leader));
  });

  test("a topic auto-created in cluster mode is placed through the cluster, so its partitions have leaders", async () => {
    await using cluster = await TestCluster.start(2, { autoCreateTopics: true, defaultPartitions: 2 });
    const producer = new Producer({ broker: [1, 2].map((id) => `127.0.0.1:${cluster.broker(id).port}`), idempotent: false, lingerMs: 0, retryBackoffMs: 20 });
    try {
      await producer.send("auto", { value: "first", partition: 1 });
    } finally {
      await producer.close();
    }
    expect(cluster.node(1).view!.partitionCount("auto")).toBe(2);
    expect(cluster.partitionState("auto", 1).leader).toBeGreaterThan(0);
  });
});
