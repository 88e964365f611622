/**
 * @module cluster/replica-fetcher
 * The follower side of replication: for each partition this broker follows, a loop that sends
 * `replicaFetch` to the leader — over one native connection per leader broker, shared by every
 * partition it leads (requests are pipelined) — and
 *   - appends the leader's batches as they are (Partition.appendAsFollower: the leader's offsets
 *     and epochs, contiguity checked);
 *   - on a `divergingEpoch {epoch, endOffset}` truncates where the two logs part (KIP-320):
 *     min(the leader's end of that epoch, this log's end of it), or, when this log does not have
 *     that epoch, this log's end of the largest epoch below it — never at a high watermark it
 *     merely remembers (the KIP-101 lesson); the next fetch checks again, so it converges;
 *   - keeps its high watermark at min(leader's high watermark, own log end).
 * A partition that moves to another leader or epoch gets a new loop, which starts only after the
 * old one has finished its request, so two loops never append to one log.
 */
import { Connection } from "../client/connection.ts";
import { isMap, type WireMap } from "../client/wire.ts";
import type { Config } from "../config.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { BATCH_LOG_OVERHEAD_BYTES, FIELD } from "../format/record-batch.ts";
import type { LogManager, Partition } from "../log/api.ts";
import type { Logger } from "../logger.ts";
import type { ClusterView } from "./cluster-view.ts";

export interface FetcherDeps {
  view: ClusterView;
  log: LogManager;
  config: Config;
  logger: Logger;
}

/** Pause after an error answer or a lost connection before fetching again. */
const RETRY_BACKOFF_MS = 50;
/** Added to a fetch's wait for its answer's own time bound. */
const ANSWER_MARGIN_MS = 5_000;

interface FollowTask {
  topic: string;
  index: number;
  partition: Partition;
  leader: number;
  leaderEpoch: number;
  running: boolean;
  /** Settles when the loop has finished (after its request in flight). */
  done: Promise<void>;
  /** Ends a backoff pause early when the task is stopped. */
  wake: (() => void) | null;
}

/** Bytes and batches appended as follower since start (the catch-up figure). */
export interface FetcherCounters {
  bytes: number;
  batches: number;
  truncations: number;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class ReplicaFetcher {
  private readonly tasks = new Map<string, FollowTask>();
  private readonly connections = new Map<number, { connection: Connection; host: string; port: number }>();
  readonly counters: FetcherCounters = { bytes: 0, batches: 0, truncations: 0 };

  constructor(private readonly deps: FetcherDeps) {}

  /** Follows `leader` in `leaderEpoch` (a no-op when already doing so). */
  follow(topic: string, index: number, partition: Partition, leader: number, leaderEpoch: number): void {
    const key = keyOf(topic, index);
    const current = this.tasks.get(key);
    if (current !== undefined && current.leader === leader && current.leaderEpoch === leaderEpoch) return;
    const previous = current === undefined ? Promise.resolve() : this.stopTask(current);
    const task: FollowTask = { topic, index, partition, leader, leaderEpoch, running: true, done: Promise.resolve(), wake: null };
    task.done = previous.then(() => this.run(task));
    this.tasks.set(key, task);
  }

  unfollow(topic: string, index: number): void {
    const task = this.tasks.get(keyOf(topic, index));
    if (task === undefined) return;
    this.tasks.delete(keyOf(topic, index));
    void this.stopTask(task);
  }

  unfollowTopic(topic: string): void {
    for (const task of [...this.tasks.values()]) if (task.topic === topic) this.unfollow(task.topic, task.index);
  }

  isFollowing(topic: string, index: number): boolean {
    return this.tasks.get(keyOf(topic, index))?.running === true;
  }

  async stopAll(): Promise<void> {
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    await Promise.all(tasks.map((task) => this.stopTask(task)));
    for (const { connection } of this.connections.values()) connection.abort();
    this.connections.clear();
  }

  private stopTask(task: FollowTask): Promise<void> {
    task.running = false;
    task.wake?.();
    return task.done;
  }

  // ---- the loop ------------------------------------------------------------------------

  private async run(task: FollowTask): Promise<void> {
    this.deps.logger.info({ topic: task.topic, partition: task.index, leader: task.leader, leaderEpoch: task.leaderEpoch }, "following partition");
    while (task.running) {
      const connection = this.connectionTo(task.leader);
      if (connection === null) {
        await this.pause(task);
        continue;
      }
      let answer: WireMap;
      try {
        answer = await connection.request("replicaFetch", this.fetchRequest(task), this.deps.config.replicaFetchWaitMs + ANSWER_MARGIN_MS);
      } catch (error) {
        if (!task.running) break;
        this.noteFetchError(task, toRunnelError(error));
        await this.pause(task);
        continue;
      }
      // Stopped while the request was out (a new leader, this broker leads now): drop the answer.
      if (!task.running) break;
      try {
        this.applyAnswer(task, answer);
      } catch (error) {
        this.deps.logger.warn({ topic: task.topic, partition: task.index, err: toRunnelError(error).message }, "replica fetch answer not applied");
        await this.pause(task);
      }
    }
  }

  private fetchRequest(task: FollowTask): WireMap {
    const { partition } = task;
    return {
      brokerId: this.deps.view.brokerId,
      topic: task.topic,
      partition: task.index,
      leaderEpoch: task.leaderEpoch,
      fetchOffset: partition.nextOffset,
      lastFetchedEpoch: partition.latestLogEpoch,
      maxBytes: this.deps.config.replicaFetchBytesMax,
      maxWaitMs: this.deps.config.replicaFetchWaitMs,
    };
  }

  private noteFetchError(task: FollowTask, error: RunnelError): void {
    // A lost connection reconnects by itself on the next request (client/connection.ts).
    // NOT_LEADER / FENCED_LEADER_EPOCH: the view will say who leads; until then, ask again slowly.
    if (error.code !== "NOT_LEADER" && error.code !== "FENCED_LEADER_EPOCH") {
      this.deps.logger.warn({ topic: task.topic, partition: task.index, leader: task.leader, code: error.code, err: error.message }, "replica fetch failed");
    }
  }

  /** Truncates on a divergence, or appends the batches; then the high watermark. */
  private applyAnswer(task: FollowTask, answer: WireMap): void {
    const { partition } = task;
    const diverging = answer.divergingEpoch;
    if (isMap(diverging)) {
      const target = this.truncationOffset(partition, Number(diverging.epoch), Number(diverging.endOffset));
      const before = partition.nextOffset;
      partition.truncateTo(target);
      this.counters.truncations++;
      this.deps.logger.warn({ topic: task.topic, partition: task.index, divergingEpoch: diverging, from: before, to: partition.nextOffset }, "follower log diverged from the leader's; truncated");
    } else {
      const records = answer.records;
      if (records instanceof Uint8Array && records.length > 0) this.appendBatches(partition, records);
    }
    const highWatermark = Number(answer.highWatermark);
    if (Number.isSafeInteger(highWatermark) && highWatermark >= 0) partition.setHighWatermark(Math.min(highWatermark, partition.nextOffset));
  }

  /** Where to cut for the leader's `{epoch, endOffset}` (Kafka's getOffsetTruncationState, one step). */
  private truncationOffset(partition: Partition, epoch: number, leaderEndOffset: number): number {
    if (epoch < 0) return partition.logStartOffset;
    const own = partition.endOffsetForEpoch(epoch);
    if (own.epoch < 0) return partition.logStartOffset;
    return own.epoch === epoch ? Math.min(leaderEndOffset, own.endOffset) : Math.min(own.endOffset, partition.nextOffset);
  }

  /** Appends each whole batch of `records` that continues the log (the first may start below it). */
  private appendBatches(partition: Partition, records: Uint8Array): void {
    const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
    let position = 0;
    while (records.length - position >= BATCH_LOG_OVERHEAD_BYTES) {
      const totalBytes = BATCH_LOG_OVERHEAD_BYTES + view.getInt32(position + FIELD.batchLength);
      if (totalBytes <= BATCH_LOG_OVERHEAD_BYTES || position + totalBytes > records.length) {
        throw new RunnelError("CORRUPT_BATCH", `a replicated batch at byte ${position} declares ${totalBytes} bytes; ${records.length - position} came`);
      }
      const batch = records.subarray(position, position + totalBytes);
      const baseOffset = view.getInt32(position + FIELD.baseOffset) * 0x1_0000_0000 + view.getUint32(position + FIELD.baseOffset + 4);
      const lastOffset = baseOffset + view.getInt32(position + FIELD.lastOffsetDelta);
      if (lastOffset >= partition.nextOffset) {
        partition.appendAsFollower(batch);
        this.counters.bytes += totalBytes;
        this.counters.batches++;
      }
      position += totalBytes;
    }
  }

  private pause(task: FollowTask): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, RETRY_BACKOFF_MS);
      function finish(): void {
        clearTimeout(timer);
        task.wake = null;
        resolve();
      }
      task.wake = finish;
    });
  }

  // ---- connections ---------------------------------------------------------------------

  /** The connection to `brokerId` (made on first use), or null while its endpoint is unknown. */
  private connectionTo(brokerId: number): Connection | null {
    const endpoint = this.deps.view.brokers().find((broker) => broker.brokerId === brokerId);
    if (endpoint === undefined) return null;
    const known = this.connections.get(brokerId);
    if (known !== undefined && known.host === endpoint.host && known.port === endpoint.port && !known.connection.closed) return known.connection;
    known?.connection.abort();
    const connection = new Connection({
      broker: `${endpoint.host}:${endpoint.port}`,
      clientId: `replica-${this.deps.view.brokerId}`,
      connectTimeoutMs: 1_000,
      requestTimeoutMs: this.deps.config.replicaFetchWaitMs + ANSWER_MARGIN_MS,
    });
    this.connections.set(brokerId, { connection, host: endpoint.host, port: endpoint.port });
    return connection;
  }
}
