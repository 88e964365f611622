/**
 * OffsetForLeaderEpoch (key 23) over raw requests, every served version: one node leads every
 * partition in epoch 0 from offset 0, so epoch 0 ends at the log end offset; an epoch we never
 * had is (-1, -1) as Kafka answers; a current epoch newer or older than ours is refused (75, 74).
 * librdkafka 2.0.2 (kcat, confluent-kafka) and kafkajs do not send this request; the answers
 * follow Kafka's LeaderEpochFileCache.endOffsetFor, checked against it in broker/leader-epochs.
 */
import { describe, expect, test } from "bun:test";
import { endOffsetForLeaderEpoch, endOffsetInHistory, epochEntriesOf } from "../../../src/broker/leader-epochs.ts";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../../src/listeners/kafka/errors.ts";
import { encodeKafkaBatch } from "../../../src/format/kafka-batch.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { RawKafka } from "./raw-kafka.ts";

type Asked = { partition: number; leaderEpoch: number; currentLeaderEpoch?: number };

async function ask(client: RawKafka, version: number, topic: string, partitions: Asked[]): Promise<KafkaStruct[]> {
  const answer = await client.request(API_KEYS.offsetForLeaderEpoch, version, {
    replicaId: -1,
    topics: [{ topic, partitions: partitions.map((asked) => ({ currentLeaderEpoch: -1, ...asked })) }],
  });
  const topics = answer.topics as Array<{ topic: string; partitions: KafkaStruct[] }>;
  expect(topics[0]?.topic).toBe(topic);
  return topics[0]?.partitions ?? [];
}

describe("OffsetForLeaderEpoch", () => {
  test("epoch 0 ends at the log end offset, at every version, for empty and written partitions", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("epochs", { partitions: 2 });
    await test.broker.context.log.partition("epochs", 1).append(encodeKafkaBatch([{ value: new Uint8Array([1]), timestamp: 1 }, { value: null, timestamp: 2 }]));
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (let version = 0; version <= 4; version++) {
      const partitions = await ask(client, version, "epochs", [{ partition: 0, leaderEpoch: 0 }, { partition: 1, leaderEpoch: 0, currentLeaderEpoch: 0 }]);
      expect(partitions.map((answer) => [answer.partition, answer.errorCode, answer.endOffset])).toEqual([[0, 0, 0], [1, 0, 2]]);
      // v0 has no leaderEpoch field: it is not on the wire
      expect(partitions.map((answer) => answer.leaderEpoch)).toEqual(version === 0 ? [undefined, undefined] : [0, 0]);
    }
  });

  test("an epoch this broker never had (above ours, or -1) is epoch -1 at offset -1 with no error, as Kafka answers", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("epochs", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const partitions = await ask(client, 4, "epochs", [{ partition: 0, leaderEpoch: 7 }, { partition: 0, leaderEpoch: -1 }]);
    expect(partitions.map((answer) => [answer.errorCode, answer.leaderEpoch, answer.endOffset])).toEqual([[0, -1, -1], [0, -1, -1]]);
  });

  test("a current leader epoch newer than ours is UNKNOWN_LEADER_EPOCH, an older one FENCED_LEADER_EPOCH; unknown partitions are error 3", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("epochs", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const partitions = await ask(client, 3, "epochs", [{ partition: 0, leaderEpoch: 0, currentLeaderEpoch: 1 }, { partition: 0, leaderEpoch: 0, currentLeaderEpoch: -5 }, { partition: 9, leaderEpoch: 0 }]);
    expect(partitions.map((answer) => answer.errorCode)).toEqual([KAFKA_ERROR.UNKNOWN_LEADER_EPOCH, KAFKA_ERROR.FENCED_LEADER_EPOCH, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION]);
    const missing = await ask(client, 4, "no-such-topic", [{ partition: 0, leaderEpoch: 0 }]);
    expect(missing[0]?.errorCode).toBe(KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION);
  });

  test("today's history is one epoch, 0 from offset 0", () => {
    expect(epochEntriesOf("t", 0)).toEqual([{ epoch: 0, startOffset: 0 }]);
    expect(endOffsetForLeaderEpoch("t", 0, 0, 42)).toEqual({ epoch: 0, startOffset: 42 });
  });

  test("the lookup follows Kafka's endOffsetFor over a history of several epochs (what replication will bring)", () => {
    const history = [{ epoch: 2, startOffset: 10 }, { epoch: 5, startOffset: 30 }, { epoch: 6, startOffset: 50 }];
    const lookup = (requested: number) => endOffsetInHistory(history, requested, 70);
    expect(lookup(6)).toEqual({ epoch: 6, startOffset: 70 }); // the current epoch: the log end
    expect(lookup(5)).toEqual({ epoch: 5, startOffset: 50 }); // ends where the next begins
    expect(lookup(3)).toEqual({ epoch: 2, startOffset: 30 }); // never led in 3: the epoch below, ending where 5 began
    expect(lookup(1)).toEqual({ epoch: 1, startOffset: 10 }); // below the oldest: itself, ending where the oldest began
    expect(lookup(7)).toEqual({ epoch: -1, startOffset: -1 }); // above every epoch
    expect(lookup(-1)).toEqual({ epoch: -1, startOffset: -1 });
    expect(endOffsetInHistory([], 0, 70)).toEqual({ epoch: -1, startOffset: -1 });
  });
});
