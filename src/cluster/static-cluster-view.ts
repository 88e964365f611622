/**
 * @module cluster/static-cluster-view
 * A ClusterView whose state is set by code: the data plane's tests (and tools) run several
 * in-process brokers whose views share one `StaticClusterState`, change a partition's leader,
 * epoch or ISR with `setPartition`, fence a broker, and every view emits the events the etcd
 * implementation would. proposeIsr is a compare-and-swap on the state's version, like etcd's.
 * Topic administration (createTopic, createPartitions, alterTopicConfig, deleteTopic) changes the
 * shared state with etcd's rules (placement, TOPIC_EXISTS, growing only) and emits the same
 * events; the controller is the live broker with the lowest id unless a test sets one.
 */
import { RunnelError } from "../errors.ts";
import { placeReplicas } from "./cluster-topics.ts";
import type { BrokerEndpoint, ClusterEvent, ClusterView, PartitionState, TopicReplication } from "./cluster-view.ts";

/** What every view of one static cluster shares. */
export class StaticClusterState {
  private readonly brokerList = new Map<number, BrokerEndpoint>();
  private readonly partitions = new Map<string, PartitionState>();
  private readonly topics = new Map<string, TopicReplication>();
  private readonly configs = new Map<string, Record<string, unknown>>();
  private readonly views = new Set<StaticClusterView>();
  private version = 0;
  /** Set by tests; null: the live broker with the lowest id. */
  controller: number | null = null;

  /** A view for broker `brokerId` (its events start with the next change). */
  viewFor(brokerId: number): StaticClusterView {
    const view = new StaticClusterView(this, brokerId);
    this.views.add(view);
    return view;
  }

  setBroker(endpoint: BrokerEndpoint): void {
    this.brokerList.set(endpoint.brokerId, endpoint);
    this.emit({ kind: "brokers", brokers: this.brokers() });
  }

  brokers(): readonly BrokerEndpoint[] {
    return [...this.brokerList.values()];
  }

  setTopic(topic: string, replication: TopicReplication): void {
    this.topics.set(topic, replication);
  }

  controllerId(): number | null {
    if (this.controller !== null) return this.controller;
    const ids = [...this.brokerList.keys()];
    return ids.length === 0 ? null : Math.min(...ids);
  }

  topicConfig(topic: string): Readonly<Record<string, unknown>> | undefined {
    return this.topics.has(topic) ? (this.configs.get(topic) ?? {}) : undefined;
  }

  /** As etcd's: placed round-robin from the first live broker, leader = first replica, epoch 0. */
  createTopic(topic: string, partitions: number, replication: TopicReplication, config: Record<string, unknown>): number[][] {
    if (this.topics.has(topic)) throw new RunnelError("TOPIC_EXISTS", `topic ${topic} already exists in the cluster`);
    const replicas = placeReplicas([...this.brokerList.keys()], partitions, replication.replicationFactor, 0);
    this.topics.set(topic, replication);
    this.configs.set(topic, { ...config });
    this.addPartitions(topic, 0, replicas);
    return replicas;
  }

  deleteTopic(topic: string): boolean {
    if (!this.topics.delete(topic)) return false;
    this.configs.delete(topic);
    for (const { topic: name, partition } of this.entries()) if (name === topic) this.partitions.delete(`${topic}\u0000${partition}`);
    this.emit({ kind: "topicDeleted", topic });
    return true;
  }

  alterTopicConfig(topic: string, config: Record<string, unknown>): void {
    if (!this.topics.has(topic)) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}' in the cluster`);
    this.configs.set(topic, { ...this.configs.get(topic), ...config });
    this.emit({ kind: "topic", topic });
  }

  createPartitions(topic: string, total: number): void {
    const replication = this.topics.get(topic);
    const current = this.partitionCount(topic);
    if (replication === undefined || current === undefined) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}' in the cluster`);
    if (total <= current) throw new RunnelError("INVALID_PARTITIONS", `topic '${topic}' has ${current} partitions in the cluster; the new total must be larger`);
    const placed = placeReplicas([...this.brokerList.keys()], total, replication.replicationFactor, 0).slice(current);
    this.addPartitions(topic, current, placed);
  }

  topicReplication(topic: string): TopicReplication | undefined {
    return this.topics.get(topic);
  }

  /** Topics set with setTopic, sorted. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  /** One past the highest partition given a state (undefined for a topic never set). */
  partitionCount(topic: string): number | undefined {
    if (!this.topics.has(topic)) return undefined;
    let count = 0;
    for (const { topic: name, partition } of this.entries()) if (name === topic && partition >= count) count = partition + 1;
    return count;
  }

  /** Sets a partition's state (a new version) and tells every view. */
  setPartition(topic: string, partition: number, state: Omit<PartitionState, "version">): PartitionState {
    const stored = this.storePartition(topic, partition, state);
    this.emit({ kind: "partition", topic, partition, state: stored });
    return stored;
  }

  private storePartition(topic: string, partition: number, state: Omit<PartitionState, "version">): PartitionState {
    const stored: PartitionState = { ...state, isr: [...state.isr], replicas: [...state.replicas], version: ++this.version };
    this.partitions.set(`${topic}\u0000${partition}`, stored);
    return stored;
  }

  /** Stores every new partition first, then tells the views (etcd's watch brings one txn's keys together). */
  private addPartitions(topic: string, first: number, replicas: readonly (readonly number[])[]): void {
    const stored = replicas.map((assigned, index) => this.storePartition(topic, first + index, { leader: assigned[0] as number, leaderEpoch: 0, isr: assigned, replicas: assigned }));
    stored.forEach((state, index) => this.emit({ kind: "partition", topic, partition: first + index, state }));
    this.emit({ kind: "topic", topic });
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.partitions.get(`${topic}\u0000${partition}`);
  }

  /** The compare-and-swap behind proposeIsr: null when `expected` is not the stored version. */
  compareAndSetIsr(topic: string, partition: number, expected: PartitionState, isr: readonly number[]): PartitionState | null {
    const current = this.partitionState(topic, partition);
    if (current === undefined || current.version !== expected.version) return null;
    return this.setPartition(topic, partition, { ...current, isr });
  }

  /** Every partition state, for tests that look at the whole cluster. */
  entries(): Array<{ topic: string; partition: number; state: PartitionState }> {
    return [...this.partitions].map(([key, state]) => {
      const [topic, partition] = key.split("\u0000") as [string, string];
      return { topic, partition: Number(partition), state };
    });
  }

  forget(view: StaticClusterView): void {
    this.views.delete(view);
  }

  private emit(event: ClusterEvent): void {
    for (const view of [...this.views]) view.deliver(event);
  }
}

export class StaticClusterView implements ClusterView {
  private readonly listeners = new Set<(event: ClusterEvent) => void>();
  private fenced = false;
  /** proposeIsr calls made, and refused on purpose (tests of the CAS retry). */
  proposals = 0;

  constructor(
    private readonly state: StaticClusterState,
    readonly brokerId: number,
  ) {}

  brokers(): readonly BrokerEndpoint[] {
    return this.state.brokers();
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.state.partitionState(topic, partition);
  }

  topicReplication(topic: string): TopicReplication | undefined {
    return this.state.topicReplication(topic);
  }

  topicNames(): readonly string[] {
    return this.state.topicNames();
  }

  partitionCount(topic: string): number | undefined {
    return this.state.partitionCount(topic);
  }

  subscribe(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async proposeIsr(topic: string, partition: number, expected: PartitionState, isr: readonly number[]): Promise<PartitionState | null> {
    this.proposals++;
    // A store round trip: the answer never comes back in the same turn.
    await Promise.resolve();
    if (this.fenced) return null;
    return this.state.compareAndSetIsr(topic, partition, expected, isr);
  }

  mayLead(): boolean {
    return !this.fenced;
  }

  controllerId(): number | null {
    return this.state.controllerId();
  }

  topicConfig(topic: string): Readonly<Record<string, unknown>> | undefined {
    return this.state.topicConfig(topic);
  }

  // A store round trip each: the answer never comes back in the same turn.
  async createTopic(topic: string, partitions: number, replication: TopicReplication, config: Record<string, unknown>): Promise<number[][]> {
    await Promise.resolve();
    return this.state.createTopic(topic, partitions, replication, config);
  }

  async deleteTopic(topic: string): Promise<boolean> {
    await Promise.resolve();
    return this.state.deleteTopic(topic);
  }

  async alterTopicConfig(topic: string, config: Record<string, unknown>): Promise<void> {
    await Promise.resolve();
    this.state.alterTopicConfig(topic, config);
  }

  async createPartitions(topic: string, total: number): Promise<void> {
    await Promise.resolve();
    this.state.createPartitions(topic, total);
  }

  /** This broker lost (or regained) its lease, as the etcd view would report it. */
  setFenced(fenced: boolean): void {
    if (this.fenced === fenced) return;
    this.fenced = fenced;
    this.deliver({ kind: fenced ? "fenced" : "unfenced" });
  }

  /** Stops delivering events (the broker using it stopped). */
  close(): void {
    this.listeners.clear();
    this.state.forget(this);
  }

  /** Called by the shared state for each change. */
  deliver(event: ClusterEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}
