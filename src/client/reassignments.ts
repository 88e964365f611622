/**
 * @module client/reassignments
 * Partition reassignment from a client (docs/protocol.md, alterPartitionReassignments and
 * listPartitionReassignments): move one partition, cancel a move, list the moves in progress,
 * and rebalance — read every partition's replicas and the live brokers from `metadata`, plan
 * with cluster/reassignment.ts's planRebalance (pure), then send one reassignment per partition
 * that moves. Works through any broker of a cluster (each writes to etcd).
 */
import { type PartitionAssignment, planRebalance, type RebalanceMove } from "../cluster/reassignment.ts";
import { RunnelError } from "../errors.ts";
import type { Admin } from "./admin.ts";
import { isMap, readArray, readInt, readMap, readString, type WireMap } from "./wire.ts";

export interface PartitionReassignment {
  readonly topic: string;
  readonly partition: number;
  readonly leader: number;
  readonly replicas: number[];
  readonly isr: number[];
  readonly addingReplicas: number[];
  readonly removingReplicas: number[];
}

/** Starts moving `topic`/`partition` to `replicas` (preferred leader first); null cancels the move in progress. */
export async function alterPartitionReassignment(admin: Admin, topic: string, partition: number, replicas: readonly number[] | null): Promise<PartitionReassignment> {
  const answer = await admin.connection.request("alterPartitionReassignments", { topic, partition, replicas: replicas === null ? null : [...replicas] });
  return readReassignment(answer, "alterPartitionReassignments");
}

export async function listPartitionReassignments(admin: Admin, topics?: readonly string[]): Promise<PartitionReassignment[]> {
  const answer = await admin.connection.request("listPartitionReassignments", topics === undefined ? {} : { topics: [...topics] });
  return readArray(answer.reassignments, "listPartitionReassignments", "reassignments").map((item, index) => readReassignment(readMap(item, "listPartitionReassignments", `reassignments[${index}]`), "listPartitionReassignments"));
}

/** The cluster's replica placement and live brokers, as `metadata` answers them. */
export async function readPlacement(admin: Admin): Promise<{ live: number[]; assignments: PartitionAssignment[] }> {
  const answer = await admin.connection.request("metadata", {});
  if (answer.brokers === undefined) throw new RunnelError("INVALID_REQUEST", "this broker is not in cluster mode (its metadata lists no brokers): there is nothing to rebalance");
  const live = readArray(answer.brokers, "metadata", "brokers").map((item, index) => readInt(readMap(item, "metadata", `brokers[${index}]`).brokerId, "metadata", `brokers[${index}].brokerId`));
  const assignments: PartitionAssignment[] = [];
  for (const [index, item] of readArray(answer.topics, "metadata", "topics").entries()) {
    const topic = readMap(item, "metadata", `topics[${index}]`);
    if (topic.partitions === undefined) continue; // an entry with an error
    const name = readString(topic.name, "metadata", `topics[${index}].name`);
    for (const entry of readArray(topic.partitions, "metadata", `topics[${index}].partitions`)) {
      if (!isMap(entry)) continue;
      const replicas = intList(entry.replicas, "metadata", "replicas");
      if (replicas.length > 0) assignments.push({ topic: name, partition: readInt(entry.partition, "metadata", "partition"), replicas });
    }
  }
  return { live, assignments };
}

/**
 * Plans a rebalance over the live brokers; unless `dryRun`, sends it. Refused while a
 * reassignment is in progress (its replica sets are not the final ones).
 */
export async function rebalance(admin: Admin, options: { dryRun: boolean }): Promise<RebalanceMove[]> {
  const running = await listPartitionReassignments(admin);
  if (running.length > 0) {
    throw new RunnelError("INVALID_REPLICA_ASSIGNMENT", `${running.length} reassignment(s) in progress (first: ${running[0]?.topic}/${running[0]?.partition}); wait for them to finish (runnel cluster status) or cancel them`);
  }
  const { live, assignments } = await readPlacement(admin);
  const moves = planRebalance(assignments, live);
  if (!options.dryRun) await Promise.all(moves.map((move) => alterPartitionReassignment(admin, move.topic, move.partition, move.to)));
  return moves;
}

function readReassignment(map: WireMap, op: string): PartitionReassignment {
  return {
    topic: readString(map.topic, op, "topic"),
    partition: readInt(map.partition, op, "partition"),
    leader: readInt(map.leader, op, "leader"),
    replicas: intList(map.replicas, op, "replicas"),
    isr: intList(map.isr, op, "isr"),
    addingReplicas: intList(map.addingReplicas, op, "addingReplicas"),
    removingReplicas: intList(map.removingReplicas, op, "removingReplicas"),
  };
}

function intList(value: unknown, op: string, field: string): number[] {
  if (value === undefined) return [];
  return readArray(value, op, field).map((item, index) => readInt(item, op, `${field}[${index}]`));
}
