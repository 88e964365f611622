/**
 * @module listeners/kafka/handlers/offset-commit
 * OffsetCommit (key 8), versions 1-8 (8+ flexible; v1 for Sarama 1.22, whose default it is). For consumers that commit outside a group
 * membership (generationId -1, as assign()-mode clients do): offsets go into the same store as
 * native commits (broker/offset-store.ts), answered after they are fsynced, so both protocols
 * and `runnel groups` see one set of offsets per group. Each partition must exist (
 * UNKNOWN_TOPIC_OR_PARTITION otherwise); a null metadata is stored as "".
 *
 * Commits from group members (generationId >= 0) are fenced by the group coordinator
 * (src/broker/classic-groups.ts): a non-member is UNKNOWN_MEMBER_ID (25), another generation
 * ILLEGAL_GENERATION (22), a group between its join phase and the leader's assignment
 * REBALANCE_IN_PROGRESS (27); while a rebalance is being prepared a member of the current
 * generation still commits (what it did before it gives partitions up), as in Kafka. As in Kafka, a
 * generation >= 0 for a group without members is ILLEGAL_GENERATION, and a commit outside
 * membership (generation -1) to a classic group that has members is UNKNOWN_MEMBER_ID. A commit to
 * a native group goes through the native ownership fence (COMMIT_FENCED, answered as 22). v7+
 * carry a static member's groupInstanceId: FENCED_INSTANCE_ID (82) when a newer member holds it.
 * retentionTimeMs (v2-4) and commitTimestamp (v1) are ignored: committed offsets stay until their
 * topic is deleted.
 */
import { RunnelError } from "../../../errors.ts";
import type { OffsetCommit } from "../../../broker/offset-store.ts";
import { requirePartitionForCommit } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { deniedTopics } from "../../../server/access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

interface CommitTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; committedOffset: number; committedMetadata: string | null }>;
}

/** Needs read on the group (GROUP_AUTHORIZATION_FAILED on every partition) and read on each topic (TOPIC_AUTHORIZATION_FAILED on its partitions). */
export async function handleOffsetCommit(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const topics = fieldAs<CommitTopic[]>(request.topics);
  const groupId = request.groupId as string;
  const groupDenied = groupId === "" ? KAFKA_ERROR.NONE : groupAccessCode(context, info, "read", groupId);
  const notHere = groupDenied !== KAFKA_ERROR.NONE ? groupDenied : coordinatorCode(context, groupId);
  const refusal = notHere !== KAFKA_ERROR.NONE ? notHere : membershipRefusal(context, groupId, request.generationId as number);
  const denied = deniedTopics(context.broker, info.session, "read", topics.map((topic) => ({ topic: topic.name })));
  const accepted: OffsetCommit[] = [];
  const answers = topics.map((topic) => ({
    name: topic.name,
    partitions: topic.partitions.map((entry) => {
      if (refusal !== 0) return { partitionIndex: entry.partitionIndex, errorCode: refusal };
      try {
        const topicRefusal = denied?.get(topic.name);
        if (topicRefusal !== undefined) throw topicRefusal;
        requirePartitionForCommit(context.broker, topic.name, entry.partitionIndex);
        if ((request.generationId as number) >= 0) context.broker.groups.checkCommit(groupId, request.memberId as string, request.generationId as number, topic.name, entry.partitionIndex, (request.groupInstanceId as string | null | undefined) ?? null);
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

/** The error every partition gets before any is looked at, or 0: the group id, and membership as Kafka checks it. */
function membershipRefusal(context: KafkaContext, groupId: string, generation: number): number {
  if (groupId === "") return KAFKA_ERROR.INVALID_GROUP_ID;
  const groups = context.broker.groups;
  if (generation >= 0) return groups.hasMembers(groupId) ? KAFKA_ERROR.NONE : KAFKA_ERROR.ILLEGAL_GENERATION;
  // A classic group is removed with its last member, so one that exists has members.
  return groups.classicGroup(groupId) === undefined ? KAFKA_ERROR.NONE : KAFKA_ERROR.UNKNOWN_MEMBER_ID;
}
