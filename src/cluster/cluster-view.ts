/**
 * @module cluster/cluster-view
 * The contract between Runnel's two cluster halves. The control plane (etcd: membership, the
 * controller, each partition's `{leader, leaderEpoch, isr}`) implements ClusterView; the data
 * plane (leader epochs in batches, follower fetching, high watermark, replicated acknowledgements)
 * reads it and asks it to change a partition's ISR. A single-node broker has no ClusterView
 * (`BrokerContext.cluster` is null) and behaves as it always has.
 *
 * Topic administration goes through the view too (createTopic, deleteTopic, alterTopicConfig,
 * createPartitions): the handlers of both listeners validate as on a single node, then ask the
 * view, which changes the cluster's store; every broker applies the change to its own log when its
 * view reports it (a `topic` event; cluster/local-replicas.ts). Handlers never ask which view
 * they have: etcd's in production, StaticClusterView in tests.
 */

/** How clients and followers reach one broker. */
export interface BrokerEndpoint {
  readonly brokerId: number;
  readonly host: string;
  /** Native protocol port (followers fetch here). */
  readonly port: number;
  /** Kafka listener port, or null when that broker has it off. */
  readonly kafkaPort: number | null;
  /** In controlled shutdown (leaving leaderships and ISRs before it stops); absent = no. */
  readonly draining?: boolean;
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
  /** A topic record was created or changed (its config or its partition count). */
  | { readonly kind: "topic"; readonly topic: string }
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
  /** Broker id of the controller, or null while there is none. */
  controllerId(): number | null;
  /** A cluster topic's config overrides (what createTopic and alterTopicConfig stored), or undefined. */
  topicConfig(topic: string): Readonly<Record<string, unknown>> | undefined;
  /**
   * Places the partitions over the live brokers and stores the topic with every partition's first
   * state (leader = first replica). TOPIC_EXISTS when the cluster has the name; INVALID_CONFIG when
   * the replication does not fit the live brokers. Resolves to each partition's replicas.
   */
  createTopic(topic: string, partitions: number, replication: TopicReplication, config: Record<string, unknown>): Promise<number[][]>;
  /** Removes the topic from the store; false when the cluster had no such topic. */
  deleteTopic(topic: string): Promise<boolean>;
  /**
   * Merges `config` into the topic's stored overrides (the caller validated the values).
   * UNKNOWN_TOPIC when the cluster has no such topic.
   */
  alterTopicConfig(topic: string, config: Record<string, unknown>): Promise<void>;
  /**
   * Grows the topic to `total` partitions, the new ones placed like createTopic's, in one change
   * compared with the topic's stored version. UNKNOWN_TOPIC; INVALID_PARTITIONS when `total` is
   * not above the stored count.
   */
  createPartitions(topic: string, total: number): Promise<void>;
  /** Every partition state known (etcd clusters; what on-demand leader elections read). */
  partitionStates?(): Iterable<{ topic: string; partition: number; state: PartitionState }>;
  /** Live brokers in controlled shutdown (etcd clusters). */
  drainingBrokerIds?(): ReadonlySet<number>;
  /** Leaves a preferred-leader election request for the controller; resolves to its withdrawal (etcd clusters). */
  requestElection?(request: { readonly topic?: string; readonly partitions?: readonly number[] }): Promise<() => Promise<void>>;
  /** Starts moving a partition to `target` replicas, or cancels the move (null); resolves to the state written (etcd clusters). */
  reassignPartition?(topic: string, partition: number, target: readonly number[] | null, replicationFactorMax: number): Promise<PartitionState>;
  /** Partitions with a reassignment in progress (etcd clusters). */
  reassignmentsInProgress?(): Array<{ topic: string; partition: number; state: PartitionState }>;
}

/** A view that can move partitions (what the reassignment handlers need). */
export type ReassigningView = ClusterView & Required<Pick<ClusterView, "reassignPartition" | "reassignmentsInProgress">>;

/** `view` when it can move partitions (cluster mode on etcd), else null. */
export function reassigningView(view: ClusterView | null): ReassigningView | null {
  return view !== null && view.reassignPartition !== undefined && view.reassignmentsInProgress !== undefined ? (view as ReassigningView) : null;
}
