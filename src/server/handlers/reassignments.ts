/**
 * @module server/handlers/reassignments
 * Partition reassignment in cluster mode (docs/protocol.md, alterPartitionReassignments and
 * listPartitionReassignments; docs/cluster.md, "Adding a broker and moving partitions").
 * `alterPartitionReassignments {topic, partition, replicas}` writes the move to etcd (a txn on
 * the partition record's version, cluster/cluster-reassignments.ts) and answers the record
 * written; the controller completes it once the new replicas are in the ISR. `replicas: null`
 * cancels the move in progress. `listPartitionReassignments` answers the moves in progress.
 * Authorization: alter on the cluster to move, describe on the cluster to list (as in Kafka).
 * Non-obvious: a single node (no --cluster) answers INVALID_REQUEST: there is nowhere to move to.
 */
import { type PartitionState, reassigningView, type ReassigningView } from "../../cluster/cluster-view.ts";
import { RunnelError } from "../../errors.ts";
import { type RequestOf, WIRE_LIMITS } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import { requireClusterAccess } from "../access.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

export async function handleAlterPartitionReassignments(context: BrokerContext, request: RequestOf<"alterPartitionReassignments">, id: number, session: Session): Promise<Reply> {
  requireClusterAccess(context, session, "alter");
  const view = etcdView(context);
  const state = await view.reassignPartition(request.topic, request.partition, request.replicas, WIRE_LIMITS.replicationFactorMax);
  context.logger.info({ principal: session.principal.name, topic: request.topic, partition: request.partition, target: request.replicas, replicas: state.replicas }, request.replicas === null ? "partition reassignment cancelled" : "partition reassignment started");
  return frameReply(id, { topic: request.topic, partition: request.partition, ...wireState(state) });
}

export function handleListPartitionReassignments(context: BrokerContext, request: RequestOf<"listPartitionReassignments">, id: number, session: Session): Reply {
  requireClusterAccess(context, session, "describe");
  const view = etcdView(context);
  const wanted = request.topics === undefined ? null : new Set(request.topics);
  const reassignments = view
    .reassignmentsInProgress()
    .filter(({ topic }) => wanted === null || wanted.has(topic))
    .sort((left, right) => (left.topic === right.topic ? left.partition - right.partition : left.topic < right.topic ? -1 : 1))
    .map(({ topic, partition, state }) => ({ topic, partition, ...wireState(state) }));
  return frameReply(id, { reassignments });
}

function etcdView(context: BrokerContext): ReassigningView {
  const view = reassigningView(context.cluster);
  if (view !== null) return view;
  throw new RunnelError("INVALID_REQUEST", "partition reassignment needs cluster mode (runnel serve --cluster etcd://...)");
}

function wireState(state: PartitionState): Record<string, number | number[]> {
  return {
    leader: state.leader,
    leaderEpoch: state.leaderEpoch,
    replicas: [...state.replicas],
    isr: [...state.isr],
    addingReplicas: [...(state.addingReplicas ?? [])],
    removingReplicas: [...(state.removingReplicas ?? [])],
  };
}
