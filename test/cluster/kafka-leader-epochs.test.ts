/**
 * Kafka leader-epoch answers in cluster mode come from the partition's real history: a partition
 * led in epoch 1 then epoch 3 answers OffsetForLeaderEpoch with where each epoch ends (an epoch
 * in between with the one before it), ListOffsets with epoch 3, and refuses a client's current
 * epoch older than 3 (FENCED_LEADER_EPOCH) or newer (UNKNOWN_LEADER_EPOCH) in OffsetForLeaderEpoch,
 * ListOffsets and Fetch.
 */
import { describe, expect, test } from "bun:test";
import type { KafkaStruct } from "../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../src/listeners/kafka/errors.ts";
import { RawKafka } from "../listeners/kafka/raw-kafka.ts";
import { batchOf, eventually, produce, TestCluster } from "./harness.ts";

type Struct = KafkaStruct & { partitions: KafkaStruct[] };

async function epochEnd(client: RawKafka, leaderEpoch: number, currentLeaderEpoch = -1): Promise<KafkaStruct> {
  const answer = await client.request(API_KEYS.offsetForLeaderEpoch, 4, { replicaId: -1, topics: [{ topic: "t", partitions: [{ partition: 0, currentLeaderEpoch, leaderEpoch }] }] });
  return (answer.topics as Struct[])[0]!.partitions[0]!;
}

async function latest(client: RawKafka, currentLeaderEpoch: number): Promise<KafkaStruct> {
  const answer = await client.request(API_KEYS.listOffsets, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: "t", partitions: [{ partitionIndex: 0, currentLeaderEpoch, timestamp: -1 }] }] });
  return (answer.topics as Struct[])[0]!.partitions[0]!;
}

async function fetchFrom(client: RawKafka, currentLeaderEpoch: number): Promise<KafkaStruct> {
  const answer = await client.request(API_KEYS.fetch, 12, {
    maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic: "t", partitions: [{ partition: 0, currentLeaderEpoch, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [], rackId: "",
  });
  return ((answer.responses ?? answer.topics) as Struct[])[0]!.partitions[0]!;
}

describe("Kafka leader epochs in cluster mode", () => {
  test("answers come from the partition's epoch history and the controller's current epoch", async () => {
    await using cluster = await TestCluster.start(1);
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1] });
    const connection = cluster.connect(1);
    await eventually(() => cluster.log(1, "t", 0).leaderEpoch === 1, "leadership in epoch 1");
    expect((await produce(connection, "t", 0, batchOf("a", 3), "replicated")).error).toBeUndefined();
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 3, isr: [1], replicas: [1] });
    await eventually(() => cluster.log(1, "t", 0).leaderEpoch === 3, "leadership in epoch 3");
    expect((await produce(connection, "t", 0, batchOf("b", 2), "replicated")).error).toBeUndefined();
    await using client = await RawKafka.connect(cluster.broker(1).kafkaPort ?? 0);

    expect(await epochEnd(client, 1)).toMatchObject({ errorCode: 0, leaderEpoch: 1, endOffset: 3 });
    expect(await epochEnd(client, 2)).toMatchObject({ errorCode: 0, leaderEpoch: 1, endOffset: 3 });
    expect(await epochEnd(client, 3, 3)).toMatchObject({ errorCode: 0, leaderEpoch: 3, endOffset: 5 });
    expect(await epochEnd(client, 4)).toMatchObject({ errorCode: 0, leaderEpoch: -1, endOffset: -1 });
    expect((await epochEnd(client, 1, 1)).errorCode).toBe(KAFKA_ERROR.FENCED_LEADER_EPOCH);
    expect((await epochEnd(client, 1, 4)).errorCode).toBe(KAFKA_ERROR.UNKNOWN_LEADER_EPOCH);

    expect(await latest(client, 3)).toMatchObject({ errorCode: 0, offset: 5, leaderEpoch: 3 });
    expect((await latest(client, 2)).errorCode).toBe(KAFKA_ERROR.FENCED_LEADER_EPOCH);

    expect((await fetchFrom(client, 3)).errorCode).toBe(0);
    expect((await fetchFrom(client, 0)).errorCode).toBe(KAFKA_ERROR.FENCED_LEADER_EPOCH);
    expect((await fetchFrom(client, 9)).errorCode).toBe(KAFKA_ERROR.UNKNOWN_LEADER_EPOCH);
  });
});
