/**
 * @module log/partition
 * One partition, and the coordinator of its jobs. This file assigns offsets and appends
 * (rolling to a new segment when the active one is full or old), serves reads, applies
 * retention and closes; the rest lives beside it:
 *
 *   - partition-recovery.ts: what opening the directory does (verify everything after the
 *     recovery point, cut the log at the first bad batch, rebuild the producer table);
 *   - partition-durability.ts: flush, group-committed sync, the flush policy (flush.messages,
 *     flush.ms) in the background, and the recovery-point checkpoint after a roll;
 *   - partition-health.ts: the failure policy (STORAGE_FULL cuts the partial write off and
 *     leaves the partition usable; any other I/O error fails it: PARTITION_FAILED from then on);
 *   - partition-segments.ts: the ordered segment list (lookup by offset, closing them all).
 *
 * The append path does O(1) work per batch: one crc check (native), one header stamp in
 * place, one pwrite, and an in-memory index entry every ~4 KiB (plus, every few MiB, one
 * fallocate that reserves blocks ahead: preallocation.ts). The index files and the
 * recovery point are written at flush, roll and close.
 *
 * Idempotent producers: batches with a producer id go through producer-state.ts first; a
 * retry of a batch already in the log is answered with its original offsets (`duplicate`).
 *
 * Replication (docs/cluster.md): append() stamps each batch with the partition's leader epoch
 * (0 on a single node) and leader-epoch.ts keeps the epoch -> start offset history;
 * appendAsFollower() stores a leader's batches as they are (its offsets and epochs), checking
 * they continue the log; truncateTo() cuts a divergent tail, crash-safely.
 */
import type { AppendResult, LogSink, Partition, PartitionInfo, ReadSlice, TopicConfig } from "./api.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { verifyBatch, stampBaseOffset, type BatchHeader } from "../format/record-batch.ts";
import type { FileCache } from "./fd-cache.ts";
import { PartitionDurability } from "./partition-durability.ts";
import { PartitionHealth } from "./partition-health.ts";
import { type EpochEnd, type EpochEntry, fitEpochsToLog, LeaderEpochCache, noteBatchEpoch, readEpochFile } from "./leader-epoch.ts";
import { emptyRecoveryReport, noteIndexRebuilt, rebuildProducerState, recoverPartition, type PartitionRecovery, type RecoveredPartition, type RecoveryReporter } from "./partition-recovery.ts";
import { activeSegment, closeSegments, segmentFor } from "./partition-segments.ts";
import type { Preallocator } from "./preallocation.ts";
import { PRODUCER_STATE_FILE, ProducerStateTable } from "./producer-state.ts";
import { RECOVERY_POINT_FILE, writeRecoveryPoint } from "./recovery-point.ts";
import { LOG_SUFFIX, Segment, segmentFileName, type SegmentContext } from "./segment.ts";
import type { Storage } from "./storage.ts";

// What LogPartition.open reports; the log manager imports these from here.
export type { IndexRebuild, PartitionRecovery, Truncation } from "./partition-recovery.ts";

export interface PartitionOptions {
  topic: string;
  index: number;
  directory: string;
  config: TopicConfig;
  storage: Storage;
  cache: FileCache;
  logger: LogSink;
  now: () => number;
  indexIntervalBytes: number;
  /** Reserves blocks ahead of the active segment's end (shared by the log manager's partitions). */
  preallocator: Preallocator;
  /** Idempotent producers tracked before the least recently used is forgotten. */
  producersMax?: number;
}

/** What the constructor is built from: the options and what opening the directory recovered. */
interface OpenedPartition {
  options: PartitionOptions;
  context: SegmentContext;
  producers: ProducerStateTable;
  recovered: RecoveredPartition;
  openedAtMs: number;
}

export class LogPartition implements Partition {
  readonly topic: string;
  readonly index: number;
  config: TopicConfig;
  private readonly directory: string;
  private readonly storage: Storage;
  private readonly logger: LogSink;
  private readonly now: () => number;
  private readonly context: SegmentContext;
  /** Oldest first, the last one active; retention shifts and roll pushes in place (durability reads it). */
  private readonly segments: Segment[];
  private readonly producers: ProducerStateTable;
  private readonly health: PartitionHealth;
  private readonly durability: PartitionDurability;
  private readonly epochs: LeaderEpochCache;
  /** The epoch append() stamps: this broker's leader epoch for the partition (0 on a single node). */
  private leaderEpochNow: number;
  /** Set by replication (src/cluster/): what consumers may read up to; -1 on a single node (the log end). */
  private replicatedHighWatermark = -1;

  private constructor(opened: OpenedPartition) {
    const { options, recovered } = opened;
    this.topic = options.topic;
    this.index = options.index;
    this.config = options.config;
    this.directory = options.directory;
    this.storage = options.storage;
    this.logger = options.logger;
    this.now = options.now;
    this.context = opened.context;
    this.segments = recovered.segments;
    this.producers = opened.producers;
    this.health = new PartitionHealth(options.topic, options.index, options.logger);
    this.durability = new PartitionDurability({
      directory: options.directory,
      storage: options.storage,
      syncSlots: options.cache.syncSlots,
      segments: this.segments,
      producers: opened.producers,
      health: this.health,
      now: options.now,
      recoveryPoint: recovered.recoveryPoint,
      snapshotOffset: recovered.snapshotOffset,
      openedAtMs: opened.openedAtMs,
    });
    this.epochs = openEpochs(options, this.segments);
    this.leaderEpochNow = Math.max(this.epochs.latestEpoch, 0);
  }

  /** Creates the directory and an empty first segment (the caller renames it into place). */
  static initializeDirectory(storage: Storage, directory: string): void {
    storage.mkdirp(directory);
    const fd = storage.open(`${directory}/${segmentFileName(0, LOG_SUFFIX)}`, { create: true });
    storage.close(fd);
    writeRecoveryPoint(storage, directory, { offset: 0, segment: 0, position: 0 });
  }

  /** Opens a partition directory, verifying everything after its recovery point. */
  static open(options: PartitionOptions): { partition: LogPartition; recovery: PartitionRecovery } {
    // The flush.ms clock starts before recovery, which may take a while.
    const openedAtMs = options.now();
    const reporter: RecoveryReporter = { topic: options.topic, index: options.index, logger: options.logger, report: emptyRecoveryReport() };
    const context: SegmentContext = {
      storage: options.storage,
      cache: options.cache,
      indexIntervalBytes: options.indexIntervalBytes,
      preallocator: options.preallocator,
      // Also after open: a closed segment's index is loaded (and maybe rebuilt) on first use.
      onIndexRebuilt: (segment, reason) => noteIndexRebuilt(reporter, segment, reason),
    };
    const producers = new ProducerStateTable(options.producersMax);
    const recovered = recoverPartition({ ...reporter, directory: options.directory, storage: options.storage, now: options.now, context, producers });
    const partition = new LogPartition({ options, context, producers, recovered, openedAtMs });
    if (reporter.report.bytesScanned > 0) partition.durability.checkpointAfterRecovery();
    return { partition, recovery: reporter.report };
  }

  // ---- state ---------------------------------------------------------------------------

  private get active(): Segment {
    return activeSegment(this.segments);
  }

  get logStartOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  get nextOffset(): number {
    return this.active.nextOffset;
  }

  info(): PartitionInfo {
    let sizeBytes = 0;
    for (const segment of this.segments) sizeBytes += segment.sizeBytes;
    return { topic: this.topic, partition: this.index, logStartOffset: this.logStartOffset, nextOffset: this.nextOffset, sizeBytes, segmentCount: this.segments.length };
  }

  /** Heap bytes of this partition's segment indexes (the active one's entries, the sealed ones' block heads). */
  get indexMemoryBytes(): number {
    let bytes = 0;
    for (const segment of this.segments) bytes += segment.indexMemoryBytes;
    return bytes;
  }

  get failed(): boolean {
    return this.health.failure !== null;
  }

  // ---- high watermark (replication) ----------------------------------------------------

  /** Consumers read below this: the log end on a single node, the replicated high watermark in a cluster. */
  get highWatermark(): number {
    const nextOffset = this.nextOffset;
    return this.replicatedHighWatermark < 0 ? nextOffset : Math.min(this.replicatedHighWatermark, nextOffset);
  }

  /** Replication sets the high watermark (a batch boundary); null gives the single-node rule back. */
  setHighWatermark(offset: number | null): void {
    this.replicatedHighWatermark = offset === null ? -1 : Math.max(offset, 0);
  }

  // ---- leader epochs (leader-epoch.ts) -------------------------------------------------

  /** The epoch append() stamps into batches. */
  get leaderEpoch(): number {
    return this.leaderEpochNow;
  }

  /** The latest epoch of a batch in the log (-1 for an empty log). */
  get latestLogEpoch(): number {
    return this.epochs.latestEpoch;
  }

  /** This broker leads the partition from now on in `epoch`: append() stamps it from here. */
  becomeLeader(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < this.epochs.latestEpoch || epoch > 0x7fff_ffff) {
      throw new RunnelError("INVALID_REQUEST", `leader epoch ${epoch} is below the log's latest epoch ${this.epochs.latestEpoch}`);
    }
    this.leaderEpochNow = epoch;
    // Kafka's rule: the new epoch starts at the log end now, pinning where the previous one ends.
    if (epoch > this.epochs.latestEpoch) this.assignEpoch(epoch, this.nextOffset);
  }

  /** Kafka's OffsetForLeaderEpoch: where `epoch` ends in this log (leader-epoch.ts endOffsetFor). */
  endOffsetForEpoch(epoch: number): EpochEnd {
    return this.epochs.endOffsetFor(epoch, this.nextOffset);
  }

  /** The epoch history (epoch -> start offset), oldest first. */
  epochHistory(): readonly EpochEntry[] {
    return this.epochs.list();
  }

  // ---- append --------------------------------------------------------------------------

  append(batch: Uint8Array): AppendResult {
    this.health.checkUsable();
    const header = verifyBatch(batch);
    const appendTimeMs = this.now();
    if (header.producerId >= 0) {
      const original = this.producers.check(header, `${this.topic}-${this.index}`);
      if (original !== null) return { baseOffset: original.baseOffset, lastOffset: original.lastOffset, appendTimeMs, duplicate: true };
    }
    const baseOffset = this.active.nextOffset;
    const epoch = this.leaderEpochNow;
    stampBaseOffset(batch, baseOffset, epoch);
    return this.writeBatch(batch, header, baseOffset, epoch, appendTimeMs);
  }

  /**
   * A follower's append: stores a batch the leader already stamped, as it is (its base offset
   * and leader epoch), after checking its header and checksum and that it continues this log
   * (base offset = next offset, epoch not older than the latest). The producer table learns
   * the leader's idempotent batches, so it is ready should this broker become the leader.
   */
  appendAsFollower(batch: Uint8Array): AppendResult {
    this.health.checkUsable();
    const header = verifyBatch(batch);
    const nextOffset = this.nextOffset;
    if (header.baseOffset !== nextOffset) {
      throw new RunnelError("INVALID_REQUEST", `${this.topic}-${this.index}: a replicated batch starts at ${header.baseOffset} where the log ends at ${nextOffset}`);
    }
    if (header.leaderEpoch < this.epochs.latestEpoch) {
      throw new RunnelError("INVALID_REQUEST", `${this.topic}-${this.index}: a replicated batch of epoch ${header.leaderEpoch} follows epoch ${this.epochs.latestEpoch}`);
    }
    return this.writeBatch(batch, header, nextOffset, header.leaderEpoch, this.now());
  }

  /** The common tail of both appends: roll when due, record the epoch, write, bookkeeping. */
  private writeBatch(batch: Uint8Array, header: BatchHeader, baseOffset: number, epoch: number, appendTimeMs: number): AppendResult {
    const lastOffset = baseOffset + header.lastOffsetDelta;
    if (this.shouldRoll(batch.length, lastOffset, appendTimeMs)) this.roll(appendTimeMs);
    const active = this.active;
    if (epoch !== this.epochs.latestEpoch) this.assignEpoch(epoch, baseOffset);
    try {
      active.append(batch, baseOffset, lastOffset, header.maxTimestamp, this.config["segment.bytes"]);
    } catch (error) {
      throw this.health.storageFailure(error, "append");
    }
    if (active.rollBaseMs < 0) active.rollBaseMs = appendTimeMs;
    if (header.producerId >= 0) this.producers.record(header.producerId, header.producerEpoch, header.baseSequence, header.recordCount, baseOffset);
    this.durability.noteAppended(header.recordCount, this.config["flush.messages"]);
    return { baseOffset, lastOffset, appendTimeMs };
  }

  /** The first batch of a new epoch: its checkpoint is written before the batch (leader-epoch.ts). */
  private assignEpoch(epoch: number, baseOffset: number): void {
    try {
      this.epochs.assign(epoch, baseOffset);
    } catch (error) {
      throw this.health.storageFailure(error, "leader epoch checkpoint");
    }
  }

  // ---- truncation ----------------------------------------------------------------------

  /**
   * Cuts the log before the batch holding `offset` (at `offset` when a batch starts there):
   * later segments deleted newest first, the one holding the cut truncated and its indexes
   * rebuilt, the epoch history and the producer table fitted to the shorter log. Crash-safe: the
   * recovery point moves before the cut first, so a crash at any step re-verifies from there.
   * Returns the new next offset. Nothing happens at or past the end.
   */
  truncateTo(offset: number): number {
    this.health.checkUsable();
    if (!Number.isSafeInteger(offset)) throw new RunnelError("INVALID_REQUEST", `truncation offset ${offset} is not an integer`);
    if (offset >= this.nextOffset) return this.nextOffset;
    const cutAt = Math.max(offset, this.logStartOffset);
    const keep = this.segments.findLastIndex((segment) => segment.baseOffset <= cutAt);
    const target = this.segments[keep]!;
    let bytesDropped = 0;
    try {
      this.durability.beforeTruncation(cutAt, target.baseOffset);
      while (this.segments.length - 1 > keep) {
        const removed = this.segments.pop()!;
        bytesDropped += removed.sizeBytes;
        removed.delete();
      }
      bytesDropped += target.truncateTo(cutAt);
      target.rollBaseMs = -1;
      this.epochs.truncateFromEnd(target.nextOffset);
      this.rebuildProducersAfterTruncation();
      this.durability.afterTruncation();
    } catch (error) {
      throw this.health.storageFailure(error, "truncation");
    }
    if (this.leaderEpochNow < this.epochs.latestEpoch) this.leaderEpochNow = Math.max(this.epochs.latestEpoch, 0);
    this.logger.warn({ topic: this.topic, partition: this.index, offset, nextOffset: this.nextOffset, bytesDropped }, "log truncated (replica divergence)");
    return this.nextOffset;
  }

  /**
   * Kafka's truncateFullyAndStartAt, for a follower whose log ends below the leader's log start
   * (retention there ran past it, or a new replica joins a log whose first segments are gone):
   * every segment goes and the log starts over, empty, at `offset`, which becomes its log start:
   * past its end, or below its start (a log restarted at an older leader's start, now past a
   * leader's end), never inside it (that is truncateTo). Crash-safe by order: the new empty
   * segment first, the epoch history removed (a crash now rebuilds it from the old batches'
   * headers), the old segments deleted oldest first, then the producer table, its snapshot and
   * the recovery point (below the start: the recovery point first, naming the new segment). A
   * crash in between leaves segments with a gap between the old ones and the new one, which
   * recovery cuts off after the first of them: past the end, the old log's newest part (as
   * retention would leave it); below the start, the new empty log.
   */
  restartAt(offset: number): void {
    this.health.checkUsable();
    if (!Number.isSafeInteger(offset) || offset < 0 || (offset <= this.nextOffset && offset >= this.logStartOffset)) {
      throw new RunnelError("INVALID_REQUEST", `${this.topic}-${this.index}: a log can start over only past its end ${this.nextOffset} or below its start ${this.logStartOffset}, not at ${offset}`);
    }
    const from = { logStartOffset: this.logStartOffset, nextOffset: this.nextOffset };
    try {
      // Below the start, the new segment comes first in the directory: recovery would trust it
      // (before the recovery point) as reaching the next one, unless the point names it already.
      if (offset < from.logStartOffset) this.durability.moveRecoveryPoint(offset);
      const fresh = Segment.create(this.context, this.directory, offset);
      fresh.rollBaseMs = -1;
      this.segments.push(fresh);
      this.epochs.reset();
      while (this.segments.length > 1) this.segments.shift()!.delete();
      this.producers.clear();
      this.durability.afterRestart(offset);
    } catch (error) {
      throw this.health.storageFailure(error, "restart at the leader's log start");
    }
    this.leaderEpochNow = 0;
    if (this.replicatedHighWatermark >= 0) this.replicatedHighWatermark = Math.max(this.replicatedHighWatermark, offset);
    this.logger.warn({ topic: this.topic, partition: this.index, ...from, restartedAt: offset }, "log emptied and restarted at the leader's log start");
  }

  /** The producer table for the shorter log: from the snapshot when it is not past the cut, else from the headers. */
  private rebuildProducersAfterTruncation(): void {
    this.producers.clear();
    let scanFrom = this.durability.recoveryPointNow;
    if (this.durability.producerSnapshotOffset > this.nextOffset) {
      // The snapshot describes batches that are gone: without it, the whole log is scanned.
      this.storage.unlink(`${this.directory}/${PRODUCER_STATE_FILE}`);
      scanFrom = { offset: this.logStartOffset, segment: this.logStartOffset, position: 0 };
    }
    const reporter: RecoveryReporter = { topic: this.topic, index: this.index, logger: this.logger, report: emptyRecoveryReport() };
    rebuildProducerState(
      { ...reporter, directory: this.directory, storage: this.storage, now: this.now, context: this.context, producers: this.producers },
      this.segments,
      scanFrom,
    );
  }

  private shouldRoll(batchBytes: number, lastOffset: number, nowMs: number): boolean {
    const active = this.active;
    if (active.sizeBytes === 0) return false;
    if (active.sizeBytes + batchBytes > this.config["segment.bytes"]) return true;
    if (active.rollBaseMs >= 0 && nowMs - active.rollBaseMs >= this.config["segment.ms"]) return true;
    return !active.fitsRelativeOffset(lastOffset);
  }

  private roll(nowMs: number): void {
    const old = this.active;
    let next: Segment;
    try {
      next = Segment.create(this.context, this.directory, old.nextOffset);
    } catch (error) {
      throw this.health.storageFailure(error, "roll");
    }
    try {
      old.seal();
    } catch (error) {
      next.delete();
      throw this.health.storageFailure(error, "roll");
    }
    next.rollBaseMs = -1;
    this.segments.push(next);
    this.logger.info({ topic: this.topic, partition: this.index, segment: next.baseOffset, atMs: nowMs }, "segment rolled");
    this.durability.afterRoll();
  }

  // ---- reads ---------------------------------------------------------------------------

  read(offset: number, maxBytes: number, endOffset: number = Number.MAX_SAFE_INTEGER): ReadSlice | null {
    this.health.checkUsable();
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RunnelError("INVALID_REQUEST", `maxBytes must be a positive integer, got ${maxBytes}`);
    const nextOffset = this.nextOffset;
    if (offset === nextOffset) return null;
    this.checkOffset(offset);
    if (offset >= endOffset) return null;
    const segment = segmentFor(this.segments, offset);
    const fd = segment.acquire();
    let start: { position: number; baseOffset: number; totalBytes: number };
    let end: number;
    try {
      start = segment.locate(fd, offset);
      end = segment.sliceEnd(fd, start.position, start.totalBytes, maxBytes);
      // Only whole batches below endOffset (a high watermark is always a batch boundary).
      if (endOffset < segment.nextOffset) end = Math.min(end, segment.locate(fd, endOffset).position);
    } catch (error) {
      segment.release();
      throw this.health.storageFailure(error, "read", true);
    }
    return new SegmentSlice(fd, start.position, end - start.position, start.baseOffset, segment);
  }

  private checkOffset(offset: number): void {
    const logStartOffset = this.logStartOffset;
    const nextOffset = this.nextOffset;
    if (!Number.isSafeInteger(offset) || offset < logStartOffset || offset > nextOffset) {
      throw new RunnelError("OFFSET_OUT_OF_RANGE", `offset ${offset} is outside ${this.topic}-${this.index}'s range [${logStartOffset}, ${nextOffset}]`, {
        details: { logStartOffset, nextOffset },
      });
    }
  }

  readBytes(slice: ReadSlice): Uint8Array {
    const bytes = new Uint8Array(slice.length);
    let read: number;
    try {
      read = this.storage.pread(slice.fd, bytes, slice.position);
    } catch (error) {
      throw this.health.storageFailure(error, "read", true);
    }
    if (read !== slice.length) {
      throw new RunnelError("STORAGE_ERROR", `short read: ${read} of ${slice.length} bytes at ${slice.position} (was the slice released?)`);
    }
    return bytes;
  }

  offsetForTimestamp(timestampMs: number): number | null {
    this.health.checkUsable();
    for (const segment of this.segments) {
      if (segment.sizeBytes === 0 || segment.maxTimestamp < timestampMs) continue;
      const fd = segment.acquire();
      try {
        const offset = segment.offsetForTimestamp(fd, timestampMs);
        if (offset !== null) return Math.max(offset, this.logStartOffset);
      } catch (error) {
        throw this.health.storageFailure(error, "offsetForTimestamp", true);
      } finally {
        segment.release();
      }
    }
    return null;
  }

  maxTimestamp(): number {
    this.health.checkUsable();
    let maxTimestampMs = -1;
    for (const segment of this.segments) {
      if (segment.sizeBytes > 0 && segment.maxTimestamp > maxTimestampMs) maxTimestampMs = segment.maxTimestamp;
    }
    return maxTimestampMs;
  }

  // ---- durability (partition-durability.ts) --------------------------------------------

  flush(): void {
    this.durability.flush();
  }

  sync(): Promise<void> {
    return this.durability.sync();
  }

  /** Background flush policy (flush.ms); called by the log manager's timer. */
  flushIfDue(nowMs: number): void {
    this.durability.flushIfDue(nowMs, this.config["flush.ms"]);
  }

  /** For tests and tools: the recovery point as last written. */
  get recoveryPointOffset(): number {
    return this.durability.recoveryPointOffset;
  }

  static readonly recoveryPointFile = RECOVERY_POINT_FILE;

  // ---- retention -----------------------------------------------------------------------

  /** Deletes whole closed segments past retention.ms or retention.bytes, below the high watermark; returns how many. */
  applyRetention(nowMs: number): number {
    if (this.health.stopped) return 0;
    const retentionMs = this.config["retention.ms"];
    const retentionBytes = this.config["retention.bytes"];
    let totalBytes = this.info().sizeBytes;
    let deleted = 0;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      // Kafka's rule: nothing at or past the high watermark goes (in a cluster a follower may still
      // need it, and it is not committed yet); on a single node that is the log end.
      if (oldest.nextOffset > this.highWatermark) break;
      const expired = retentionMs >= 0 && nowMs - oldest.maxTimestamp > retentionMs;
      const oversize = retentionBytes >= 0 && totalBytes - oldest.sizeBytes >= retentionBytes;
      if (!expired && !oversize) break;
      this.segments.shift();
      totalBytes -= oldest.sizeBytes;
      deleted++;
      try {
        oldest.delete();
      } catch (error) {
        this.logger.error({ topic: this.topic, partition: this.index, segment: oldest.baseOffset, error: toRunnelError(error).message }, "retention could not delete a segment");
      }
      this.logger.info({ topic: this.topic, partition: this.index, segment: oldest.baseOffset, reason: expired ? "retention.ms" : "retention.bytes", logStartOffset: this.logStartOffset }, "segment deleted by retention");
    }
    return deleted;
  }

  // ---- close ---------------------------------------------------------------------------

  /** Waits for background work, flushes, and hands every fd back for closing. */
  async close(): Promise<void> {
    if (this.health.closed) return;
    await this.durability.flushBeforeClose();
    let flushError: unknown = null;
    if (this.health.failure === null) {
      try {
        this.flush();
      } catch (error) {
        flushError = error;
      }
    }
    this.health.markClosed();
    this.closeSegments();
    if (flushError !== null) throw flushError;
    if (this.health.failure !== null) throw this.health.failure;
  }

  /** Closes at once without flushing. */
  closeNow(): void {
    this.health.markClosed();
    this.closeSegments();
  }

  /** Closes at once writing nothing (the topic is being deleted: its files go next). */
  abandon(): void {
    this.health.markClosed();
    for (const segment of this.segments) segment.abandon();
  }

  private closeSegments(): void {
    closeSegments(this.segments, { topic: this.topic, index: this.index, logger: this.logger });
  }
}

/**
 * A read's slice: an object whose release() is a method, not a closure, so a fetch allocates
 * one object here rather than an object, a function and its scope (bench/alloc.bench.ts).
 */
class SegmentSlice implements ReadSlice {
  private released = false;

  constructor(
    readonly fd: number,
    readonly position: number,
    readonly length: number,
    readonly firstOffset: number,
    private readonly segment: Segment,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.segment.release();
  }
}

/**
 * The epoch history on open (leader-epoch.ts): the checkpoint fitted to the recovered log; with
 * no checkpoint, epoch 0 from the log start unless the last batch says otherwise; an unusable
 * or lost checkpoint rebuilt from the batch headers and written again.
 */
function openEpochs(options: PartitionOptions, segments: readonly Segment[]): LeaderEpochCache {
  const { storage, directory } = options;
  const logStartOffset = segments[0]!.baseOffset;
  const logEndOffset = activeSegment(segments).nextOffset;
  const read = readEpochFile(storage, directory);
  if (read.entries !== null) return new LeaderEpochCache(storage, directory, fitEpochsToLog(read.entries, logStartOffset, logEndOffset), true);
  if (logEndOffset === logStartOffset) return new LeaderEpochCache(storage, directory, [], false);
  if (read.problem === null && lastBatchEpoch(segments) <= 0) return new LeaderEpochCache(storage, directory, [{ epoch: 0, startOffset: logStartOffset }], false);
  const entries: EpochEntry[] = [];
  for (const segment of segments) segment.forEachBatchEpoch((epoch, baseOffset) => noteBatchEpoch(entries, epoch, baseOffset));
  options.logger.warn({ topic: options.topic, partition: options.index, problem: read.problem ?? "missing", epochs: entries.length }, "leader-epoch checkpoint rebuilt from the batches");
  const cache = new LeaderEpochCache(storage, directory, entries, true);
  cache.persist();
  return cache;
}

/** Leader epoch of the log's last batch (the log is not empty). */
function lastBatchEpoch(segments: readonly Segment[]): number {
  const last = segments.findLast((segment) => segment.sizeBytes > 0);
  return last === undefined ? -1 : last.epochAt(last.nextOffset - 1);
}
