/**
 * @module listeners/kafka/handlers/partition-reassignments
 * AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), version 0 each
 * (flexible; capped: v1 of 45 only adds allowReplicationFactorChange, and a count change is always
 * allowed here). The native ops' core (cluster/reassignment.ts, ClusterView.reassignPartition;
 * docs/cluster.md "Adding a broker and moving partitions"): each partition is written to etcd on
 * its own and answered with its own code; `replicas: null` cancels.
 * Codes: INVALID_REPLICA_ASSIGNMENT (39) for an empty list, a broker twice, a broker not live, fewer
 * than minInsyncReplicas; NO_REASSIGNMENT_IN_PROGRESS (85) for a cancel with nothing to cancel;
 * UNKNOWN_TOPIC_OR_PARTITION (3). Not in cluster mode: INVALID_REQUEST (42) at the top level.
 * Authorization: alter (45) / describe (46) on the cluster, else CLUSTER_AUTHORIZATION_FAILED (31)
 * at the top level, as Kafka. Any broker answers (Kafka sends them to its controller).
 */
import { reassigningView, type ReassigningView } from "../../../cluster/cluster-view.ts";
import { isReassigning } from "../../../cluster/reassignment.ts";
import { WIRE_LIMITS } from "../../../protocol/messages.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import { clusterAccessCode } from "../access.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

interface AlterTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; replicas: number[] | null }>;
}

const NOT_A_CLUSTER = "partition reassignment needs cluster mode (runnel serve --cluster etcd://...)";

export async function handleAlterPartitionReassignments(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const topics = fieldAs<AlterTopic[]>(request.topics);
  const refused = topLevelRefusal(context, info, "alter");
  if (refused !== null) {
    return { throttleTimeMs: 0, ...refused, responses: topics.map((topic) => ({ name: topic.name, partitions: topic.partitions.map((entry) => ({ partitionIndex: entry.partitionIndex, errorCode: refused.errorCode, errorMessage: null })) })) };
  }
  const view = reassigningView(context.broker.cluster) as ReassigningView;
  const responses = await Promise.all(
    topics.map(async (topic) => ({
      name: topic.name,
      partitions: await Promise.all(topic.partitions.map((entry) => alterOne(view, topic.name, entry.partitionIndex, entry.replicas))),
    })),
  );
  return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, responses };
}

async function alterOne(view: ReassigningView, topic: string, partition: number, replicas: number[] | null): Promise<KafkaStruct> {
  const answer = { partitionIndex: partition, errorCode: 0, errorMessage: null as string | null };
  const state = view.partitionState(topic, partition);
  if (replicas === null && state !== undefined && !isReassigning(state)) {
    return { ...answer, errorCode: KAFKA_ERROR.NO_REASSIGNMENT_IN_PROGRESS, errorMessage: `${topic}/${partition} has no reassignment in progress` };
  }
  try {
    await view.reassignPartition(topic, partition, replicas, WIRE_LIMITS.replicationFactorMax);
    return answer;
  } catch (error) {
    return { ...answer, ...kafkaErrorOf(error) };
  }
}

export function handleListPartitionReassignments(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const refused = topLevelRefusal(context, info, "describe");
  if (refused !== null) return { throttleTimeMs: 0, ...refused, topics: [] };
  const view = reassigningView(context.broker.cluster) as ReassigningView;
  const wanted = fieldAs<Array<{ name: string; partitionIndexes: number[] }> | null>(request.topics);
  const byTopic = new Map<string, KafkaStruct[]>();
  for (const { topic, partition, state } of view.reassignmentsInProgress()) {
    if (wanted !== null && !wanted.some((entry) => entry.name === topic && entry.partitionIndexes.includes(partition))) continue;
    const entries = byTopic.get(topic) ?? [];
    entries.push({ partitionIndex: partition, replicas: [...state.replicas], addingReplicas: [...(state.addingReplicas ?? [])], removingReplicas: [...(state.removingReplicas ?? [])] });
    byTopic.set(topic, entries);
  }
  const topics = [...byTopic].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)).map(([name, partitions]) => ({ name, partitions }));
  return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, topics };
}

/** CLUSTER_AUTHORIZATION_FAILED, or INVALID_REQUEST outside cluster mode; null when the request may go on. */
function topLevelRefusal(context: KafkaContext, info: KafkaRequestInfo, operation: "alter" | "describe"): { errorCode: number; errorMessage: string | null } | null {
  const access = clusterAccessCode(context, info, operation);
  if (access !== KAFKA_ERROR.NONE) return { errorCode: access, errorMessage: null };
  if (reassigningView(context.broker.cluster) === null) return { errorCode: KAFKA_ERROR.INVALID_REQUEST, errorMessage: NOT_A_CLUSTER };
  return null;
}
