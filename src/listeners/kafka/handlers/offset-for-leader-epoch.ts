/**
 * @module listeners/kafka/handlers/offset-for-leader-epoch
 * OffsetForLeaderEpoch (key 23), versions 0-4 (4+ flexible; Kafka 4.0 keeps 2-4, we also serve
 * 0-1 for older clients). For each partition: the end offset of the requested leader epoch and
 * the largest epoch at or below it, which a consumer holds against its position to detect log
 * truncation (KIP-320). Kafka's rules, in broker/leader-epochs.ts (the one place that knows the
 * epochs; one node today: epoch 0 from offset 0, so epoch 0 ends at the log end offset):
 *
 * - currentLeaderEpoch (v2+) older than ours: FENCED_LEADER_EPOCH (74); newer: UNKNOWN_LEADER_EPOCH
 *   (75); -1: not checked.
 * - leaderEpoch = the current epoch: (epoch, log end offset).
 * - leaderEpoch above every epoch we know, or -1: (-1, -1), error 0 — the client's history is not
 *   ours and it resets (a wrong, larger end offset would hide a truncation).
 * - An unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (3).
 *
 * replicaId (v3+) is read and ignored: there are no followers yet.
 */
import { checkCurrentLeaderEpoch, endOffsetForLeaderEpoch, replicatedEpochsOf } from "../../../broker/leader-epochs.ts";
import { findPartition } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

interface EpochTopic {
  topic: string;
  partitions: Array<{ partition: number; currentLeaderEpoch: number; leaderEpoch: number }>;
}

export function handleOffsetForLeaderEpoch(context: KafkaContext, request: KafkaStruct, _version: number): KafkaStruct {
  const topics = fieldAs<EpochTopic[]>(request.topics).map(({ topic, partitions }) => ({
    topic,
    partitions: partitions.map((asked) => endOffsetOf(context, topic, asked)),
  }));
  return { throttleTimeMs: 0, topics };
}

function endOffsetOf(context: KafkaContext, topic: string, asked: EpochTopic["partitions"][number]): KafkaStruct {
  const failed = (errorCode: number) => ({ errorCode, partition: asked.partition, leaderEpoch: -1, endOffset: -1 });
  try {
    const partition = findPartition(context.broker, topic, asked.partition);
    const replicated = replicatedEpochsOf(context.broker.cluster, topic, asked.partition, partition);
    const check = checkCurrentLeaderEpoch(topic, asked.partition, asked.currentLeaderEpoch, replicated);
    if (check === "fenced") return failed(KAFKA_ERROR.FENCED_LEADER_EPOCH);
    if (check === "unknown") return failed(KAFKA_ERROR.UNKNOWN_LEADER_EPOCH);
    const found = endOffsetForLeaderEpoch(topic, asked.partition, asked.leaderEpoch, partition.nextOffset, replicated);
    return { errorCode: KAFKA_ERROR.NONE, partition: asked.partition, leaderEpoch: found.epoch, endOffset: found.startOffset };
  } catch (error) {
    return failed(kafkaErrorOf(error).errorCode);
  }
}
