/**
 * @module cluster/cluster-view
 * The contract between Runnel's two cluster halves. The control plane (etcd: membership, the
 * controller, each partition's `{leader, leaderEpoch, isr}`) implements ClusterView; the data
 * plane (leader epochs in batches, follower fetching, high watermark, replicated acknowledgements)
 * reads it and asks it to change a partition's ISR. A single-node broker has no ClusterView
 * (`BrokerContext.cluster` is null) and behaves as it always has.
 */

/** How clients and followers reach one broker. */
export interface BrokerEndpoint {
  readonly brokerId: number;
  readonly host: string;
  /** Native protocol port (followers fetch here). */
  readonly port: number;
  /** Kafka listener port, or null when that broker has it off. */
  readonly kafkaPort: number | null;
}

/** One partition's replication state, as the store holds it. */
export interface PartitionState {
  /** Broker id of the leader; -1 while there is none. */
  readonly leader: number;
  /** Raised by the controller each time the leader changes. */
  readonly leaderEpoch: number;
  /** In-sync replicas (always includes the leader while there is one; never emptied). */
  readonly isr: readonly number[];
  /** Every assigned replica, preferred leader first. */
  readonly replicas: readonly number[];
  /** A reassignment in progress (cluster/reassignment.ts): target replicas not yet in the original set. */
  readonly addingReplicas?: readonly number[];
  /** A reassignment in progress: replicas that leave once every target replica is in the ISR. */
  readonly removingReplicas?: readonly number[];
  /** The store's version of this state (etcd mod revision): what a compare-and-swap compares. */
  readonly version: number;
}

export interface TopicReplication {
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
}

export type ClusterEvent =
  | { readonly kind: "partition"; readonly topic: string; readonly partition: number; readonly state: PartitionState }
  | { readonly kind: "topicDeleted"; readonly topic: string }
  | { readonly kind: "brokers"; readonly brokers: readonly BrokerEndpoint[] }
  /** This broker may no longer lead (lease lost or about to be, event loop stalled): stop acknowledging. */
  | { readonly kind: "fenced" }
  | { readonly kind: "unfenced" };

export interface ClusterView {
  readonly brokerId: number;
  /** Live brokers (those whose membership key is on a live lease). */
  brokers(): readonly BrokerEndpoint[];
  partitionState(topic: string, partition: number): PartitionState | undefined;
  topicReplication(topic: string): TopicReplication | undefined;
  /** Every topic the cluster has (the store's topic records), sorted: what metadata lists. */
  topicNames(): readonly string[];
  /** A cluster topic's partition count, or undefined when the store has no such topic. */
  partitionCount(topic: string): number | undefined;
  /** Calls `listener` for each change from now on; returns the unsubscribe function. */
  subscribe(listener: (event: ClusterEvent) => void): () => void;
  /**
   * The leader asks to set the ISR of a partition it leads. Resolves to the new state, or null
   * when `expected` is no longer the stored state (re-read and decide again).
   */
  proposeIsr(topic: string, partition: number, expected: PartitionState, isr: readonly number[]): Promise<PartitionState | null>;
  /** False from the moment this broker must stop acting as a leader until it is safely back. */
  mayLead(): boolean;
}
