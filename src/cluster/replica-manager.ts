/**
 * @module cluster/replica-manager
 * The data plane of one broker in a cluster (docs/cluster.md, "Data plane"): for each local
 * partition the ClusterView names this broker a replica of, it is either the leader or a
 * follower, and switches as the view's partition events say.
 *
 * As leader it
 *   - stamps its epoch (Partition.becomeLeader: the epoch starts at the log end),
 *   - answers followers' replicaFetch (onReplicaFetch): NOT_LEADER / FENCED_LEADER_EPOCH when
 *     it is not the leader of the epoch asked about, a `divergingEpoch` when the follower's last
 *     epoch ends earlier here (KIP-320), else the batches from the follower's offset;
 *   - tracks each follower's log end (its fetch offset) and when it last caught up; the high
 *     watermark is the minimum log end over the ISR and never moves back; consumers read below it;
 *   - shrinks the ISR of followers that lag more than replicaLagTimeMaxMs and expands it when
 *     they catch up again, both through view.proposeIsr; the leader itself never leaves it;
 *   - answers `replicated` produces (Kafka acks=-1) once the high watermark covers them with at
 *     least minInsyncReplicas in the ISR (waitReplicated).
 * As follower it hands the partition to the ReplicaFetcher (replica-fetcher.ts).
 *
 * A broker whose view says !mayLead() (fenced) acknowledges nothing: produce and replicaFetch get
 * NOT_LEADER and every waiting acknowledgement fails with NOT_LEADER.
 */
import type { PartitionNotifier } from "../broker/partition-notifier.ts";
import type { Config } from "../config.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import type { LogManager, Partition, ReadSlice } from "../log/api.ts";
import { nativeStorage, type Storage } from "../log/storage.ts";
import type { Logger } from "../logger.ts";
import type { RequestOf } from "../protocol/messages.ts";
import type { ClusterEvent, ClusterView, PartitionState } from "./cluster-view.ts";
import { type CheckpointEntry, encodeHighWatermarks, readHighWatermarks, writeHighWatermarks } from "./high-watermark-checkpoint.ts";
import { ReplicaFetcher } from "./replica-fetcher.ts";

export interface ReplicationDeps {
  view: ClusterView;
  log: LogManager;
  config: Config;
  logger: Logger;
  /** Wakes consumers' long polls when the high watermark moves (they read below it). */
  notifier: PartitionNotifier;
  now?: () => number;
  /** Where the high-watermark checkpoint is written (the log's data dir); nativeStorage by default. */
  storage?: Storage;
}

interface FollowerProgress {
  /** The follower's log end as its last fetch offset says; -1 until it fetched in this epoch. */
  logEndOffset: number;
  lastCaughtUpMs: number;
  lastFetchMs: number;
  /** The leader's log end when that fetch came (Kafka's lastCaughtUpTime rule). */
  leaderEndAtLastFetch: number;
}

interface AckWaiter {
  /** Answered once the high watermark reaches this offset. */
  endOffset: number;
  resolve(): void;
  reject(error: RunnelError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One partition this broker leads. */
interface LedPartition {
  topic: string;
  index: number;
  partition: Partition;
  state: PartitionState;
  highWatermark: number;
  followers: Map<number, FollowerProgress>;
  /** A proposeIsr is in flight: no second one until it settles. */
  proposing: boolean;
  /**
   * The ISR proposed while a proposal is in flight (else null). The high watermark counts its
   * members too (Kafka's "maximal ISR", KIP-497): otherwise it could pass a joining follower's log
   * end during the proposal, and a leader elected from the new ISR would lack acknowledged records.
   */
  proposedIsr: readonly number[] | null;
  waiters: AckWaiter[];
}

/** What the leader answers a replica fetch with (server/handlers/replica-fetch.ts writes it). */
export type ReplicaFetchAnswer =
  | { kind: "diverging"; epoch: number; endOffset: number; common: ReplicaFetchCommon }
  | { kind: "records"; slice: ReadSlice | null; common: ReplicaFetchCommon };

/** One partition of a replicaFetch request. */
export type ReplicaFetchEntry = RequestOf<"replicaFetch">["partitions"][number];

export interface ReplicaFetchCommon {
  leaderEpoch: number;
  highWatermark: number;
  logStartOffset: number;
  nextOffset: number;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class ReplicaManager {
  readonly brokerId: number;
  private readonly led = new Map<string, LedPartition>();
  /** Partitions whose high watermark is the replicated one (set once when first seen). */
  private readonly managed = new Map<string, { topic: string; index: number; partition: Partition }>();
  /** Checkpointed high watermarks not yet applied (each is used once, when its partition is first seen). */
  private readonly checkpointed = new Map<string, CheckpointEntry>();
  /** The checkpoint text last written (nothing changed: nothing written). */
  private checkpointWritten = "";
  private checkpointTimer: ReturnType<typeof setInterval> | null = null;
  private readonly storage: Storage;
  private readonly fetcher: ReplicaFetcher;
  private readonly now: () => number;
  private unsubscribe: (() => void) | null = null;
  private isrTimer: ReturnType<typeof setInterval> | null = null;
  private stopped = false;

  constructor(private readonly deps: ReplicationDeps) {
    this.brokerId = deps.view.brokerId;
    this.now = deps.now ?? Date.now;
    this.storage = deps.storage ?? nativeStorage;
    this.fetcher = new ReplicaFetcher({ view: deps.view, log: deps.log, config: deps.config, logger: deps.logger });
  }

  /** Subscribes to the view and takes up the role of every local partition it names. */
  start(): void {
    this.loadCheckpoint();
    this.unsubscribe = this.deps.view.subscribe((event) => this.onEvent(event));
    for (const topic of this.deps.log.listTopics()) this.refreshTopic(topic);
    const periodMs = Math.max(25, Math.floor(this.deps.config.replicaLagTimeMaxMs / 4));
    this.isrTimer = setInterval(() => this.shrinkLaggingIsrs(), periodMs);
    this.isrTimer.unref?.();
    this.checkpointTimer = setInterval(() => this.checkpointHighWatermarks(), this.deps.config.highWatermarkCheckpointIntervalMs);
    this.checkpointTimer.unref?.();
  }

  /**
   * Takes up the role the view gives each local partition of `topic`. For the control plane to
   * call once it has created a topic's partitions here: a partition event that came before the
   * partition existed locally was ignored.
   */
  refreshTopic(topic: string): void {
    if (!this.deps.log.hasTopic(topic)) return;
    const partitions = this.deps.log.describeTopic(topic).partitions.length;
    for (let index = 0; index < partitions; index++) {
      const state = this.deps.view.partitionState(topic, index);
      if (state !== undefined) this.apply(topic, index, state);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.isrTimer !== null) clearInterval(this.isrTimer);
    if (this.checkpointTimer !== null) clearInterval(this.checkpointTimer);
    for (const led of this.led.values()) this.failWaiters(led, new RunnelError("SHUTTING_DOWN", "the broker is stopping"));
    this.led.clear();
    await this.fetcher.stopAll();
    // The followers' last appends are in: the final high watermarks, for the next start.
    this.checkpointHighWatermarks();
  }

  /** The follower side, for tests and the lead's tools (catch-up progress). */
  get follower(): ReplicaFetcher {
    return this.fetcher;
  }

  isLeader(topic: string, partition: number): boolean {
    return this.led.has(keyOf(topic, partition));
  }

  // ---- view events ---------------------------------------------------------------------

  private onEvent(event: ClusterEvent): void {
    if (this.stopped) return;
    try {
      if (event.kind === "partition") this.apply(event.topic, event.partition, event.state);
      else if (event.kind === "fenced") this.onFenced();
      else if (event.kind === "topicDeleted") this.forgetTopic(event.topic);
    } catch (error) {
      this.deps.logger.error({ err: error, event: event.kind }, "replication could not apply a cluster event");
    }
  }

  /** Takes the role `state` gives this broker for one partition. */
  apply(topic: string, index: number, state: PartitionState): void {
    if (!this.deps.log.hasTopic(topic)) return;
    let partition: Partition;
    try {
      partition = this.deps.log.partition(topic, index);
    } catch {
      return; // Not (yet) created here: the control plane creates it, then says so again.
    }
    const key = keyOf(topic, index);
    if (!this.managed.has(key)) {
      // Until a leader says otherwise only what the checkpoint says is known to be replicated.
      this.managed.set(key, { topic, index, partition });
      partition.setHighWatermark(this.firstHighWatermark(key, partition));
    }
    if (state.leader === this.brokerId) this.lead(topic, index, partition, state);
    else this.follow(topic, index, partition, state);
  }

  private lead(topic: string, index: number, partition: Partition, state: PartitionState): void {
    const key = keyOf(topic, index);
    const current = this.led.get(key);
    if (current !== undefined && current.state.leaderEpoch === state.leaderEpoch) {
      if (state.version < current.state.version) return; // an older state than the one acted on
      current.state = state;
      this.trackReplicas(current);
      this.advanceHighWatermark(current);
      return;
    }
    if (current !== undefined) this.stepDown(current, "a new leader epoch");
    this.fetcher.unfollow(topic, index);
    if (state.leaderEpoch < partition.latestLogEpoch) {
      this.deps.logger.error({ topic, partition: index, leaderEpoch: state.leaderEpoch, logEpoch: partition.latestLogEpoch }, "the view's leader epoch is older than this log's; not leading");
      return;
    }
    partition.becomeLeader(state.leaderEpoch);
    const led: LedPartition = { topic, index, partition, state, highWatermark: partition.highWatermark, followers: new Map(), proposing: false, proposedIsr: null, waiters: [] };
    this.trackReplicas(led);
    this.led.set(key, led);
    this.deps.logger.info({ topic, partition: index, leaderEpoch: state.leaderEpoch, isr: state.isr, nextOffset: partition.nextOffset }, "leading partition");
    this.advanceHighWatermark(led);
  }

  /** Progress entries for the state's replicas: new ones added, removed ones forgotten. */
  private trackReplicas(led: LedPartition): void {
    const nowMs = this.now();
    for (const replica of led.state.replicas) {
      // Grace: a new follower has replicaLagTimeMaxMs from now to fetch before it leaves the ISR.
      if (replica !== this.brokerId && !led.followers.has(replica)) {
        led.followers.set(replica, { logEndOffset: -1, lastCaughtUpMs: nowMs, lastFetchMs: nowMs, leaderEndAtLastFetch: 0 });
      }
    }
    for (const replica of led.followers.keys()) if (!led.state.replicas.includes(replica)) led.followers.delete(replica);
  }

  private follow(topic: string, index: number, partition: Partition, state: PartitionState): void {
    const current = this.led.get(keyOf(topic, index));
    if (current !== undefined) this.stepDown(current, state.leader < 0 ? "no leader" : `broker ${state.leader} leads`);
    if (state.leader >= 0 && state.replicas.includes(this.brokerId)) this.fetcher.follow(topic, index, partition, state.leader, state.leaderEpoch);
    else this.fetcher.unfollow(topic, index);
  }

  private stepDown(led: LedPartition, why: string): void {
    this.led.delete(keyOf(led.topic, led.index));
    this.failWaiters(led, notLeader(led.topic, led.index, why));
    this.deps.logger.info({ topic: led.topic, partition: led.index, why }, "no longer leading partition");
  }

  private onFenced(): void {
    for (const led of this.led.values()) this.failWaiters(led, notLeader(led.topic, led.index, "this broker is fenced"));
  }

  private forgetTopic(topic: string): void {
    for (const led of [...this.led.values()]) if (led.topic === topic) this.stepDown(led, "topic deleted");
    this.fetcher.unfollowTopic(topic);
    for (const key of [...this.managed.keys()]) if (key.startsWith(`${topic}\u0000`)) this.managed.delete(key);
    for (const key of [...this.checkpointed.keys()]) if (key.startsWith(`${topic}\u0000`)) this.checkpointed.delete(key);
  }

  // ---- high-watermark checkpoint (high-watermark-checkpoint.ts) ------------------------

  private loadCheckpoint(): void {
    const read = readHighWatermarks(this.storage, this.deps.log.dataDir);
    if (read.problem !== null) this.deps.logger.warn({ problem: read.problem }, "high-watermark checkpoint unusable; high watermarks start at the log start");
    for (const entry of read.entries) this.checkpointed.set(keyOf(entry.topic, entry.partition), entry);
  }

  /** The checkpointed high watermark capped at the log end (never below the log start), used once. */
  private firstHighWatermark(key: string, partition: Partition): number {
    const entry = this.checkpointed.get(key);
    this.checkpointed.delete(key);
    if (entry === undefined) return partition.logStartOffset;
    return Math.max(partition.logStartOffset, Math.min(entry.highWatermark, partition.nextOffset));
  }

  /** Writes every partition's high watermark when one changed (entries not yet applied kept while their topic exists). */
  private checkpointHighWatermarks(): void {
    const entries: CheckpointEntry[] = [];
    for (const { topic, index, partition } of this.managed.values()) entries.push({ topic, partition: index, highWatermark: partition.highWatermark });
    for (const entry of this.checkpointed.values()) if (this.deps.log.hasTopic(entry.topic)) entries.push(entry);
    const text = encodeHighWatermarks(entries);
    if (text === this.checkpointWritten) return;
    try {
      writeHighWatermarks(this.storage, this.deps.log.dataDir, text);
      this.checkpointWritten = text;
    } catch (error) {
      this.deps.logger.warn({ err: toRunnelError(error).message }, "high-watermark checkpoint not written; will try again");
    }
  }

  // ---- produce -------------------------------------------------------------------------

  /**
   * Before a produce appends: NOT_LEADER unless this broker leads the partition and may lead;
   * for a `replicated` produce, NOT_ENOUGH_REPLICAS when the ISR is below minInsyncReplicas.
   */
  beforeAppend(topic: string, partition: number, replicated: boolean): void {
    const led = this.leading(topic, partition);
    if (!replicated) return;
    const minInsync = this.minInsyncReplicas(topic);
    if (led.state.isr.length < minInsync) {
      throw new RunnelError("NOT_ENOUGH_REPLICAS", `${topic}-${partition} has ${led.state.isr.length} in-sync replicas; minInsyncReplicas is ${minInsync}`, {
        details: { isr: [...led.state.isr], minInsyncReplicas: minInsync },
      });
    }
  }

  /** After a produce appended: with an ISR of the leader alone the high watermark moves now. */
  afterAppend(topic: string, partition: number): void {
    const led = this.led.get(keyOf(topic, partition));
    if (led !== undefined) this.advanceHighWatermark(led);
  }

  /**
   * Resolves once the high watermark reaches `endOffset` with at least minInsyncReplicas in the
   * ISR; rejects NOT_ENOUGH_REPLICAS_AFTER_APPEND when it gets there with fewer, NOT_LEADER when
   * leadership is lost or fenced meanwhile, TIMEOUT after replicatedAckTimeoutMs.
   */
  waitReplicated(topic: string, partition: number, endOffset: number): Promise<void> {
    let led: LedPartition;
    try {
      led = this.leading(topic, partition);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = this.deps.config.replicatedAckTimeoutMs;
      const waiter: AckWaiter = {
        endOffset,
        resolve,
        reject,
        timer: setTimeout(() => {
          led.waiters = led.waiters.filter((other) => other !== waiter);
          reject(new RunnelError("TIMEOUT", `${topic}-${partition}: the in-sync replicas did not reach offset ${endOffset} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      led.waiters.push(waiter);
      this.settleWaiters(led);
    });
  }

  private leading(topic: string, partition: number): LedPartition {
    const led = this.led.get(keyOf(topic, partition));
    if (led === undefined || !this.deps.view.mayLead()) {
      const leader = this.deps.view.partitionState(topic, partition)?.leader ?? -1;
      throw notLeader(topic, partition, led === undefined ? `the leader is broker ${leader}` : "this broker is fenced", leader);
    }
    return led;
  }

  private minInsyncReplicas(topic: string): number {
    return this.deps.view.topicReplication(topic)?.minInsyncReplicas ?? 1;
  }

  // ---- high watermark and ISR ----------------------------------------------------------

  /** Minimum log end over the ISR; moves only forward; wakes consumers and answers acks. */
  private advanceHighWatermark(led: LedPartition): void {
    let candidate = led.partition.nextOffset;
    const members = led.proposedIsr === null ? led.state.isr : [...new Set([...led.state.isr, ...led.proposedIsr])];
    for (const replica of members) {
      if (replica === this.brokerId) continue;
      const progress = led.followers.get(replica);
      // A member that has not fetched in this epoch holds the high watermark where it is.
      if (progress === undefined || progress.logEndOffset < 0) return this.settleWaiters(led);
      candidate = Math.min(candidate, progress.logEndOffset);
    }
    if (candidate > led.highWatermark) {
      led.highWatermark = candidate;
      led.partition.setHighWatermark(candidate);
      this.deps.notifier.notify(led.topic, led.index);
    }
    this.settleWaiters(led);
  }

  private settleWaiters(led: LedPartition): void {
    if (led.waiters.length === 0) return;
    const mayLead = this.deps.view.mayLead();
    const enoughInsync = led.state.isr.length >= this.minInsyncReplicas(led.topic);
    const waiting: AckWaiter[] = [];
    for (const waiter of led.waiters) {
      if (!mayLead) {
        clearTimeout(waiter.timer);
        waiter.reject(notLeader(led.topic, led.index, "this broker is fenced"));
      } else if (waiter.endOffset <= led.highWatermark) {
        clearTimeout(waiter.timer);
        if (enoughInsync) waiter.resolve();
        else waiter.reject(new RunnelError("NOT_ENOUGH_REPLICAS_AFTER_APPEND", `${led.topic}-${led.index}: appended, but the ISR shrank to ${led.state.isr.length} (minInsyncReplicas ${this.minInsyncReplicas(led.topic)}) before it was replicated`));
      } else {
        waiting.push(waiter);
      }
    }
    led.waiters = waiting;
  }

  private failWaiters(led: LedPartition, error: RunnelError): void {
    for (const waiter of led.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    led.waiters = [];
  }

  /** The timer: followers not caught up for replicaLagTimeMaxMs leave the ISR (the leader never does). */
  private shrinkLaggingIsrs(): void {
    const nowMs = this.now();
    const lagMaxMs = this.deps.config.replicaLagTimeMaxMs;
    for (const led of this.led.values()) {
      const isr = led.state.isr.filter((replica) => {
        if (replica === this.brokerId) return true;
        const progress = led.followers.get(replica);
        return progress !== undefined && nowMs - progress.lastCaughtUpMs <= lagMaxMs;
      });
      if (!isr.includes(this.brokerId)) isr.unshift(this.brokerId);
      if (isr.length < led.state.isr.length) this.proposeIsr(led, isr);
    }
  }

  private proposeIsr(led: LedPartition, isr: number[]): void {
    if (led.proposing || !this.deps.view.mayLead()) return;
    led.proposing = true;
    led.proposedIsr = isr;
    const expected = led.state;
    this.deps.view.proposeIsr(led.topic, led.index, expected, isr).then(
      (state) => {
        led.proposing = false;
        led.proposedIsr = null;
        // The view's state, not the proposal's: a newer one (the controller dropping a dead
        // follower right after) may have come in between, and applying ours over it would leave
        // this leader believing an ISR that etcd no longer holds, with no event to correct it.
        const latest = this.deps.view.partitionState(led.topic, led.index) ?? state ?? undefined;
        if (latest !== undefined && !this.stopped) this.apply(led.topic, led.index, latest);
        if (state !== null) this.deps.logger.info({ topic: led.topic, partition: led.index, from: expected.isr, to: isr }, "ISR changed");
      },
      (error: unknown) => {
        led.proposing = false;
        led.proposedIsr = null;
        this.deps.logger.warn({ topic: led.topic, partition: led.index, err: toRunnelError(error).message }, "ISR change failed; will try again");
      },
    );
  }

  // ---- replica fetch (leader side) -----------------------------------------------------

  /**
   * One partition of a follower's fetch. Throws NOT_LEADER / FENCED_LEADER_EPOCH /
   * INVALID_REQUEST / OFFSET_OUT_OF_RANGE; answers a divergence, or the batches from
   * fetchOffset up to `maxBytes` (none when `maxBytes` is 0). fetchOffset is the follower's log
   * end: it moves the high watermark and the ISR.
   */
  onReplicaFetch(brokerId: number, entry: ReplicaFetchEntry, maxBytes: number): ReplicaFetchAnswer {
    const { topic, partition: index } = entry;
    const led = this.leading(topic, index);
    const epoch = led.state.leaderEpoch;
    if (entry.leaderEpoch < epoch) {
      throw new RunnelError("FENCED_LEADER_EPOCH", `${topic}-${index}: epoch ${entry.leaderEpoch} is older than the leader's ${epoch}`, { details: { leaderEpoch: epoch } });
    }
    if (entry.leaderEpoch > epoch) throw notLeader(topic, index, `this broker leads epoch ${epoch}, not ${entry.leaderEpoch}`, this.brokerId);
    const progress = led.followers.get(brokerId);
    if (progress === undefined) throw new RunnelError("INVALID_REQUEST", `broker ${brokerId} is not a replica of ${topic}-${index}`);
    const partition = led.partition;
    if (entry.lastFetchedEpoch >= 0) {
      const end = partition.endOffsetForEpoch(entry.lastFetchedEpoch);
      if (end.epoch < entry.lastFetchedEpoch || end.endOffset < entry.fetchOffset) {
        return { kind: "diverging", epoch: end.epoch, endOffset: end.endOffset, common: this.common(led) };
      }
    }
    if (entry.fetchOffset < partition.logStartOffset || entry.fetchOffset > partition.nextOffset) {
      // The follower restarts its log at logStartOffset (below it) or cuts it (past the end).
      throw new RunnelError("OFFSET_OUT_OF_RANGE", `${topic}-${index}: fetch offset ${entry.fetchOffset} is outside the leader's log [${partition.logStartOffset}, ${partition.nextOffset}]`, {
        details: { logStartOffset: partition.logStartOffset, nextOffset: partition.nextOffset },
      });
    }
    this.noteFollowerFetch(led, brokerId, progress, entry.fetchOffset);
    const slice = maxBytes > 0 ? partition.read(entry.fetchOffset, Math.min(maxBytes, this.deps.config.replicaFetchBytesMax)) : null;
    return { kind: "records", slice, common: this.common(led) };
  }

  private isDraining(brokerId: number): boolean {
    return this.deps.view.brokers().some((broker) => broker.brokerId === brokerId && broker.draining === true);
  }

  private common(led: LedPartition): ReplicaFetchCommon {
    const { partition } = led;
    return { leaderEpoch: led.state.leaderEpoch, highWatermark: led.highWatermark, logStartOffset: partition.logStartOffset, nextOffset: partition.nextOffset };
  }

  private noteFollowerFetch(led: LedPartition, brokerId: number, progress: FollowerProgress, fetchOffset: number): void {
    const nowMs = this.now();
    const leaderEnd = led.partition.nextOffset;
    // Kafka's rule: caught up now, or caught up with where the leader was at the previous fetch.
    if (fetchOffset >= leaderEnd) progress.lastCaughtUpMs = nowMs;
    else if (fetchOffset >= progress.leaderEndAtLastFetch) progress.lastCaughtUpMs = Math.max(progress.lastCaughtUpMs, progress.lastFetchMs);
    progress.leaderEndAtLastFetch = leaderEnd;
    progress.lastFetchMs = nowMs;
    progress.logEndOffset = Math.min(fetchOffset, leaderEnd);
    // A draining broker (controlled shutdown) is kept out: the controller just took it out.
    if (!led.state.isr.includes(brokerId) && progress.logEndOffset >= led.highWatermark && nowMs - progress.lastCaughtUpMs <= this.deps.config.replicaLagTimeMaxMs && !this.isDraining(brokerId)) {
      this.proposeIsr(led, [...led.state.isr, brokerId]);
    }
    this.advanceHighWatermark(led);
  }
}

function notLeader(topic: string, partition: number, why: string, leader = -1): RunnelError {
  return new RunnelError("NOT_LEADER", `this broker does not lead ${topic}-${partition}: ${why}`, { details: { leader } });
}
