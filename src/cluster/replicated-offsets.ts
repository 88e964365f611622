/**
 * @module cluster/replicated-offsets
 * Consumer groups' committed offsets in a cluster (docs/cluster.md, "Consumer groups"): Kafka's
 * design. A group belongs to one partition of the internal topic `__consumer_offsets`
 * (cluster/offsets-topic.ts); that partition's leader is the group's coordinator and the only
 * broker that answers the group's requests. Others answer NOT_COORDINATOR.
 *
 * - The topic is created in etcd by the first broker asked about a group (findCoordinator or any
 *   group request), with `offsetsTopicPartitions` partitions, replication factor min(3, live
 *   brokers), minInsyncReplicas min(2, that); COORDINATOR_NOT_AVAILABLE until its partitions
 *   have leaders.
 * - A commit is appended to the group's partition (cluster/offsets-replay.ts formats), waited for
 *   with `replicated` durability (every ISR member has it), and only then applied to the
 *   in-memory map and acknowledged: an acknowledged commit is on every broker that can become
 *   the next coordinator.
 * - A broker that finds itself leading a partition it has not loaded (for the current leader
 *   epoch) replays the partition from its log start into memory, a chunk per event-loop turn,
 *   answering COORDINATOR_LOAD_IN_PROGRESS meanwhile. A partition it no longer leads is dropped.
 * - Growth: every `offsetsSnapshotIntervalMs` the coordinator appends a snapshot of each loaded
 *   partition's groups; the topic's retention (3 intervals, segments rolled every interval)
 *   deletes what came before (offsets-replay.ts says why that is safe).
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import type { CommittedOffset, CommittedOffsets, OffsetCommit } from "../broker/offset-store.ts";
import type { PartitionNotifier } from "../broker/partition-notifier.ts";
import type { Config } from "../config.ts";
import { encodeBatch, type RecordInput } from "../format/record-batch.ts";
import { forEachRecordFrom } from "../log/read-records.ts";
import type { LogManager, LogSink, Partition } from "../log/api.ts";
import type { BrokerEndpoint, ClusterEvent } from "./cluster-view.ts";
import type { EtcdClusterView } from "./etcd-cluster-view.ts";
import { OFFSETS_TOPIC, offsetsPartitionOf } from "./offsets-topic.ts";
import {
  encodeCommit,
  encodeGroupDeleted,
  encodeSnapshotEntry,
  encodeSnapshotMark,
  encodeTopicDeleted,
  GroupOffsetsState,
  OffsetsReplay,
  RECORD,
} from "./offsets-replay.ts";
import type { ReplicaManager } from "./replica-manager.ts";

/** Bytes read from the log per event-loop turn while loading. */
const LOAD_CHUNK_BYTES = 1024 * 1024;
/** Records per snapshot batch (each record is one group). */
const SNAPSHOT_RECORDS_PER_BATCH = 256;

export interface ReplicatedOffsetsDeps {
  view: EtcdClusterView;
  log: LogManager;
  config: Config;
  logger: LogSink;
  notifier: PartitionNotifier;
  replication: () => ReplicaManager | null;
}

/** One partition of `__consumer_offsets` this broker leads. */
interface HeldPartition {
  readonly index: number;
  readonly leaderEpoch: number;
  loaded: boolean;
  state: GroupOffsetsState;
  /**
   * Commits and deletions appended but not yet acknowledged (not in `state`): a snapshot written
   * meanwhile must include them, since their records come before it in the log.
   */
  readonly unacknowledged: Set<(state: GroupOffsetsState) => void>;
}

export class ReplicatedOffsets implements CommittedOffsets {
  private readonly held = new Map<number, HeldPartition>();
  private creating: Promise<void> | null = null;
  private readonly unsubscribe: () => void;
  private readonly snapshotTimer: ReturnType<typeof setInterval>;
  private snapshotId = Date.now();
  private closed = false;

  constructor(private readonly deps: ReplicatedOffsetsDeps) {
    this.unsubscribe = deps.view.subscribe((event) => this.onEvent(event));
    this.snapshotTimer = setInterval(() => this.snapshotAll(), deps.config.offsetsSnapshotIntervalMs);
    this.snapshotTimer.unref?.();
  }

  get size(): number {
    let count = 0;
    for (const held of this.held.values()) count += held.state.entryCount;
    return count;
  }

  /** The broker coordinating `group` now; COORDINATOR_NOT_AVAILABLE while its partition has no leader (or the topic does not exist yet: it is created now). */
  findCoordinator(group: string): BrokerEndpoint {
    const partitions = this.partitionCount();
    const state = this.deps.view.partitionState(OFFSETS_TOPIC, offsetsPartitionOf(group, partitions));
    const endpoint = state === undefined ? undefined : this.deps.view.brokers().find((broker) => broker.brokerId === state.leader);
    if (endpoint === undefined) throw notAvailable(`the partition of __consumer_offsets holding group '${group}' has no leader now`);
    return endpoint;
  }

  requireCoordinator(group: string): void {
    this.heldFor(group);
  }

  fetch(group: string, topic: string, partition: number): CommittedOffset | null {
    const entry = this.heldFor(group).state.get(group, topic, partition);
    return entry === undefined ? null : { offset: entry.offset, metadata: entry.metadata };
  }

  fetchAll(group: string): OffsetCommit[] {
    return [...(this.heldFor(group).state.groups.get(group)?.values() ?? [])];
  }

  /** Groups with committed offsets that this broker coordinates. */
  committedGroups(): string[] {
    return [...this.held.values()].filter((held) => held.loaded).flatMap((held) => [...held.state.groups.keys()]);
  }

  committedTopics(): Set<string> {
    const topics = new Set<string>();
    for (const held of this.held.values()) for (const offsets of held.state.groups.values()) for (const entry of offsets.values()) topics.add(entry.topic);
    return topics;
  }

  isTopicBeingRemoved(_topic: string): boolean {
    return false;
  }

  /** Appends the commit, waits until every ISR member has it, then applies it. */
  async commit(group: string, entries: OffsetCommit[]): Promise<void> {
    const held = this.heldFor(group);
    const max = this.deps.config.committedOffsetsMax;
    if (this.size + held.state.countNew(group, entries) > max) throw new RunnelError("LIMIT_EXCEEDED", `the broker holds at most ${max} committed offsets`);
    await this.appendReplicated(held, [{ key: group, value: encodeCommit(group, entries) }], (state) => state.apply(group, entries));
  }

  async removeGroup(group: string): Promise<void> {
    const held = this.heldFor(group);
    if (!held.state.groups.has(group)) return;
    await this.appendReplicated(held, [{ key: group, value: encodeGroupDeleted(group) }], (state) => state.deleteGroup(group));
  }

  /** The cluster deleted `topic`: every loaded partition forgets its offsets (and says so in its log). */
  async removeTopic(topic: string, afterRemoval: () => void = () => {}): Promise<void> {
    this.forgetTopic(topic);
    afterRemoval();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.snapshotTimer);
    this.unsubscribe();
    this.held.clear();
  }

  // ---- placement -------------------------------------------------------------------------

  /** The partition count of the topic; creates the topic (once) and throws COORDINATOR_NOT_AVAILABLE when it does not exist yet. */
  private partitionCount(): number {
    const count = this.deps.view.partitionCount(OFFSETS_TOPIC);
    if (count !== undefined) return count;
    this.creating ??= this.createTopic().finally(() => {
      this.creating = null;
    });
    throw notAvailable("the __consumer_offsets topic is being created");
  }

  private async createTopic(): Promise<void> {
    const replicationFactor = Math.min(3, this.deps.view.brokers().length);
    const intervalMs = this.deps.config.offsetsSnapshotIntervalMs;
    try {
      await this.deps.view.createTopic(
        OFFSETS_TOPIC,
        this.deps.config.offsetsTopicPartitions,
        { replicationFactor, minInsyncReplicas: Math.min(2, replicationFactor) },
        { "retention.ms": 3 * intervalMs, "segment.ms": intervalMs, "retention.bytes": -1 },
      );
      this.deps.logger.info({ topic: OFFSETS_TOPIC, partitions: this.deps.config.offsetsTopicPartitions, replicationFactor }, "created the consumer offsets topic");
    } catch (error) {
      // TOPIC_EXISTS: another broker was first. Anything else: the next group request tries again.
      if (toRunnelError(error).code !== "TOPIC_EXISTS") this.deps.logger.warn({ error: toRunnelError(error).message }, "could not create the consumer offsets topic");
    }
  }

  /**
   * The loaded partition of `group` if this broker coordinates it; else NOT_COORDINATOR,
   * COORDINATOR_NOT_AVAILABLE, or COORDINATOR_LOAD_IN_PROGRESS (starting the load).
   */
  private heldFor(group: string): HeldPartition {
    if (this.closed) throw new RunnelError("SHUTTING_DOWN", "the broker is stopping");
    const index = offsetsPartitionOf(group, this.partitionCount());
    const state = this.deps.view.partitionState(OFFSETS_TOPIC, index);
    if (state === undefined || state.leader < 0) throw notAvailable(`partition ${index} of __consumer_offsets has no leader now`);
    if (state.leader !== this.deps.view.brokerId || !this.deps.view.mayLead()) {
      this.held.delete(index);
      throw new RunnelError("NOT_COORDINATOR", `broker ${state.leader} coordinates group '${group}' (it leads partition ${index} of __consumer_offsets); ask findCoordinator`, {
        details: { coordinator: state.leader },
      });
    }
    if (this.deps.replication()?.isLeader(OFFSETS_TOPIC, index) !== true) throw notAvailable(`this broker is taking up the lead of partition ${index} of __consumer_offsets`);
    const held = this.held.get(index);
    if (held !== undefined && held.leaderEpoch === state.leaderEpoch) {
      if (held.loaded) return held;
    } else {
      this.startLoad(index, state.leaderEpoch);
    }
    throw new RunnelError("COORDINATOR_LOAD_IN_PROGRESS", `this broker is loading the groups of partition ${index} of __consumer_offsets`);
  }

  private onEvent(event: ClusterEvent): void {
    if (event.kind === "partition" && event.topic === OFFSETS_TOPIC) {
      const held = this.held.get(event.partition);
      if (held !== undefined && (event.state.leader !== this.deps.view.brokerId || event.state.leaderEpoch !== held.leaderEpoch)) this.drop(held);
    } else if (event.kind === "topicDeleted" && event.topic !== OFFSETS_TOPIC) {
      this.forgetTopic(event.topic);
    }
  }

  private drop(held: HeldPartition): void {
    this.held.delete(held.index);
    this.deps.logger.info({ partition: held.index, groups: held.state.groups.size }, "no longer coordinating the groups of a __consumer_offsets partition");
  }

  // ---- loading ---------------------------------------------------------------------------

  private startLoad(index: number, leaderEpoch: number): void {
    const held: HeldPartition = { index, leaderEpoch, loaded: false, state: new GroupOffsetsState(), unacknowledged: new Set() };
    this.held.set(index, held);
    this.load(held).catch((error: unknown) => {
      this.deps.logger.error({ partition: index, error: toRunnelError(error).message }, "could not load the groups of a __consumer_offsets partition");
      if (this.held.get(index) === held) this.held.delete(index);
    });
  }

  /** Replays the partition from its log start to its end now, one chunk per turn. */
  private async load(held: HeldPartition): Promise<void> {
    const partition = this.deps.log.partition(OFFSETS_TOPIC, held.index);
    const replay = new OffsetsReplay();
    const endOffset = partition.nextOffset;
    let offset = partition.logStartOffset;
    let records = 0;
    while (offset < endOffset) {
      if (this.held.get(held.index) !== held) return;
      offset = Math.max(offset, partition.logStartOffset);
      const next = readChunk(partition, offset, endOffset, (value) => {
        replay.apply(value);
        records += 1;
      });
      if (next <= offset) break;
      offset = next;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.held.get(held.index) !== held) return;
    held.state = replay.finish();
    held.loaded = true;
    // A topic deleted while no one had this partition loaded left no tombstone here: forget it now.
    const deleted = [...this.committedTopics()].filter((topic) => this.deps.view.partitionCount(topic) === undefined && !this.deps.log.hasTopic(topic));
    for (const topic of deleted) this.forgetTopic(topic);
    this.deps.logger.info({ partition: held.index, leaderEpoch: held.leaderEpoch, records, skipped: replay.skipped, groups: held.state.groups.size }, "loaded the groups of a __consumer_offsets partition");
  }

  // ---- writing ---------------------------------------------------------------------------

  /**
   * Appends the records as one batch and, once the ISR has it, applies `change` to the state;
   * coordinator errors otherwise (the change is then not applied here; the record may still be
   * in the log, as any unacknowledged write may).
   */
  private async appendReplicated(held: HeldPartition, records: RecordInput[], change: (state: GroupOffsetsState) => void): Promise<void> {
    const replication = this.deps.replication();
    if (replication === null) throw notAvailable("the data plane is not running yet");
    try {
      const endOffset = this.append(replication, held, [encodeBatch(records)], true);
      held.unacknowledged.add(change);
      await replication.waitReplicated(OFFSETS_TOPIC, held.index, endOffset);
    } catch (error) {
      throw asCoordinatorError(error, held.index);
    } finally {
      held.unacknowledged.delete(change);
    }
    if (this.held.get(held.index) === held) change(held.state);
  }

  private append(replication: ReplicaManager, held: HeldPartition, batches: Uint8Array[], replicated: boolean): number {
    const partition = this.deps.log.partition(OFFSETS_TOPIC, held.index);
    let endOffset = partition.nextOffset;
    for (const batch of batches) {
      replication.beforeAppend(OFFSETS_TOPIC, held.index, replicated);
      endOffset = partition.append(batch).lastOffset + 1;
    }
    replication.afterAppend(OFFSETS_TOPIC, held.index);
    this.deps.notifier.notify(OFFSETS_TOPIC, held.index);
    return endOffset;
  }

  /** Appends a tombstone for `topic` to each loaded partition holding its offsets (not awaited: the topic is gone either way). */
  private forgetTopic(topic: string): void {
    const replication = this.deps.replication();
    for (const held of this.held.values()) {
      if (!held.loaded || !held.state.holdsTopic(topic)) continue;
      held.state.forgetTopic(topic);
      try {
        if (replication !== null) this.append(replication, held, [encodeBatch([{ key: topic, value: encodeTopicDeleted(topic) }])], false);
      } catch (error) {
        this.deps.logger.warn({ topic, partition: held.index, error: toRunnelError(error).message }, "could not record a deleted topic in __consumer_offsets");
      }
    }
  }

  /** Appends a snapshot of every loaded partition (written durability: it restates what the ISR has already). */
  private snapshotAll(): void {
    const replication = this.deps.replication();
    if (replication === null || this.closed) return;
    for (const held of this.held.values()) {
      if (!held.loaded || !replication.isLeader(OFFSETS_TOPIC, held.index)) continue;
      try {
        this.append(replication, held, snapshotBatches(snapshotStateOf(held), (this.snapshotId += 1)), false);
      } catch (error) {
        this.deps.logger.warn({ partition: held.index, error: toRunnelError(error).message }, "could not write a snapshot to __consumer_offsets");
      }
    }
  }
}

/** Reads the batches from `offset` (up to LOAD_CHUNK_BYTES), hands each record's value on; returns the offset after the last. */
function readChunk(partition: Partition, offset: number, endOffset: number, onValue: (value: Uint8Array | null) => void): number {
  return forEachRecordFrom(partition, offset, LOAD_CHUNK_BYTES, endOffset, (record) => onValue(record.value));
}

/** What a snapshot must restate: the state with every appended, unacknowledged change applied, in append order. */
function snapshotStateOf(held: HeldPartition): GroupOffsetsState {
  if (held.unacknowledged.size === 0) return held.state;
  const copy = new GroupOffsetsState();
  for (const [group, offsets] of held.state.groups) copy.apply(group, offsets.values());
  for (const change of held.unacknowledged) change(copy);
  return copy;
}

/** Begin, one entry per group, end: in batches of SNAPSHOT_RECORDS_PER_BATCH records. */
function snapshotBatches(state: GroupOffsetsState, snapshotId: number): Uint8Array[] {
  const records: RecordInput[] = [{ key: "", value: encodeSnapshotMark(RECORD.snapshotBegin, snapshotId) }];
  for (const [group, offsets] of state.groups) records.push({ key: group, value: encodeSnapshotEntry(group, offsets.values()) });
  records.push({ key: "", value: encodeSnapshotMark(RECORD.snapshotEnd, snapshotId) });
  const batches: Uint8Array[] = [];
  for (let start = 0; start < records.length; start += SNAPSHOT_RECORDS_PER_BATCH) batches.push(encodeBatch(records.slice(start, start + SNAPSHOT_RECORDS_PER_BATCH)));
  return batches;
}

function notAvailable(message: string): RunnelError {
  return new RunnelError("COORDINATOR_NOT_AVAILABLE", message);
}

/** A failed write of the coordinator, as Kafka's coordinator reports it: NOT_COORDINATOR when leadership went, else COORDINATOR_NOT_AVAILABLE. */
function asCoordinatorError(error: unknown, index: number): RunnelError {
  const failure = toRunnelError(error);
  if (failure.code === "NOT_LEADER") return new RunnelError("NOT_COORDINATOR", `this broker no longer leads partition ${index} of __consumer_offsets; ask findCoordinator`, { cause: failure });
  if (failure.code === "NOT_ENOUGH_REPLICAS" || failure.code === "NOT_ENOUGH_REPLICAS_AFTER_APPEND" || failure.code === "TIMEOUT") {
    return new RunnelError("COORDINATOR_NOT_AVAILABLE", `partition ${index} of __consumer_offsets could not replicate the write: ${failure.message}`, { cause: failure });
  }
  return failure;
}
