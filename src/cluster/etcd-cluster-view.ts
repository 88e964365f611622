/**
 * @module cluster/etcd-cluster-view
 * ClusterView from etcd: this broker's membership (its key on its own lease; an id already live
 * refuses start-up with BROKER_ID_IN_USE), a cache of every broker, topic and partition state fed
 * by one watch on `/runnel/<cluster>/` (resumed from its revision after a drop, re-listed after a
 * compaction), the controller (cluster/controller.ts) when this broker wins the election, ISR
 * proposals as compare-and-swap txns, and self-fencing from cluster/lease-keeper.ts.
 */
import { RunnelError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { type IdBlock, reserveProducerIdBlock } from "./cluster-producer-ids.ts";
import { writeReassignment } from "./cluster-reassignments.ts";
import { changeClusterTopic, createClusterTopic, deleteClusterTopic, newPartitionOps, placeReplicas } from "./cluster-topics.ts";
import type { BrokerEndpoint, ClusterEvent, ClusterView, PartitionState, TopicReplication } from "./cluster-view.ts";
import { Controller, type ElectionRequest, type LeaderBalanceOptions } from "./controller.ts";
import type { Storage } from "../log/storage.ts";
import type { EtcdAccess } from "./etcd-access.ts";
import { EtcdGateway, type KeyValue, type PrefixWatch, type WatchEvent } from "./etcd-gateway.ts";
import {
  brokerRecordSchema,
  controllerRecordSchema,
  decodeRecord,
  type ElectionRecord,
  electionRecordSchema,
  encodeBroker,
  encodePartition,
  EtcdLayout,
  partitionRecordSchema,
  producerIdsRecordSchema,
  type TopicRecord,
  topicRecordSchema,
} from "./etcd-layout.ts";
import { claimIncarnation, localMember } from "./incarnation.ts";
import { type DrainProgress, drainProgress } from "./leader-balance.ts";
import { LeaseKeeper } from "./lease-keeper.ts";
import { isReassigning } from "./reassignment.ts";

export interface EtcdClusterViewOptions {
  /** etcd base URLs (http://host:port). */
  readonly endpoints: readonly string[];
  readonly cluster: string;
  /** This broker's endpoint (its id included). */
  readonly self: BrokerEndpoint;
  readonly leaseTtlMs: number;
  readonly fenceMarginMs: number;
  /** Bound of each etcd call (default 2000). */
  readonly requestTimeoutMs?: number;
  /** TLS and credentials for a secured etcd (cluster/etcd-access.ts); none by default. */
  readonly access?: EtcdAccess;
  /**
   * This broker's data directory, checked against the disk etcd knows for its id before it
   * registers (cluster/incarnation.ts). Absent in tests that run a view without a log.
   */
  readonly member?: { readonly storage: Storage; readonly dataDir: string; readonly acceptDataLoss: boolean };
  readonly logger: Logger;
  /** The controller's automatic preferred-leader rebalance (off when absent). */
  readonly leaderBalance?: LeaderBalanceOptions;
}

interface CachedTopic {
  readonly record: TopicRecord;
  readonly createRevision: number;
}

/** Start-up waits this long at most for the first listing of the cluster. */
const FIRST_SNAPSHOT_WAIT_MS = 10_000;
/** A lost membership key is registered again this often until it is. */
const REGISTER_RETRY_MS = 500;

export class EtcdClusterView implements ClusterView {
  readonly brokerId: number;
  readonly layout: EtcdLayout;
  readonly gateway: EtcdGateway;
  private readonly keeper: LeaseKeeper;
  private readonly controller: Controller;
  private watch: PrefixWatch | null = null;
  private readonly brokersById = new Map<number, BrokerEndpoint>();
  private readonly topics = new Map<string, CachedTopic>();
  private readonly states = new Map<string, Map<number, PartitionState>>();
  private controllerHolder: { brokerId: number; createRevision: number } | null = null;
  /** The cluster's producer id counter as the watch last saw it (ids below were issued). */
  private producerIdsEnd = 0;
  /** Pending preferred-leader election requests by key id. */
  private readonly elections = new Map<string, ElectionRecord>();
  /** This broker asked to leave its leaderships (controlled shutdown); kept in its broker record. */
  private draining = false;
  private readonly listeners = new Set<(event: ClusterEvent) => void>();
  private registered = false;
  private fencedNow = true;
  private closed = false;
  private campaigning = false;
  private registerTimer: ReturnType<typeof setTimeout> | null = null;
  private firstSnapshot: (() => void) | null = null;

  private constructor(private readonly options: EtcdClusterViewOptions) {
    this.brokerId = options.self.brokerId;
    this.layout = new EtcdLayout(options.cluster);
    this.gateway = new EtcdGateway({ endpoints: options.endpoints, requestTimeoutMs: options.requestTimeoutMs ?? 2000, ...(options.access === undefined ? {} : { access: options.access }) });
    this.keeper = new LeaseKeeper(
      this.gateway,
      { ttlMs: options.leaseTtlMs, fenceMarginMs: options.fenceMarginMs },
      {
        onFenced: (reason) => this.recomputeFence(reason),
        onUnfenced: () => this.recomputeFence("lease renewed"),
        onLeaseReplaced: () => this.leaseReplaced(),
        onError: (error) => options.logger.debug({ error: error.message }, "etcd keepalive failed"),
      },
    );
    this.controller = new Controller(this.gateway, this.layout, this.brokerId, {
      liveBrokerIds: () => new Set(this.brokersById.keys()),
      partitions: () => this.allPartitions(),
      drainingBrokerIds: () => this.drainingBrokerIds(),
      electionRequests: () => [...this.elections.values()],
    }, options.logger, options.leaderBalance);
  }

  /** Joins the cluster: lease, membership key, first listing, controller campaign. */
  static async start(options: EtcdClusterViewOptions): Promise<EtcdClusterView> {
    const view = new EtcdClusterView(options);
    try {
      await view.claimDisk();
      await view.keeper.start();
      await view.register();
      await view.startWatch();
    } catch (error) {
      await view.close();
      throw error;
    }
    return view;
  }

  // ---- ClusterView ----

  brokers(): readonly BrokerEndpoint[] {
    return [...this.brokersById.values()].sort((left, right) => left.brokerId - right.brokerId);
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    return this.states.get(topic)?.get(partition);
  }

  topicReplication(topic: string): TopicReplication | undefined {
    const cached = this.topics.get(topic);
    return cached === undefined ? undefined : { replicationFactor: cached.record.replicationFactor, minInsyncReplicas: cached.record.minInsyncReplicas };
  }

  subscribe(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  mayLead(): boolean {
    return !this.closed && this.registered && this.keeper.mayLead();
  }

  /** Takes a block of cluster-wide producer ids (cluster/cluster-producer-ids.ts). */
  async reserveProducerIds(count: number): Promise<IdBlock> {
    const block = await reserveProducerIdBlock(this.gateway, this.layout, count);
    this.producerIdsEnd = Math.max(this.producerIdsEnd, block.end);
    return block;
  }

  /** One past the highest producer id any broker of the cluster may have handed out, as known here. */
  producerIdsIssuedEnd(): number {
    return this.producerIdsEnd;
  }

  async proposeIsr(topic: string, partition: number, expected: PartitionState, isr: readonly number[]): Promise<PartitionState | null> {
    if (expected.leader !== this.brokerId) return null;
    if (!this.mayLead()) throw new RunnelError("CLUSTER_UNAVAILABLE", `broker ${this.brokerId} is fenced from the cluster (its etcd lease is not surely alive); it may not change an ISR`);
    if (!isr.includes(this.brokerId) || isr.some((id) => !expected.replicas.includes(id)) || new Set(isr).size !== isr.length) {
      throw new RunnelError("INVALID_REQUEST", `ISR [${isr.join(", ")}] of ${topic}/${partition} must hold the leader ${this.brokerId} and only its replicas [${expected.replicas.join(", ")}], once each`);
    }
    const key = this.layout.partitionKey(topic, partition);
    const next = { ...expected, isr: [...isr] };
    const result = await this.gateway.txn([{ key, target: "modRevision", result: "equal", value: expected.version }], [{ op: "put", key, value: encodePartition(next) }]);
    if (!result.succeeded) return null;
    const state: PartitionState = { ...next, version: result.revision };
    this.applyPartition(topic, partition, state, []).forEach((event) => this.emit(event));
    return state;
  }

  // ---- controlled shutdown and preferred leaders ----

  /** Live brokers whose record says they are draining. */
  drainingBrokerIds(): ReadonlySet<number> {
    return new Set([...this.brokersById.values()].filter((broker) => broker.draining === true).map((broker) => broker.brokerId));
  }

  /**
   * Controlled shutdown: marks this broker draining in its record, so the controller moves its
   * leaderships and ISR seats to other live ISR members. It keeps serving meanwhile.
   */
  async startDraining(): Promise<void> {
    this.draining = true;
    const key = this.layout.brokerKey(this.brokerId);
    await this.gateway.txn(
      [{ key, target: "createRevision", result: "greater", value: 0 }],
      [{ op: "put", key, value: encodeBroker(this.options.self, true), lease: this.keeper.leaseId }],
    );
  }

  /** How far this broker's controlled shutdown has come, by the cached partition states. */
  drainProgress(): DrainProgress {
    const draining = new Set([...this.drainingBrokerIds(), this.brokerId]);
    return drainProgress(this.brokerId, this.allPartitions(), new Set(this.brokersById.keys()), draining);
  }

  /**
   * Asks the controller to elect preferred leaders (one topic's partitions, or all): a key on this
   * broker's lease the controller acts on while it exists. Returns the function that withdraws it.
   */
  async requestElection(request: ElectionRequest): Promise<() => Promise<void>> {
    const key = this.layout.electionKey(`${this.brokerId}-${crypto.randomUUID()}`);
    const record: ElectionRecord = { ...(request.topic === undefined ? {} : { topic: request.topic }), ...(request.partitions === undefined ? {} : { partitions: [...request.partitions] }) };
    await this.gateway.put(key, JSON.stringify(record), { lease: this.keeper.leaseId });
    return async () => {
      await this.gateway.delete(key).catch(() => undefined);
    };
  }

  /** Every partition state as cached (topic, partition, state). */
  partitionStates(): Iterable<{ topic: string; partition: number; state: PartitionState }> {
    return this.allPartitions();
  }

  // ---- cluster-mode topics and status ----

  /** Creates a replicated topic in etcd; its partitions appear in the cache through the watch. */
  async createTopic(topic: string, partitions: number, replication: TopicReplication, config: Record<string, unknown> = {}): Promise<number[][]> {
    if (replication.minInsyncReplicas > replication.replicationFactor) {
      throw new RunnelError("INVALID_CONFIG", `minInsyncReplicas ${replication.minInsyncReplicas} is more than the replication factor ${replication.replicationFactor}`);
    }
    const replicas = placeReplicas([...this.brokersById.keys()], partitions, replication.replicationFactor, rotationOf(topic));
    await createClusterTopic(this.gateway, this.layout, topic, { partitions, ...replication, config }, replicas);
    return replicas;
  }

  async deleteTopic(topic: string): Promise<boolean> {
    return deleteClusterTopic(this.gateway, this.layout, topic);
  }

  async alterTopicConfig(topic: string, config: Record<string, unknown>): Promise<void> {
    await changeClusterTopic(this.gateway, this.layout, topic, (current) => ({ record: { ...current, config: { ...current.config, ...config } } }));
  }

  /** New partitions continue the topic's ring of placement over the brokers live now. */
  async createPartitions(topic: string, total: number): Promise<void> {
    await changeClusterTopic(this.gateway, this.layout, topic, (current) => {
      if (total <= current.partitions) throw new RunnelError("INVALID_PARTITIONS", `topic '${topic}' has ${current.partitions} partitions in the cluster; the new total must be larger`);
      const placed = placeReplicas([...this.brokersById.keys()], total, current.replicationFactor, rotationOf(topic)).slice(current.partitions);
      return { record: { ...current, partitions: total }, partitionOps: newPartitionOps(this.layout, topic, current.partitions, placed) };
    });
  }

  topicConfig(topic: string): Readonly<Record<string, unknown>> | undefined {
    return this.topics.get(topic)?.record.config;
  }

  /**
   * Starts moving a partition to `target` replicas, or cancels the move in progress (null);
   * the controller completes it (cluster/reassignment.ts). Resolves to the state written.
   */
  async reassignPartition(topic: string, partition: number, target: readonly number[] | null, replicationFactorMax: number): Promise<PartitionState> {
    const count = this.partitionCount(topic);
    if (count === undefined) throw new RunnelError("UNKNOWN_TOPIC", `the cluster has no topic ${topic}`);
    if (partition >= count) throw new RunnelError("UNKNOWN_PARTITION", `topic ${topic} has ${count} partition(s); there is no partition ${partition}`);
    const minInsyncReplicas = this.topicReplication(topic)?.minInsyncReplicas ?? 1;
    const live = new Set(this.brokersById.keys());
    return writeReassignment(this.gateway, this.layout, topic, partition, target, { live, minInsyncReplicas, replicationFactorMax });
  }

  /** Partitions with a reassignment in progress, as the cache holds them. */
  reassignmentsInProgress(): Array<{ topic: string; partition: number; state: PartitionState }> {
    return [...this.allPartitions()].filter(({ state }) => isReassigning(state));
  }

  /** Topics as the cache holds them. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  partitionCount(topic: string): number | undefined {
    return this.topics.get(topic)?.record.partitions;
  }

  topicRecord(topic: string): TopicRecord | undefined {
    return this.topics.get(topic)?.record;
  }

  /** Broker id of the controller, or null while there is none. */
  controllerId(): number | null {
    return this.controllerHolder?.brokerId ?? null;
  }

  /** True while this broker holds the controller key. */
  isController(): boolean {
    return this.controller.reign !== null;
  }

  /** Leaves the cluster: stops the watch and timers and revokes the lease (keys go at once). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.registerTimer !== null) clearTimeout(this.registerTimer);
    this.controller.close();
    await this.watch?.close();
    await this.keeper.stop(true);
    this.listeners.clear();
  }

  /** Stops without revoking (tests: a broker that dies without a word). */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.registerTimer !== null) clearTimeout(this.registerTimer);
    this.controller.close();
    await this.watch?.close();
    await this.keeper.stop(false);
    this.listeners.clear();
  }

  // ---- membership ----

  /** Before registering: make etcd's incarnation for this id this data directory's (cluster/incarnation.ts). */
  private async claimDisk(): Promise<void> {
    const member = this.options.member;
    if (member === undefined) return;
    const local = localMember(member.storage, member.dataDir, this.layout.cluster, this.brokerId);
    const check = await claimIncarnation(this.gateway, this.layout, local, member.acceptDataLoss);
    if (check.replaced) {
      this.options.logger.warn({ brokerId: this.brokerId, leftIsr: check.leftIsr }, "this broker's data directory is new to the cluster: left the ISRs its old disk was in; it catches up as a follower");
    }
  }

  private async register(): Promise<void> {
    const key = this.layout.brokerKey(this.brokerId);
    const leaseId = this.keeper.leaseId;
    const result = await this.gateway.txn(
      [{ key, target: "createRevision", result: "equal", value: 0 }],
      [{ op: "put", key, value: encodeBroker(this.options.self, this.draining), lease: leaseId }],
      [{ op: "range", key }],
    );
    const holder = result.ranges[0]?.[0];
    if (!result.succeeded && holder?.lease !== leaseId) {
      throw new RunnelError(
        "BROKER_ID_IN_USE",
        `broker id ${this.brokerId} is already live in cluster ${this.layout.cluster} (${holder?.value ?? "unknown endpoint"}); give this broker another --broker-id, or wait up to ${this.options.leaseTtlMs} ms for the old one's lease to expire`,
      );
    }
    this.registered = true;
    this.recomputeFence("registered");
  }

  /** The lease expired in etcd (we were cut off too long): register again on the new one. */
  private leaseReplaced(): void {
    this.registered = false;
    this.controller.resign();
    this.recomputeFence("lease expired in etcd");
    this.options.logger.warn({ brokerId: this.brokerId }, "etcd lease expired; joining the cluster again on a new lease");
    this.registerAgain();
  }

  private registerAgain(): void {
    if (this.closed) return;
    this.register().then(
      () => this.afterChange(),
      (error: unknown) => {
        this.options.logger.error({ error: error instanceof Error ? error.message : String(error) }, "could not join the cluster again; retrying");
        this.registerTimer = setTimeout(() => this.registerAgain(), REGISTER_RETRY_MS);
      },
    );
  }

  private recomputeFence(reason: string): void {
    if (this.closed) return;
    const fenced = !this.mayLead();
    if (fenced === this.fencedNow) return;
    this.fencedNow = fenced;
    if (fenced) {
      this.options.logger.warn({ brokerId: this.brokerId, reason }, "fenced: this broker may not lead until its lease is safe again");
      this.emit({ kind: "fenced" });
    } else {
      this.options.logger.info({ brokerId: this.brokerId }, "unfenced");
      // The watch may sit on a connection that went silent while we were cut off: reopen it
      // (it resumes from its revision, so nothing is missed).
      this.watch?.reconnect();
      this.emit({ kind: "unfenced" });
      this.afterChange();
    }
  }

  // ---- the cache ----

  private async startWatch(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new RunnelError("CLUSTER_UNAVAILABLE", `no listing of cluster ${this.layout.cluster} from etcd within ${FIRST_SNAPSHOT_WAIT_MS} ms`)), FIRST_SNAPSHOT_WAIT_MS);
      this.firstSnapshot = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.watch = this.gateway.watchPrefix(this.layout.prefix, {
      onSnapshot: (kvs) => this.snapshot(kvs),
      onEvents: (events) => this.changes(events),
      onError: (error, retryMs) => this.options.logger.debug({ error: error.message, retryMs }, "etcd watch dropped; resuming"),
    });
    await ready;
  }

  private snapshot(kvs: readonly KeyValue[]): void {
    const events: ClusterEvent[] = [];
    const brokersBefore = this.brokerSignature();
    const topicsBefore = new Set(this.topics.keys());
    const partitionsSeen = new Set<string>();
    this.brokersById.clear();
    this.topics.clear();
    this.elections.clear();
    this.controllerHolder = null;
    for (const kv of kvs) {
      this.put(kv, events);
      const parsed = this.layout.parse(kv.key);
      if (parsed.kind === "partition") partitionsSeen.add(`${parsed.topic}\u0000${parsed.partition}`);
    }
    for (const [topic, partitions] of this.states) {
      for (const partition of partitions.keys()) if (!partitionsSeen.has(`${topic}\u0000${partition}`)) partitions.delete(partition);
      if (partitions.size === 0) this.states.delete(topic);
    }
    for (const topic of topicsBefore) if (!this.topics.has(topic)) events.push({ kind: "topicDeleted", topic });
    if (this.brokerSignature() !== brokersBefore) events.push({ kind: "brokers", brokers: this.brokers() });
    for (const event of events) this.emit(event);
    this.firstSnapshot?.();
    this.firstSnapshot = null;
    this.afterChange();
  }

  private changes(watchEvents: readonly WatchEvent[]): void {
    const events: ClusterEvent[] = [];
    const brokersBefore = this.brokerSignature();
    for (const event of watchEvents) {
      if (event.type === "put") this.put(event.kv, events);
      else this.remove(event.kv, events);
    }
    if (this.brokerSignature() !== brokersBefore) events.push({ kind: "brokers", brokers: this.brokers() });
    for (const event of events) this.emit(event);
    this.afterChange();
  }

  private put(kv: KeyValue, events: ClusterEvent[]): void {
    const parsed = this.layout.parse(kv.key);
    if (parsed.kind === "broker") {
      const record = decodeRecord(brokerRecordSchema, kv.value);
      if (record !== undefined && record.brokerId === parsed.brokerId) this.brokersById.set(record.brokerId, record);
      else this.skip(kv);
    } else if (parsed.kind === "producerIds") {
      const record = decodeRecord(producerIdsRecordSchema, kv.value);
      // Only forward: a counter read back lower would make issued ids look unknown.
      if (record !== undefined) this.producerIdsEnd = Math.max(this.producerIdsEnd, record.reservedEnd);
      else this.skip(kv);
    } else if (parsed.kind === "election") {
      const record = decodeRecord(electionRecordSchema, kv.value);
      if (record !== undefined) this.elections.set(parsed.id, record);
      else this.skip(kv);
    } else if (parsed.kind === "controller") {
      const record = decodeRecord(controllerRecordSchema, kv.value);
      this.controllerHolder = record === undefined ? null : { brokerId: record.brokerId, createRevision: kv.createRevision };
    } else if (parsed.kind === "topic") {
      const record = decodeRecord(topicRecordSchema, kv.value);
      if (record === undefined) return this.skip(kv);
      this.topics.set(parsed.topic, { record, createRevision: kv.createRevision });
      events.push({ kind: "topic", topic: parsed.topic });
    } else if (parsed.kind === "partition") {
      const record = decodeRecord(partitionRecordSchema, kv.value);
      if (record !== undefined) this.applyPartition(parsed.topic, parsed.partition, { ...record, version: kv.modRevision }, events);
      else this.skip(kv);
    }
  }

  private remove(kv: KeyValue, events: ClusterEvent[]): void {
    const parsed = this.layout.parse(kv.key);
    if (parsed.kind === "broker") this.brokersById.delete(parsed.brokerId);
    else if (parsed.kind === "controller") this.controllerHolder = null;
    else if (parsed.kind === "election") this.elections.delete(parsed.id);
    else if (parsed.kind === "partition") this.states.get(parsed.topic)?.delete(parsed.partition);
    else if (parsed.kind === "topic" && this.topics.delete(parsed.topic)) {
      this.states.delete(parsed.topic);
      events.push({ kind: "topicDeleted", topic: parsed.topic });
    }
  }

  /** Stores `state` unless the cache already has it or a newer one; returns the events made. */
  private applyPartition(topic: string, partition: number, state: PartitionState, events: ClusterEvent[]): ClusterEvent[] {
    let partitions = this.states.get(topic);
    if (partitions === undefined) {
      partitions = new Map();
      this.states.set(topic, partitions);
    }
    const cached = partitions.get(partition);
    if (cached !== undefined && cached.version >= state.version) return events;
    partitions.set(partition, state);
    events.push({ kind: "partition", topic, partition, state });
    return events;
  }

  private skip(kv: KeyValue): void {
    this.options.logger.warn({ key: kv.key }, "ignoring an etcd record of the wrong shape");
  }

  private brokerSignature(): string {
    return JSON.stringify(this.brokers());
  }

  private *allPartitions(): Iterable<{ topic: string; partition: number; state: PartitionState }> {
    for (const [topic, partitions] of this.states) for (const [partition, state] of partitions) yield { topic, partition, state };
  }

  private emit(event: ClusterEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.options.logger.error({ error: error instanceof Error ? error.message : String(error), event: event.kind }, "a cluster listener threw");
      }
    }
  }

  // ---- controller ----

  /** After every change: campaign when there is no controller; step down or work when there is. */
  private afterChange(): void {
    if (this.closed) return;
    const holder = this.controllerHolder;
    if (this.controller.reign !== null && (holder === null || holder.createRevision !== this.controller.reign)) {
      // Our key is gone (or another's): but a campaign just won may not be in the cache yet.
      if (holder !== null || this.watch === null || this.watch.revision > this.controller.reign) this.controller.resign();
    }
    if (holder === null && this.mayLead()) void this.campaign();
    void this.controller.requestPass();
  }

  private async campaign(): Promise<void> {
    if (this.campaigning) return;
    this.campaigning = true;
    try {
      await this.controller.campaign(this.keeper.leaseId);
    } catch (error) {
      this.options.logger.debug({ error: error instanceof Error ? error.message : String(error) }, "controller campaign failed");
    } finally {
      this.campaigning = false;
    }
  }
}

/** Where a topic's placement starts: a stable hash of its name, so topics spread their leaders. */
function rotationOf(topic: string): number {
  return Bun.hash.crc32(topic);
}
