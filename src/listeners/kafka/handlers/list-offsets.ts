/**
 * @module listeners/kafka/handlers/list-offsets
 * ListOffsets (key 2), versions 1-7 (6+ flexible). timestamp -2: the log start offset; -1: the
 * next offset (high watermark; no transactions, so also the last stable offset); -3 (v7,
 * KIP-734): the first record carrying the log's largest timestamp, with that timestamp; >= 0:
 * the first record whose timestamp is at or after it, with its own timestamp — exact to the
 * record, as Kafka answers (broker/time-lookup.ts reads the found batch's records, decompressing
 * a compressed Kafka batch, bounded). None: offset -1, timestamp -1, as Kafka. -3 before v7 and
 * other negative timestamps are INVALID_REQUEST. currentLeaderEpoch (v4+) is checked against
 * ours (broker/leader-epochs.ts): older FENCED_LEADER_EPOCH (74), newer UNKNOWN_LEADER_EPOCH (75).
 *
 * Differs from Kafka: when a compressed batch would inflate past the bound the answer is that
 * batch's base offset with timestamp -1 (the consumer skips the older records in it).
 * Authorization (authorizer acl): describe on each topic, as Kafka; TOPIC_AUTHORIZATION_FAILED (29)
 * on its partitions otherwise.
 */
import { checkCurrentLeaderEpoch, currentLeaderEpoch, replicatedEpochsOf } from "../../../broker/leader-epochs.ts";
import { offsetForTime, offsetOfMaxTimestamp, type TimedOffset } from "../../../broker/time-lookup.ts";
import type { Partition } from "../../../log/api.ts";
import { findPartition } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { deniedTopics } from "../../../server/access.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

const LATEST = -1;
const EARLIEST = -2;
const MAX_TIMESTAMP = -3;
const MAX_TIMESTAMP_VERSION_MIN = 7;

interface ListTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; currentLeaderEpoch: number; timestamp: number }>;
}

export function handleListOffsets(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): KafkaStruct {
  const asked = fieldAs<ListTopic[]>(request.topics);
  const denied = deniedTopics(context.broker, info.session, "describe", asked.map((topic) => ({ topic: topic.name })));
  const topics = asked.map((topic) => ({
    name: topic.name,
    partitions: topic.partitions.map((one) => listOne(context, topic.name, one, version, denied?.get(topic.name))),
  }));
  return { throttleTimeMs: 0, topics };
}

function listOne(context: KafkaContext, topic: string, asked: ListTopic["partitions"][number], version: number, refusal: unknown): KafkaStruct {
  const { partitionIndex, timestamp } = asked;
  const failed = (errorCode: number) => ({ partitionIndex, errorCode, timestamp: -1, offset: -1, leaderEpoch: -1 });
  try {
    if (refusal !== undefined) throw refusal;
    const partition = findPartition(context.broker, topic, partitionIndex);
    const replicated = replicatedEpochsOf(context.broker.cluster, topic, partitionIndex, partition);
    const check = checkCurrentLeaderEpoch(topic, partitionIndex, asked.currentLeaderEpoch, replicated);
    if (check !== "ok") return failed(check === "fenced" ? KAFKA_ERROR.FENCED_LEADER_EPOCH : KAFKA_ERROR.UNKNOWN_LEADER_EPOCH);
    const found = lookup(partition, timestamp, version);
    if (found === undefined) return failed(KAFKA_ERROR.INVALID_REQUEST);
    const answer = found ?? { offset: -1, timestampMs: -1 };
    return { partitionIndex, errorCode: KAFKA_ERROR.NONE, timestamp: answer.timestampMs, offset: answer.offset, leaderEpoch: currentLeaderEpoch(topic, partitionIndex, replicated) };
  } catch (error) {
    return failed(kafkaErrorOf(error).errorCode);
  }
}

/** The offset (and timestamp) asked for; null when no record matches; undefined for a timestamp not served. */
function lookup(partition: Partition, timestamp: number, version: number): TimedOffset | null | undefined {
  if (timestamp === LATEST) return { offset: partition.highWatermark, timestampMs: -1 };
  if (timestamp === EARLIEST) return { offset: partition.logStartOffset, timestampMs: -1 };
  if (timestamp === MAX_TIMESTAMP && version >= MAX_TIMESTAMP_VERSION_MIN) return offsetOfMaxTimestamp(partition);
  if (timestamp < 0) return undefined;
  return offsetForTime(partition, timestamp);
}
