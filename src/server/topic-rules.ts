/**
 * @module server/topic-rules
 * The broker's rules about topics, shared by the handlers: the name rule, the configured topic
 * and partition limits, admission of creates (partitionsMax, the creation rate), auto-creation,
 * and the wire shape of a topic description.
 */
import { RunnelError } from "../errors.ts";
import type { Partition, TopicDescription } from "../log/api.ts";
import { validateTopicName } from "../log/topic-config.ts";
import type { WireTopicDescription } from "../protocol/messages.ts";
import type { BrokerContext } from "./context.ts";
import { OFFSETS_TOPIC, refuseInternalTopic } from "../cluster/offsets-topic.ts";

/** The name rule, one for every operation: INVALID_TOPIC_NAME unless 1-249 chars of [a-zA-Z0-9._-], not "." or "..". */
export function checkTopicName(name: string): void {
  validateTopicName(name);
}

/**
 * Throws UNKNOWN_TOPIC for a missing topic — or INVALID_TOPIC_NAME when its name breaks the rule,
 * so that every operation answers an invalid name alike. An existing topic's name is valid, so
 * the rule is checked only on this cold path.
 */
export function requireTopic(context: BrokerContext, topic: string): void {
  if (context.log.hasTopic(topic)) return;
  checkTopicName(topic);
  throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}'`);
}

/**
 * The partition of an existing topic; UNKNOWN_TOPIC, INVALID_TOPIC_NAME or UNKNOWN_PARTITION
 * otherwise. The name rule runs only when the lookup failed (fetch calls this per partition).
 */
export function findPartition(context: BrokerContext, topic: string, partition: number): Partition {
  try {
    return context.log.partition(topic, partition);
  } catch (error) {
    if (!context.log.hasTopic(topic)) checkTopicName(topic);
    // Cluster mode: the cluster has the partition and this broker has no copy of it (no replica
    // here, or its copy is still being created), so it leads it not (retriable: re-read the leaders).
    if (clusterHasPartition(context, topic, partition)) {
      throw new RunnelError("NOT_LEADER", `this broker holds no copy of ${topic}-${partition}; refresh metadata and send to its leader`, { cause: error });
    }
    throw error;
  }
}

/** Cluster mode: the view has `partition` of `topic` (this broker's log may not have it yet). */
function clusterHasPartition(context: BrokerContext, topic: string, partition: number): boolean {
  const count = context.cluster?.partitionCount(topic);
  return count !== undefined && Number.isInteger(partition) && partition >= 0 && partition < count;
}

/**
 * That the partition exists, for a commit: in a cluster the coordinator need not hold a replica
 * of the topic, so the cluster's partition count answers when the local log has no copy.
 * UNKNOWN_TOPIC, INVALID_TOPIC_NAME or UNKNOWN_PARTITION otherwise, as findPartition.
 */
export function requirePartitionForCommit(context: BrokerContext, topic: string, partition: number): void {
  if (!context.log.hasTopic(topic)) {
    const count = context.cluster?.partitionCount(topic);
    if (count !== undefined && partition >= 0 && partition < count) return;
    if (count !== undefined) throw new RunnelError("UNKNOWN_PARTITION", `topic '${topic}' has ${count} partitions; there is no partition ${partition}`);
  }
  findPartition(context, topic, partition);
}

export function checkPartitionCount(context: BrokerContext, partitions: number): void {
  const max = context.config.partitionsPerTopicMax;
  if (partitions < 1 || partitions > max) {
    throw new RunnelError("INVALID_PARTITIONS", `partition count ${partitions} is outside 1..${max}`, { details: { partitionsPerTopicMax: max } });
  }
}

export function checkTopicRoom(context: BrokerContext): void {
  const max = context.config.topicsMax;
  if (context.log.topicsTotal >= max) {
    throw new RunnelError("LIMIT_EXCEEDED", `the broker holds at most ${max} topics`, { details: { topicsMax: max } });
  }
}

/**
 * Admits the creation of `partitions` new partitions: within partitionsMax (counting those being
 * created) and the creation rate (THROTTLED). Takes the rate's tokens; call it last.
 */
export function admitPartitions(context: BrokerContext, partitions: number): void {
  const max = context.config.partitionsMax;
  if (context.log.partitionsTotal + partitions > max) {
    throw new RunnelError("LIMIT_EXCEEDED", `the broker holds at most ${max} partitions (it has ${context.log.partitionsTotal})`, { details: { partitionsMax: max } });
  }
  context.createQuota.take(partitions);
}

/** Why `topic` may not be auto-created by this request, as an error to throw; checks in cost order. */
export function admitAutoCreate(context: BrokerContext, topic: string): void {
  checkTopicName(topic);
  refuseInternalTopic(topic, "created");
  if (!context.config.autoCreateTopics) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}' (auto-creation is off; create it with 'runnel topics create')`);
  checkTopicRoom(context);
  admitPartitions(context, context.config.defaultPartitions);
}

/** The partition; a missing topic is UNKNOWN_TOPIC (produce creates topics before it appends). */
export function partitionForProduce(context: BrokerContext, topic: string, partition: number): Partition {
  // Only the group coordinators write the internal topic (cluster/replicated-offsets.ts).
  if (topic === OFFSETS_TOPIC) refuseInternalTopic(topic, "written");
  if (!context.log.hasTopic(topic)) {
    // The name rule first, so an invalid name is INVALID_TOPIC_NAME whether or not auto-creation is on.
    checkTopicName(topic);
    if (clusterHasPartition(context, topic, partition)) {
      throw new RunnelError("NOT_LEADER", `this broker holds no copy of ${topic}-${partition}; refresh metadata and send to its leader`);
    }
    if (!context.config.autoCreateTopics) {
      throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}' (auto-creation is off; create it with 'runnel topics create')`);
    }
    return context.log.partition(topic, partition);
  }
  // A partition the cluster added that this broker has not created yet is not UNKNOWN_PARTITION.
  if (context.cluster !== null && clusterHasPartition(context, topic, partition)) return findPartition(context, topic, partition);
  return context.log.partition(topic, partition);
}

export function toWireTopic(description: TopicDescription): WireTopicDescription {
  return {
    name: description.name,
    partitions: description.partitions.map((info) => ({
      partition: info.partition,
      logStartOffset: info.logStartOffset,
      nextOffset: info.nextOffset,
      sizeBytes: info.sizeBytes,
      segmentCount: info.segmentCount,
    })),
    config: { ...description.config },
  };
}
