/**
 * @module listeners/kafka/handlers/create-partitions
 * CreatePartitions (key 37), versions 0-3 (2+ flexible): grows each topic to `count` partitions,
 * each topic on its own, through the core operations the native `createPartitions` uses
 * (topic-rules.ts checks and admission, log.addPartitionsAsync; subscribed groups rebalance).
 * As Kafka: a count below the current one, or equal to it, is INVALID_PARTITIONS (37); a topic
 * named twice in one request is INVALID_REQUEST (42) for each; manual assignments must name
 * this node once per new partition (one node: [[0], [0]...]), else INVALID_REPLICA_ASSIGNMENT
 * (39). validateOnly checks everything and creates nothing. The broker's limits apply
 * (partitionsPerTopicMax: INVALID_PARTITIONS; partitionsMax: POLICY_VIOLATION; the creation rate:
 * THROTTLING_QUOTA_EXCEEDED, 89).
 * Cluster mode (docs/cluster.md): the current count is the cluster's; the new partitions are
 * placed by the cluster view (manual assignments: INVALID_REPLICA_ASSIGNMENT) and stored with the
 * new count in one change; every replica adds them; answered once this broker's view names their leaders.
 */
import { RunnelError } from "../../../errors.ts";
import { admitPartitions, checkPartitionCount, requireTopic } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { growTopicInCluster } from "../../../cluster/cluster-topic-admin.ts";

interface GrowTopic {
  name: string;
  count: number;
  assignments: Array<{ brokerIds: number[] }> | null;
}

export async function handleCreatePartitions(context: KafkaContext, request: KafkaStruct, _version: number): Promise<KafkaStruct> {
  const validateOnly = request.validateOnly === true;
  const topics = fieldAs<GrowTopic[]>(request.topics);
  const counts = new Map<string, number>();
  for (const topic of topics) counts.set(topic.name, (counts.get(topic.name) ?? 0) + 1);
  const results = await Promise.all(topics.map((topic) => growOne(context, topic, validateOnly, (counts.get(topic.name) ?? 0) > 1)));
  return { throttleTimeMs: 0, results };
}

async function growOne(context: KafkaContext, topic: GrowTopic, validateOnly: boolean, duplicate: boolean): Promise<KafkaStruct> {
  const answer = { name: topic.name, errorCode: 0, errorMessage: null as string | null };
  try {
    if (duplicate) throw new RunnelError("INVALID_REQUEST", `topic '${topic.name}' appears more than once in the request`);
    const broker = context.broker;
    const view = broker.cluster;
    const clustered = view?.partitionCount(topic.name);
    if (clustered === undefined) requireTopic(broker, topic.name);
    const current = clustered ?? broker.log.describeTopic(topic.name).partitions.length;
    if (topic.count < current) throw new RunnelError("INVALID_PARTITIONS", `topic '${topic.name}' has ${current} partitions, more than the ${topic.count} asked for: partitions are never removed`);
    if (topic.count === current) throw new RunnelError("INVALID_PARTITIONS", `topic '${topic.name}' already has ${current} partitions`);
    checkPartitionCount(broker, topic.count);
    const assignmentError = clustered === undefined ? checkAssignments(context, topic, topic.count - current) : topic.assignments === null ? null : "manual replica assignments are not supported in cluster mode: the cluster places new partitions";
    if (assignmentError !== null) return { ...answer, errorCode: KAFKA_ERROR.INVALID_REPLICA_ASSIGNMENT, errorMessage: assignmentError };
    if (validateOnly) return answer;
    admitPartitions(broker, topic.count - current);
    if (view !== null && clustered !== undefined) await growTopicInCluster(broker, view, topic.name, topic.count);
    else await broker.log.addPartitionsAsync(topic.name, topic.count);
    // Groups subscribed to it get the new partitions now, not at their next count check.
    broker.groups.topicsChanged();
    return answer;
  } catch (error) {
    return { ...answer, ...kafkaErrorOf(error) };
  }
}

/** Manual assignments: null, or one [this node] per new partition. Returns what is wrong, or null. */
function checkAssignments(context: KafkaContext, topic: GrowTopic, added: number): string | null {
  if (topic.assignments === null) return null;
  if (topic.assignments.length !== added) return `${topic.assignments.length} assignments for ${added} new partitions`;
  const alone = topic.assignments.every(({ brokerIds }) => brokerIds.length === 1 && brokerIds[0] === context.nodeId);
  return alone ? null : `this broker is one node: each new partition's replicas must be [${context.nodeId}]`;
}
