/**
 * @module cluster/cluster-status
 * A cluster's state read straight from etcd, for `runnel cluster status`: live brokers, the
 * controller, topics, and the partitions that need attention (under-replicated: ISR smaller than
 * the replica set; offline: no leader), being moved to other brokers (a reassignment in progress,
 * cluster/reassignment.ts), brokers in controlled shutdown (draining) and partitions not led by
 * their preferred leader. One consistent range read of the cluster's prefix.
 */
import type { BrokerEndpoint, PartitionState } from "./cluster-view.ts";
import type { EtcdGateway } from "./etcd-gateway.ts";
import { preferredStatus } from "./leader-balance.ts";
import { isReassigning, targetReplicas } from "./reassignment.ts";
import { brokerRecordSchema, controllerRecordSchema, decodeRecord, type EtcdLayout, partitionRecordSchema, topicRecordSchema, type TopicRecord } from "./etcd-layout.ts";

export interface PartitionStatus extends PartitionState {
  readonly topic: string;
  readonly partition: number;
}

export interface ClusterStatus {
  readonly cluster: string;
  /** etcd's revision the status was read at. */
  readonly revision: number;
  readonly brokers: readonly BrokerEndpoint[];
  readonly controller: number | null;
  readonly topics: ReadonlyArray<{ readonly name: string } & TopicRecord>;
  readonly partitions: number;
  /** ISR smaller than the replica set (a partition being moved counts only its target replicas). */
  readonly underReplicated: readonly PartitionStatus[];
  readonly offline: readonly PartitionStatus[];
  /** Live brokers in controlled shutdown. */
  readonly draining: readonly number[];
  /** Led partitions whose leader is not their preferred one (`replicas[0]`); `electable`: it could take over now. */
  readonly notPreferred: ReadonlyArray<PartitionStatus & { readonly electable: boolean }>;
  /** Partitions with a reassignment in progress. */
  readonly reassigning: readonly PartitionStatus[];
}

/** The raw state behind a status: every record, partitions sorted by topic then number. */
export interface ClusterState {
  readonly revision: number;
  readonly brokers: readonly BrokerEndpoint[];
  readonly controller: number | null;
  readonly topics: ReadonlyArray<{ readonly name: string } & TopicRecord>;
  readonly partitions: readonly PartitionStatus[];
}

export async function readClusterStatus(gateway: EtcdGateway, layout: EtcdLayout): Promise<ClusterStatus> {
  const { revision, brokers, controller, topics, partitions } = await readClusterState(gateway, layout);
  const live = new Set(brokers.map((broker) => broker.brokerId));
  const draining = new Set(brokers.filter((broker) => broker.draining === true).map((broker) => broker.brokerId));
  return {
    cluster: layout.cluster,
    revision,
    brokers,
    controller,
    topics,
    partitions: partitions.length,
    underReplicated: partitions.filter((state) => targetReplicas(state).some((id) => !state.isr.includes(id))),
    offline: partitions.filter((state) => state.leader === -1),
    reassigning: partitions.filter((state) => isReassigning(state)),
    draining: [...draining],
    notPreferred: partitions.filter((state) => state.leader !== -1 && state.leader !== state.replicas[0]).map((state) => ({ ...state, electable: preferredStatus(state, live, draining) === "electable" })),
  };
}

export async function readClusterState(gateway: EtcdGateway, layout: EtcdLayout): Promise<ClusterState> {
  const listed = await gateway.range(layout.prefix, { prefix: true });
  const brokers: BrokerEndpoint[] = [];
  const topics: Array<{ name: string } & TopicRecord> = [];
  const partitions: PartitionStatus[] = [];
  let controller: number | null = null;
  for (const kv of listed.kvs) {
    const key = layout.parse(kv.key);
    if (key.kind === "broker") {
      const record = decodeRecord(brokerRecordSchema, kv.value);
      if (record !== undefined) brokers.push(record);
    } else if (key.kind === "controller") {
      controller = decodeRecord(controllerRecordSchema, kv.value)?.brokerId ?? null;
    } else if (key.kind === "topic") {
      const record = decodeRecord(topicRecordSchema, kv.value);
      if (record !== undefined) topics.push({ name: key.topic, ...record });
    } else if (key.kind === "partition") {
      const record = decodeRecord(partitionRecordSchema, kv.value);
      if (record !== undefined) partitions.push({ topic: key.topic, partition: key.partition, ...record, version: kv.modRevision });
    }
  }
  partitions.sort((left, right) => (left.topic === right.topic ? left.partition - right.partition : left.topic < right.topic ? -1 : 1));
  return { revision: listed.revision, brokers: brokers.sort((left, right) => left.brokerId - right.brokerId), controller, topics, partitions };
}
