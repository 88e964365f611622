/**
 * @module listeners/kafka/handlers/offset-fetch
 * OffsetFetch (key 9), versions 1-7 (6+ flexible). A group's committed offsets from the store
 * native commits share (broker/offset-store.ts): offset -1 and null metadata where nothing is
 * committed; topics null (v2+) means every offset the group committed. No transactions, so
 * requireStable (v7) changes nothing. One group per request (v8's batched form is not served).
 */
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { authorize, isAuthorizationOn, topicResource } from "../../../security/authorizer.ts";
import { coordinatorCode } from "../coordinator-check.ts";

interface FetchTopic {
  name: string;
  partitionIndexes: number[];
}

/**
 * Needs describe on the group (GROUP_AUTHORIZATION_FAILED); a named topic the principal may not
 * describe gets TOPIC_AUTHORIZATION_FAILED on its partitions, and "every topic" leaves such topics out.
 */
export function handleOffsetFetch(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const groupId = request.groupId as string;
  const offsets = context.broker.offsets;
  const requested = fieldAs<FetchTopic[] | null>(request.topics);
  const groupDenied = groupAccessCode(context, info, "describe", groupId);
  if (groupDenied !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, topics: [], errorCode: groupDenied };
  const notHere = coordinatorCode(context, groupId);
  if (notHere !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, topics: [], errorCode: notHere };
  const describable = (topic: string) => !isAuthorizationOn(context.broker) || authorize(context.broker, info.session, "describe", topicResource(topic));
  const wanted: FetchTopic[] = requested ?? groupByTopic(offsets.fetchAll(groupId)).filter((topic) => describable(topic.name));
  const topics = wanted.map((topic) => ({
    name: topic.name,
    partitions: topic.partitionIndexes.map((partitionIndex) => {
      if (!describable(topic.name)) return { partitionIndex, committedOffset: -1, committedLeaderEpoch: -1, metadata: null, errorCode: KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED };
      const committed = offsets.fetch(groupId, topic.name, partitionIndex);
      return { partitionIndex, committedOffset: committed?.offset ?? -1, committedLeaderEpoch: -1, metadata: committed === null ? null : committed.metadata, errorCode: 0 };
    }),
  }));
  return { throttleTimeMs: 0, topics, errorCode: 0 };
}

function groupByTopic(entries: Array<{ topic: string; partition: number }>): FetchTopic[] {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of entries) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  return [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes }));
}
