/**
 * @module cluster/cluster-topics
 * Topics in cluster mode: where each partition's replicas go, and the etcd writes that create or
 * delete a topic. Creation is one txn on the topic key being absent (a second create of the same
 * name gets TOPIC_EXISTS), carrying the topic record and its partitions' first states (leader =
 * first replica, epoch 0, ISR = every replica: every log is empty, so every one is in sync). A
 * topic with more partitions than fit in one etcd txn writes the rest in further txns that
 * compare the topic key's create revision (a topic deleted and made again meanwhile is not touched).
 *
 * A change of an existing topic (its config, its partition count) is read-modify-write of the
 * topic record: read the key, compute the new record, write it in a txn comparing the key's
 * mod revision (a concurrent change is read again and applied on top, a few times at most).
 * createPartitions puts the new partitions' first states in that same txn, so a replica never
 * sees a count without its partitions' placement.
 */
import { RunnelError } from "../errors.ts";
import { ETCD_TXN_OPS_MAX, type EtcdGateway, type TxnOp } from "./etcd-gateway.ts";
import { decodeRecord, encodePartition, type EtcdLayout, type TopicRecord, topicRecordSchema } from "./etcd-layout.ts";

/**
 * Replicas of each partition: round-robin over the live brokers (sorted by id), starting at
 * `startIndex` (rotated per topic so that first replicas, the preferred leaders, spread), the
 * followers of a partition being the next brokers in the ring.
 */
export function placeReplicas(liveBrokerIds: readonly number[], partitions: number, replicationFactor: number, startIndex: number): number[][] {
  const brokers = [...liveBrokerIds].sort((left, right) => left - right);
  if (replicationFactor > brokers.length) {
    throw new RunnelError("INVALID_CONFIG", `replication factor ${replicationFactor} is more than the ${brokers.length} live broker(s); start more brokers or lower --replication-factor`);
  }
  return Array.from({ length: partitions }, (_, partition) =>
    Array.from({ length: replicationFactor }, (_, replica) => brokers[(startIndex + partition + replica) % brokers.length] as number),
  );
}

/** Writes the topic and its partitions; TOPIC_EXISTS when the name is taken. */
export async function createClusterTopic(gateway: EtcdGateway, layout: EtcdLayout, topic: string, record: TopicRecord, replicas: readonly (readonly number[])[]): Promise<void> {
  const topicKey = layout.topicKey(topic);
  const partitionOps: TxnOp[] = replicas.map((assigned, partition) => ({
    op: "put",
    key: layout.partitionKey(topic, partition),
    value: encodePartition({ leader: assigned[0] as number, leaderEpoch: 0, isr: assigned, replicas: assigned }),
  }));
  const perTxn = ETCD_TXN_OPS_MAX - 2;
  const first = await gateway.txn(
    [{ key: topicKey, target: "createRevision", result: "equal", value: 0 }],
    [{ op: "put", key: topicKey, value: JSON.stringify(record) }, ...partitionOps.slice(0, perTxn)],
  );
  if (!first.succeeded) throw new RunnelError("TOPIC_EXISTS", `topic ${topic} already exists in the cluster`);
  for (let start = perTxn; start < partitionOps.length; start += perTxn) {
    const next = await gateway.txn([{ key: topicKey, target: "createRevision", result: "equal", value: first.revision }], partitionOps.slice(start, start + perTxn));
    if (!next.succeeded) throw new RunnelError("UNKNOWN_TOPIC", `topic ${topic} was deleted while it was being created`);
  }
}

/** Deletes the topic record and every partition state; false when there was no such topic. */
export async function deleteClusterTopic(gateway: EtcdGateway, layout: EtcdLayout, topic: string): Promise<boolean> {
  const topicKey = layout.topicKey(topic);
  const result = await gateway.txn(
    [{ key: topicKey, target: "createRevision", result: "greater", value: 0 }],
    [
      { op: "delete", key: `${topicKey}/`, prefix: true },
      { op: "delete", key: topicKey },
    ],
  );
  return result.succeeded;
}

/** Read-modify-write attempts before a topic change under constant contention gives up. */
const TOPIC_CHANGE_ATTEMPTS_MAX = 5;

/** What a topic change writes besides the new record: the new partitions' first states. */
export interface TopicChange {
  readonly record: TopicRecord;
  readonly partitionOps?: readonly TxnOp[];
}

/**
 * Applies `change` to the stored topic record in a txn comparing its mod revision; a lost race is
 * read again and retried. UNKNOWN_TOPIC when there is no such topic; `change` throws to refuse.
 */
export async function changeClusterTopic(gateway: EtcdGateway, layout: EtcdLayout, topic: string, change: (current: TopicRecord) => TopicChange): Promise<TopicRecord> {
  const topicKey = layout.topicKey(topic);
  for (let attempt = 1; attempt <= TOPIC_CHANGE_ATTEMPTS_MAX; attempt += 1) {
    const { kvs } = await gateway.range(topicKey);
    const stored = kvs[0];
    const current = stored === undefined ? undefined : decodeRecord(topicRecordSchema, stored.value);
    if (stored === undefined || current === undefined) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}' in the cluster`);
    const next = change(current);
    const ops = [{ op: "put" as const, key: topicKey, value: JSON.stringify(next.record) }, ...(next.partitionOps ?? [])];
    if (ops.length > ETCD_TXN_OPS_MAX) throw new RunnelError("INVALID_PARTITIONS", `at most ${ETCD_TXN_OPS_MAX - 1} partitions can be added in one createPartitions in cluster mode; grow the topic in steps`);
    const result = await gateway.txn([{ key: topicKey, target: "modRevision", result: "equal", value: stored.modRevision }], ops);
    if (result.succeeded) return next.record;
  }
  throw new RunnelError("CLUSTER_UNAVAILABLE", `topic ${topic} changed ${TOPIC_CHANGE_ATTEMPTS_MAX} times while this change was being written; retry`);
}

/** The new partitions' first states for a topic grown from `replicas.length` existing ones: leader = first replica. */
export function newPartitionOps(layout: EtcdLayout, topic: string, firstPartition: number, replicas: readonly (readonly number[])[]): TxnOp[] {
  return replicas.map((assigned, index) => ({
    op: "put",
    key: layout.partitionKey(topic, firstPartition + index),
    value: encodePartition({ leader: assigned[0] as number, leaderEpoch: 0, isr: assigned, replicas: assigned }),
  }));
}
