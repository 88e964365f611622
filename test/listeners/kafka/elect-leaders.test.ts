/**
 * Kafka ElectLeaders (key 43) on a single node, raw requests at every version: every partition is
 * already on its preferred (only) leader (ELECTION_NOT_NEEDED), an unknown one is
 * UNKNOWN_TOPIC_OR_PARTITION, unclean elections are refused, and the cluster ACL is checked. The
 * cluster behaviour is test/cluster/elect-leaders.test.ts.
 */
import { describe, expect, test } from "bun:test";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../../src/listeners/kafka/errors.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { RawKafka } from "./raw-kafka.ts";

function codesOf(answer: KafkaStruct): Array<[string, number, number]> {
  return (answer.replicaElectionResults as KafkaStruct[]).flatMap((topic) => (topic.partitionResult as KafkaStruct[]).map((result): [string, number, number] => [topic.topic as string, result.partitionId as number, result.errorCode as number]));
}

describe("ElectLeaders (key 43) on a single node", () => {
  test("answers every named partition ELECTION_NOT_NEEDED and an unknown one UNKNOWN_TOPIC_OR_PARTITION, at every version", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("a", { partitions: 2 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (let version = 0; version <= 2; version++) {
      const answer = await client.request(API_KEYS.electLeaders, version, { electionType: 0, topicPartitions: [{ topic: "a", partitions: [0, 1, 5] }, { topic: "nope", partitions: [0] }], timeoutMs: 1000 });
      expect(codesOf(answer)).toEqual([
        ["a", 0, KAFKA_ERROR.ELECTION_NOT_NEEDED],
        ["a", 1, KAFKA_ERROR.ELECTION_NOT_NEEDED],
        ["a", 5, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION],
        ["nope", 0, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION],
      ]);
    }
  });

  test("null topicPartitions names every partition of every topic", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("b", { partitions: 2 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const answer = await client.request(API_KEYS.electLeaders, 2, { electionType: 0, topicPartitions: null, timeoutMs: 1000 });
    expect(codesOf(answer)).toEqual([["b", 0, KAFKA_ERROR.ELECTION_NOT_NEEDED], ["b", 1, KAFKA_ERROR.ELECTION_NOT_NEEDED]]);
  });

  test("refuses unclean elections with INVALID_REQUEST for each partition", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("c", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const answer = await client.request(API_KEYS.electLeaders, 1, { electionType: 1, topicPartitions: [{ topic: "c", partitions: [0] }], timeoutMs: 1000 });
    expect(codesOf(answer)).toEqual([["c", 0, KAFKA_ERROR.INVALID_REQUEST]]);
  });

  test("needs alter on the cluster under the ACL authorizer", async () => {
    await using test = await startTestBroker({ authorizer: "acl" });
    test.broker.context.log.createTopic("d", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const answer = await client.request(API_KEYS.electLeaders, 2, { electionType: 0, topicPartitions: [{ topic: "d", partitions: [0] }], timeoutMs: 1000 });
    expect(answer.errorCode).toBe(KAFKA_ERROR.CLUSTER_AUTHORIZATION_FAILED);
    expect(codesOf(answer)).toEqual([["d", 0, KAFKA_ERROR.CLUSTER_AUTHORIZATION_FAILED]]);
  });
});
