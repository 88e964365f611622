/**
 * @module cluster/replica-fetcher
 * The follower side of replication: for each leader broker this broker follows partitions of,
 * one session — one native connection, one loop — that sends `replicaFetch` for all of them at
 * once (Kafka's fetcher-per-broker shape: a caught-up partition's long poll must not hold up a
 * partition that is catching up on the same connection, as one request per partition would,
 * answers on a connection coming back in order). For each partition in the answer it
 *   - appends the leader's batches as they are (Partition.appendAsFollower: the leader's offsets
 *     and epochs, contiguity checked);
 *   - on a `divergingEpoch {epoch, endOffset}` truncates where the two logs part (KIP-320):
 *     min(the leader's end of that epoch, this log's end of it), or, when this log does not have
 *     that epoch, this log's end of the largest epoch below it — never at a high watermark it
 *     merely remembers (the KIP-101 lesson); the next fetch checks again, so it converges;
 *   - keeps its high watermark at min(leader's high watermark, own log end).
 * A partition that moves (new leader or epoch, or this broker leads it now) leaves its session
 * at once: an answer for it still in flight is dropped, so two sessions never append to one log.
 */
import * as fs from "node:fs";
import { type ClientSasl, Connection } from "../client/connection.ts";
import type { ClientTls } from "../client/link.ts";
import { isMap, type WireMap } from "../client/wire.ts";
import type { Config } from "../config.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { BATCH_LOG_OVERHEAD_BYTES, FIELD } from "../format/record-batch.ts";
import type { LogManager, Partition } from "../log/api.ts";
import type { Logger } from "../logger.ts";
import { fetcherTls } from "./cluster-tls.ts";
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

/** One followed partition: the object identity is what an answer in flight is checked against. */
interface FollowEntry {
  topic: string;
  index: number;
  partition: Partition;
  leaderEpoch: number;
}

/** All partitions followed from one leader broker, fetched together over one connection. */
interface Session {
  leader: number;
  entries: Map<string, FollowEntry>;
  running: boolean;
  /** Settles when the loop has finished (after its request in flight). */
  done: Promise<void>;
  /** Ends a backoff pause early (stopped, or a partition added). */
  wake: (() => void) | null;
  connection: Connection | null;
  endpoint: string;
}

/** Bytes and batches appended as follower since start (the catch-up figure), truncations made. */
export interface FetcherCounters {
  bytes: number;
  batches: number;
  truncations: number;
  /** Logs fitted to the leader's range after OFFSET_OUT_OF_RANGE (restarted at its log start, or cut at its end). */
  restarts: number;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class ReplicaFetcher {
  private readonly sessions = new Map<number, Session>();
  /** Which session follows each partition. */
  private readonly followed = new Map<string, number>();
  readonly counters: FetcherCounters = { bytes: 0, batches: 0, truncations: 0, restarts: 0 };
  private stopped = false;
  /** The credentials the fetcher authenticates with (authentication "scram"), else null. */
  private readonly sasl: ClientSasl | null;
  /** TLS to the leaders when the native listener serves TLS (cluster/cluster-tls.ts), else null. */
  private readonly tls: ClientTls | null;

  constructor(private readonly deps: FetcherDeps) {
    this.sasl = fetcherCredentials(deps.config);
    this.tls = fetcherTls(deps.config);
  }

  /** Follows `leader` in `leaderEpoch` (a no-op when already doing so). */
  follow(topic: string, index: number, partition: Partition, leader: number, leaderEpoch: number): void {
    if (this.stopped) return;
    const key = keyOf(topic, index);
    const current = this.entryOf(key);
    if (current !== undefined && this.followed.get(key) === leader && current.leaderEpoch === leaderEpoch) return;
    this.unfollow(topic, index);
    let session = this.sessions.get(leader);
    if (session === undefined || !session.running) {
      session = { leader, entries: new Map(), running: true, done: Promise.resolve(), wake: null, connection: null, endpoint: "" };
      this.sessions.set(leader, session);
      const started = session;
      started.done = this.run(started);
    }
    session.entries.set(key, { topic, index, partition, leaderEpoch });
    this.followed.set(key, leader);
    session.wake?.();
    this.deps.logger.info({ topic, partition: index, leader, leaderEpoch }, "following partition");
  }

  unfollow(topic: string, index: number): void {
    const key = keyOf(topic, index);
    const leader = this.followed.get(key);
    if (leader === undefined) return;
    this.followed.delete(key);
    this.sessions.get(leader)?.entries.delete(key);
  }

  unfollowTopic(topic: string): void {
    for (const key of [...this.followed.keys()]) if (key.startsWith(`${topic}\u0000`)) this.unfollow(topic, Number(key.slice(topic.length + 1)));
  }

  isFollowing(topic: string, index: number): boolean {
    return this.followed.has(keyOf(topic, index));
  }

  async stopAll(): Promise<void> {
    this.stopped = true;
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    this.followed.clear();
    for (const session of sessions) {
      session.running = false;
      session.entries.clear();
      session.wake?.();
      session.connection?.abort();
    }
    await Promise.all(sessions.map((session) => session.done));
  }

  private entryOf(key: string): FollowEntry | undefined {
    const leader = this.followed.get(key);
    return leader === undefined ? undefined : this.sessions.get(leader)?.entries.get(key);
  }

  // ---- the loop ------------------------------------------------------------------------

  private async run(session: Session): Promise<void> {
    // Let follow() add the first entry before the loop looks at them.
    await Promise.resolve();
    while (session.running && session.entries.size > 0) {
      const connection = this.connectionOf(session);
      if (connection === null) {
        await this.pause(session);
        continue;
      }
      const sent = [...session.entries.values()];
      let answer: WireMap;
      try {
        answer = await connection.request("replicaFetch", this.fetchRequest(sent), this.deps.config.replicaFetchWaitMs + ANSWER_MARGIN_MS);
      } catch (error) {
        if (!session.running) break;
        const failure = toRunnelError(error);
        this.deps.logger.warn({ leader: session.leader, code: failure.code, err: failure.message }, "replica fetch failed");
        await this.pause(session);
        continue;
      }
      if (!session.running) break;
      if (!this.applyAnswer(session, sent, answer)) await this.pause(session);
    }
    session.running = false;
    if (this.sessions.get(session.leader) === session) this.sessions.delete(session.leader);
    session.connection?.abort();
  }

  private fetchRequest(entries: readonly FollowEntry[]): WireMap {
    return {
      brokerId: this.deps.view.brokerId,
      partitions: entries.map((entry) => ({
        topic: entry.topic,
        partition: entry.index,
        leaderEpoch: entry.leaderEpoch,
        fetchOffset: entry.partition.nextOffset,
        lastFetchedEpoch: entry.partition.latestLogEpoch,
      })),
      maxBytes: this.deps.config.replicaFetchBytesMax,
      maxWaitMs: this.deps.config.replicaFetchWaitMs,
    };
  }

  /**
   * Applies each partition's part of the answer, skipping partitions that left the session
   * meanwhile. False when every part was an error (the loop pauses before asking again).
   */
  private applyAnswer(session: Session, sent: readonly FollowEntry[], answer: WireMap): boolean {
    const parts = Array.isArray(answer.partitions) ? answer.partitions : [];
    const records = answer.records instanceof Uint8Array ? answer.records : new Uint8Array(0);
    let position = 0;
    let errors = 0;
    parts.forEach((part, index) => {
      if (!isMap(part)) return;
      const recordsBytes = Number(part.recordsBytes) || 0;
      const bytes = records.subarray(position, position + recordsBytes);
      position += recordsBytes;
      const entry = sent[index];
      if (entry === undefined || session.entries.get(keyOf(entry.topic, entry.index)) !== entry) return;
      if (isMap(part.error) && part.error.code === "OFFSET_OUT_OF_RANGE" && isMap(part.error.details)) {
        errors++;
        this.outOfRange(entry, part.error.details);
        return;
      }
      if (isMap(part.error)) {
        errors++;
        // NOT_LEADER / FENCED_LEADER_EPOCH: the view will say who leads; until then, ask again slowly.
        if (part.error.code !== "NOT_LEADER" && part.error.code !== "FENCED_LEADER_EPOCH") {
          this.deps.logger.warn({ topic: entry.topic, partition: entry.index, leader: session.leader, error: part.error }, "replica fetch refused");
        }
        return;
      }
      try {
        this.applyPart(entry, part, bytes);
      } catch (error) {
        errors++;
        this.deps.logger.warn({ topic: entry.topic, partition: entry.index, err: toRunnelError(error).message }, "replica fetch answer not applied");
      }
    });
    return errors < parts.length || parts.length === 0;
  }

  /** Truncates on a divergence, or appends the batches; then the high watermark. */
  private applyPart(entry: FollowEntry, part: WireMap, records: Uint8Array): void {
    const { partition } = entry;
    const diverging = part.divergingEpoch;
    if (isMap(diverging)) {
      const target = this.truncationOffset(partition, Number(diverging.epoch), Number(diverging.endOffset));
      const before = partition.nextOffset;
      partition.truncateTo(target);
      this.counters.truncations++;
      this.deps.logger.warn({ topic: entry.topic, partition: entry.index, divergingEpoch: diverging, from: before, to: partition.nextOffset }, "follower log diverged from the leader's; truncated");
    } else if (records.length > 0) {
      this.appendBatches(partition, records);
    }
    const highWatermark = Number(part.highWatermark);
    if (Number.isSafeInteger(highWatermark) && highWatermark >= 0) partition.setHighWatermark(Math.min(highWatermark, partition.nextOffset));
  }
  /**
   * The leader said this log's end is outside its log: below its log start (retention there ran
   * past this follower, or this is a new replica of a log whose first segments are gone), this
   * log starts over, empty, at the leader's log start (Kafka's truncateFullyAndStartAt); past
   * its end (only a log that restarted at an older leader's start can be), this log is cut at the
   * leader's end, or starts over at the leader's log start when it starts past that end. The
   * next fetch continues.
   */
  private outOfRange(entry: FollowEntry, details: WireMap): void {
    const { partition } = entry;
    const leaderStart = Number(details.logStartOffset);
    const leaderEnd = Number(details.nextOffset);
    if (!Number.isSafeInteger(leaderStart) || !Number.isSafeInteger(leaderEnd) || leaderStart < 0 || leaderEnd < leaderStart) return;
    const before = { logStartOffset: partition.logStartOffset, nextOffset: partition.nextOffset };
    try {
      if (partition.nextOffset < leaderStart) partition.restartAt(leaderStart);
      else if (partition.nextOffset > leaderEnd && leaderEnd >= partition.logStartOffset) partition.truncateTo(leaderEnd);
      else if (partition.nextOffset > leaderEnd) partition.restartAt(leaderStart);
      else return;
    } catch (error) {
      this.deps.logger.warn({ topic: entry.topic, partition: entry.index, err: toRunnelError(error).message }, "follower could not fit its log to the leader's range");
      return;
    }
    this.counters.restarts++;
    this.deps.logger.warn({ topic: entry.topic, partition: entry.index, before, leaderLogStartOffset: leaderStart, leaderNextOffset: leaderEnd, now: { logStartOffset: partition.logStartOffset, nextOffset: partition.nextOffset } }, "follower log outside the leader's; fitted to it");
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

  private pause(session: Session): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, RETRY_BACKOFF_MS);
      function finish(): void {
        clearTimeout(timer);
        session.wake = null;
        resolve();
      }
      session.wake = finish;
    });
  }

  // ---- connections ---------------------------------------------------------------------

  /** The session's connection to its leader (made on first use), or null while its endpoint is unknown. */
  private connectionOf(session: Session): Connection | null {
    const endpoint = this.deps.view.brokers().find((broker) => broker.brokerId === session.leader);
    if (endpoint === undefined) return null;
    const address = `${endpoint.host}:${endpoint.port}`;
    if (session.connection !== null && session.endpoint === address && !session.connection.closed) return session.connection;
    session.connection?.abort();
    // A lost connection reconnects by itself on the next request (client/connection.ts).
    session.connection = new Connection({
      broker: address,
      clientId: `replica-${this.deps.view.brokerId}`,
      connectTimeoutMs: 1_000,
      requestTimeoutMs: this.deps.config.replicaFetchWaitMs + ANSWER_MARGIN_MS,
      ...(this.sasl === null ? {} : { sasl: this.sasl }),
      ...(this.tls === null ? {} : { tls: this.tls }),
    });
    session.endpoint = address;
    return session.connection;
  }
}

/**
 * With authentication "scram" the leaders ask every connection to authenticate, the fetcher's
 * too: it does so as `clusterUser`, with the password from `clusterPasswordFile` (read once, at
 * start, so a missing file stops start-up rather than every fetch). Throws INVALID_CONFIG.
 */
export function fetcherCredentials(config: Config): ClientSasl | null {
  if (config.authentication !== "scram") return null;
  if (config.clusterUser === "" || config.clusterPasswordFile === "") {
    throw new RunnelError("INVALID_CONFIG", "cluster mode with authentication scram needs clusterUser and clusterPasswordFile: the replica fetcher must authenticate at the leaders");
  }
  let text: string;
  try {
    text = fs.readFileSync(config.clusterPasswordFile, "utf8");
  } catch (error) {
    throw new RunnelError("INVALID_CONFIG", `clusterPasswordFile ${config.clusterPasswordFile} cannot be read (${(error as Error).message}); give a readable file holding clusterUser's password`);
  }
  const password = text.split("\n")[0]?.replace(/\r$/, "") ?? "";
  if (password === "") throw new RunnelError("INVALID_CONFIG", `clusterPasswordFile ${config.clusterPasswordFile} is empty; its first line must be clusterUser's password`);
  return { user: config.clusterUser, password };
}
