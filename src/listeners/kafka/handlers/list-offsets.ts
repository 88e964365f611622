/**
 * @module listeners/kafka/handlers/list-offsets
 * ListOffsets (key 2), versions 1-7 (6+ flexible). timestamp -2: the log start offset; -1: the
 * next offset (high watermark; no transactions, so also the last stable offset); >= 0: the base
 * offset of the first batch whose max timestamp is at or after it, or offset -1 when none is (as
 * Kafka answers). -3 (v7, the record with the largest timestamp) is refused with INVALID_REQUEST.
 *
 * Differs from Kafka: a timestamp lookup answers with a batch's base offset (the consumer skips
 * the older records in it) and timestamp -1, not the exact record's offset and timestamp.
 */
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { findPartition } from "../../../server/topic-rules.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

const LATEST = -1;
const EARLIEST = -2;

interface ListTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; timestamp: number }>;
}

export function handleListOffsets(context: KafkaContext, request: KafkaStruct, _version: number): KafkaStruct {
  const topics = fieldAs<ListTopic[]>(request.topics).map((topic) => ({
    name: topic.name,
    partitions: topic.partitions.map(({ partitionIndex, timestamp }) => {
      const answer = { partitionIndex, errorCode: 0, timestamp: -1, offset: -1, leaderEpoch: 0 };
      try {
        const partition = findPartition(context.broker, topic.name, partitionIndex);
        if (timestamp === LATEST) return { ...answer, offset: partition.highWatermark };
        if (timestamp === EARLIEST) return { ...answer, offset: partition.logStartOffset };
        if (timestamp < 0) return { ...answer, errorCode: KAFKA_ERROR.INVALID_REQUEST, leaderEpoch: -1 };
        return { ...answer, offset: partition.offsetForTimestamp(timestamp) ?? -1 };
      } catch (error) {
        return { ...answer, errorCode: kafkaErrorOf(error).errorCode, leaderEpoch: -1 };
      }
    }),
  }));
  return { throttleTimeMs: 0, topics };
}
