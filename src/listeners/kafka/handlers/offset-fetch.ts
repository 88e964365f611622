/**
 * @module listeners/kafka/handlers/offset-fetch
 * OffsetFetch (key 9), versions 1-7 (6+ flexible). A group's committed offsets from the store
 * native commits share (broker/offset-store.ts): offset -1 and null metadata where nothing is
 * committed; topics null (v2+) means every offset the group committed. No transactions, so
 * requireStable (v7) changes nothing. One group per request (v8's batched form is not served).
 */
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";

interface FetchTopic {
  name: string;
  partitionIndexes: number[];
}

export function handleOffsetFetch(context: KafkaContext, request: KafkaStruct, _version: number): KafkaStruct {
  const groupId = request.groupId as string;
  const offsets = context.broker.offsets;
  const requested = fieldAs<FetchTopic[] | null>(request.topics);
  const wanted: FetchTopic[] = requested ?? groupByTopic(offsets.fetchAll(groupId));
  const topics = wanted.map((topic) => ({
    name: topic.name,
    partitions: topic.partitionIndexes.map((partitionIndex) => {
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
