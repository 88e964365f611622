/**
 * @module listeners/kafka/handlers/offset-commit
 * OffsetCommit (key 8), versions 2-8 (8+ flexible). For consumers that commit outside a group
 * membership (generationId -1, as assign()-mode clients do): offsets go into the same store as
 * native commits (broker/offset-store.ts), answered after they are fsynced, so both protocols
 * and `runnel groups` see one set of offsets per group. Each partition must exist (
 * UNKNOWN_TOPIC_OR_PARTITION otherwise); a null metadata is stored as "".
 *
 * Not yet: commits from group members (generationId >= 0) — JoinGroup is not served, so no
 * member can hold a generation from this broker: ILLEGAL_GENERATION (22). The group coordinator
 * (src/broker/group-coordinator.ts, next phase) takes over the generation check.
 * retentionTimeMs (v2-4) is ignored: committed offsets stay until their topic is deleted.
 */
import { RunnelError } from "../../../errors.ts";
import type { OffsetCommit } from "../../../broker/offset-store.ts";
import { findPartition } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

const ILLEGAL_GENERATION = 22;
const INVALID_GROUP_ID = 24;

interface CommitTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; committedOffset: number; committedMetadata: string | null }>;
}

export async function handleOffsetCommit(context: KafkaContext, request: KafkaStruct, _version: number): Promise<KafkaStruct> {
  const topics = fieldAs<CommitTopic[]>(request.topics);
  const groupId = request.groupId as string;
  const refusal = groupId === "" ? INVALID_GROUP_ID : (request.generationId as number) >= 0 ? ILLEGAL_GENERATION : 0;
  const accepted: OffsetCommit[] = [];
  const answers = topics.map((topic) => ({
    name: topic.name,
    partitions: topic.partitions.map((entry) => {
      if (refusal !== 0) return { partitionIndex: entry.partitionIndex, errorCode: refusal };
      try {
        findPartition(context.broker, topic.name, entry.partitionIndex);
        if (context.broker.offsets.isTopicBeingRemoved(topic.name)) throw new RunnelError("UNKNOWN_TOPIC", `topic '${topic.name}' is being deleted`);
        accepted.push({ topic: topic.name, partition: entry.partitionIndex, offset: entry.committedOffset, metadata: entry.committedMetadata ?? "" });
        return { partitionIndex: entry.partitionIndex, errorCode: KAFKA_ERROR.NONE };
      } catch (error) {
        return { partitionIndex: entry.partitionIndex, errorCode: kafkaErrorOf(error).errorCode };
      }
    }),
  }));
  if (accepted.length > 0) {
    try {
      await context.broker.offsets.commit(groupId, accepted);
    } catch (error) {
      const { errorCode } = kafkaErrorOf(error);
      for (const topic of answers) for (const partition of topic.partitions) if (partition.errorCode === KAFKA_ERROR.NONE) partition.errorCode = errorCode;
    }
  }
  return { throttleTimeMs: 0, topics: answers };
}
