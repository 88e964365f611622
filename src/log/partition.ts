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
 */
import type { AppendResult, LogSink, Partition, PartitionInfo, ReadSlice, TopicConfig } from "./api.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { verifyBatch, stampBaseOffset } from "../format/record-batch.ts";
import type { FileCache } from "./fd-cache.ts";
import { PartitionDurability } from "./partition-durability.ts";
import { PartitionHealth } from "./partition-health.ts";
import { emptyRecoveryReport, noteIndexRebuilt, recoverPartition, type PartitionRecovery, type RecoveredPartition, type RecoveryReporter } from "./partition-recovery.ts";
import { activeSegment, closeSegments, segmentFor } from "./partition-segments.ts";
import type { Preallocator } from "./preallocation.ts";
import { ProducerStateTable } from "./producer-state.ts";
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

  get failed(): boolean {
    return this.health.failure !== null;
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
    const lastOffset = baseOffset + header.lastOffsetDelta;
    if (this.shouldRoll(batch.length, lastOffset, appendTimeMs)) this.roll(appendTimeMs);
    const active = this.active;
    stampBaseOffset(batch, baseOffset);
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

  read(offset: number, maxBytes: number): ReadSlice | null {
    this.health.checkUsable();
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RunnelError("INVALID_REQUEST", `maxBytes must be a positive integer, got ${maxBytes}`);
    const nextOffset = this.nextOffset;
    if (offset === nextOffset) return null;
    this.checkOffset(offset);
    const segment = segmentFor(this.segments, offset);
    const fd = segment.acquire();
    let start: { position: number; baseOffset: number; totalBytes: number };
    let end: number;
    try {
      start = segment.locate(fd, offset);
      end = segment.sliceEnd(fd, start.position, start.totalBytes, maxBytes);
    } catch (error) {
      segment.release();
      throw this.health.storageFailure(error, "read", true);
    }
    let released = false;
    return {
      fd,
      position: start.position,
      length: end - start.position,
      firstOffset: start.baseOffset,
      release: () => {
        if (released) return;
        released = true;
        segment.release();
      },
    };
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

  /** Deletes whole closed segments past retention.ms or retention.bytes; returns how many. */
  applyRetention(nowMs: number): number {
    if (this.health.stopped) return 0;
    const retentionMs = this.config["retention.ms"];
    const retentionBytes = this.config["retention.bytes"];
    let totalBytes = this.info().sizeBytes;
    let deleted = 0;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
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
