/**
 * @module cluster/cluster-reassignments
 * The etcd side of partition reassignments: starting or cancelling one is a read of the
 * partition's record and a txn that writes the new record only if the key's mod revision is still
 * the one read (a controller or leader write in between makes it read and decide again, a bounded
 * number of times). What the record becomes is cluster/reassignment.ts's pure startReassignment.
 */
import { RunnelError } from "../errors.ts";
import type { PartitionState } from "./cluster-view.ts";
import type { EtcdGateway } from "./etcd-gateway.ts";
import { decodeRecord, encodePartition, type EtcdLayout, partitionRecordSchema } from "./etcd-layout.ts";
import { type ReassignmentRules, startReassignment } from "./reassignment.ts";

/** Reads and compare-and-swaps this many times at most before giving up on a busy partition. */
export const REASSIGN_ATTEMPTS_MAX = 8;

/** Writes the reassignment of `topic`/`partition` to `target` (null: cancel); the state written. */
export async function writeReassignment(
  gateway: EtcdGateway,
  layout: EtcdLayout,
  topic: string,
  partition: number,
  target: readonly number[] | null,
  rules: ReassignmentRules,
): Promise<PartitionState> {
  const key = layout.partitionKey(topic, partition);
  for (let attempt = 0; attempt < REASSIGN_ATTEMPTS_MAX; attempt++) {
    const listed = await gateway.range(key);
    const kv = listed.kvs[0];
    const record = kv === undefined ? undefined : decodeRecord(partitionRecordSchema, kv.value);
    if (kv === undefined || record === undefined) throw new RunnelError("UNKNOWN_PARTITION", `the cluster has no partition ${topic}/${partition}`);
    const next = startReassignment({ ...record, version: kv.modRevision }, target, rules, `${topic}/${partition}`);
    const result = await gateway.txn([{ key, target: "modRevision", result: "equal", value: kv.modRevision }], [{ op: "put", key, value: encodePartition(next) }]);
    if (result.succeeded) return { ...next, version: result.revision };
  }
  throw new RunnelError("CLUSTER_UNAVAILABLE", `${topic}/${partition} changed ${REASSIGN_ATTEMPTS_MAX} times while the reassignment was being written; try again`);
}
