/**
 * @module cluster/offsets-topic
 * The internal topic that holds consumer groups' committed offsets in a cluster, and which of its
 * partitions a group belongs to. A group's coordinator is the leader of that partition.
 *
 * The hash is Kafka's: Java's `String.hashCode` of the group id (over UTF-16 code units,
 * `h = 31 * h + c` in 32-bit arithmetic), made non-negative with `& 0x7fffffff`, modulo the
 * partition count. It never changes: a group stays on its partition for the topic's life (the
 * partition count is fixed when the topic is created: `offsetsTopicPartitions`).
 */
import { RunnelError } from "../errors.ts";

export const OFFSETS_TOPIC = "__consumer_offsets";

/** Java's String.hashCode, as a signed 32-bit integer. */
export function javaStringHash(text: string): number {
  let hash = 0;
  for (let index = 0; index < text.length; index += 1) hash = (Math.imul(hash, 31) + text.charCodeAt(index)) | 0;
  return hash;
}

/** The partition of `__consumer_offsets` holding `group` (Kafka's `abs(hashCode) % n`, abs being `& 0x7fffffff`). */
export function offsetsPartitionOf(group: string, partitions: number): number {
  return (javaStringHash(group) & 0x7fffffff) % partitions;
}

export function isInternalTopic(topic: string): boolean {
  return topic === OFFSETS_TOPIC;
}

/** INVALID_TOPIC_NAME for a user's create, delete or write of the internal topic. */
export function refuseInternalTopic(topic: string, what: string): void {
  if (isInternalTopic(topic)) {
    throw new RunnelError("INVALID_TOPIC_NAME", `'${topic}' is the broker's internal topic for consumer groups' offsets; it cannot be ${what} by clients`);
  }
}
