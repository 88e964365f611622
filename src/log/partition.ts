/**
 * @module log/partition
 * One partition: its ordered segments, offset assignment, roll, reads, retention, the
 * durability primitives (flush, group-committed sync) and its recovery on open.
 *
 * The append path does O(1) work per batch: one crc check (native), one header stamp in
 * place, one pwrite, and an in-memory index entry every ~4 KiB (plus, every few MiB, one
 * fallocate that reserves blocks ahead: preallocation.ts). The index files and the
 * recovery point are written at flush, roll and close.
 *
 * Failure policy: ENOSPC/EDQUOT (STORAGE_FULL) cuts the partial write off and leaves the
 * partition usable; any other I/O error marks it failed (PARTITION_FAILED from then on),
 * because after a failed write or fsync the state of the file is no longer known.
 *
 * Idempotent producers: batches with a producer id go through producer-state.ts first; a
 * retry of a batch already in the log is answered with its original offsets (`duplicate`).
 * The table is rebuilt on open from its snapshot plus the headers after the snapshot.
 *
 * Flush policy (flush.messages, flush.ms, and the checkpoint after a roll) runs in the
 * background: fdatasync on a worker thread, checkpoint files via durable-file.ts. Only
 * flush() (close, tests, tools) is synchronous.
 */
import { CoalescingJob } from "./coalescing-job.ts";
import type { AppendResult, LogSink, Partition, PartitionInfo, ReadSlice, TopicConfig } from "./api.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { verifyBatch, stampBaseOffset } from "../format/record-batch.ts";
import { commitTemp, writeTempDurably } from "./durable-file.ts";
import { PRODUCER_STATE_FILE, ProducerStateTable, scanProducerBatches, type SnapshotPosition } from "./producer-state.ts";
import type { FileCache } from "./fd-cache.ts";
import type { Preallocator } from "./preallocation.ts";
import { encodeRecoveryPoint, readRecoveryPoint, RECOVERY_POINT_FILE, writeRecoveryPoint, type RecoveryPoint } from "./recovery-point.ts";
import { INDEX_SUFFIX, LOG_SUFFIX, parseSegmentFileName, Segment, segmentFileName, TIME_INDEX_SUFFIX, type SegmentContext } from "./segment.ts";
import type { Storage } from "./storage.ts";
import { SyscallError } from "../native/libc.ts";

function isSyncFailure(error: unknown): boolean {
  return !(error instanceof SyscallError) || error.syscall === "fdatasync" || error.syscall === "fsync";
}

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

export interface Truncation {
  topic: string;
  partition: number;
  offset: number;
  bytesDropped: number;
  reason: string;
}

export interface IndexRebuild {
  topic: string;
  partition: number;
  segment: number;
  reason: string;
}

/** What opening a partition found and repaired. */
export interface PartitionRecovery {
  truncations: Truncation[];
  indexRebuilds: IndexRebuild[];
  /** Bytes verified after the recovery point. */
  bytesScanned: number;
  /** Batch headers read to rebuild the idempotent-producer table. */
  producerBatchesScanned: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  return { promise, resolve, reject };
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
  private readonly segments: Segment[] = [];
  private recoveryPoint: RecoveryPoint = { offset: 0, segment: 0, position: 0 };
  private failure: RunnelError | null = null;
  private closed = false;
  private unflushedMessages = 0;
  private lastFlushMs: number;
  /** Group commit: the fdatasync running now, and the one queued behind it. */
  private syncRunning: Promise<void> | null = null;
  private syncNext: Deferred | null = null;
  /** Segments below this base were covered by a completed sync (or the recovery point). */
  private syncFloorBase = 0;
  /** Background flush of rolled segments, then recovery point at the new active segment. */
  private readonly rollCheckpoint = new CoalescingJob(() => this.runRollCheckpoint());
  /** Background flush policy (flush.messages / flush.ms). */
  private readonly backgroundFlush = new CoalescingJob(async () => {
    await this.flushInBackground();
    return !this.closed && this.failure === null;
  });
  private readonly producers: ProducerStateTable;
  /** Offset of the producer-state snapshot on disk (-1 when none was written by this process). */
  private snapshotOffset = -1;
  private readonly recovery: PartitionRecovery = { truncations: [], indexRebuilds: [], bytesScanned: 0, producerBatchesScanned: 0 };

  private constructor(options: PartitionOptions) {
    this.topic = options.topic;
    this.index = options.index;
    this.config = options.config;
    this.directory = options.directory;
    this.storage = options.storage;
    this.logger = options.logger;
    this.now = options.now;
    this.lastFlushMs = options.now();
    this.producers = new ProducerStateTable(options.producersMax);
    this.context = {
      storage: options.storage,
      cache: options.cache,
      indexIntervalBytes: options.indexIntervalBytes,
      preallocator: options.preallocator,
      onIndexRebuilt: (segment, reason) => this.noteIndexRebuilt(segment, reason),
    };
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
    const partition = new LogPartition(options);
    try {
      partition.load();
    } catch (error) {
      partition.closeSegments();
      throw error;
    }
    return { partition, recovery: partition.recovery };
  }

  // ---- open and recovery ---------------------------------------------------------------

  private load(): void {
    const names = this.storage.readdir(this.directory);
    const nameSet = new Set(names);
    const bases = this.tidyDirectory(names);
    if (bases.length === 0) {
      this.logger.warn({ topic: this.topic, partition: this.index }, "partition has no segment; starting an empty one");
      const segment = Segment.create(this.context, this.directory, 0);
      segment.close();
      bases.push(0);
    }
    const start = this.recoveryStart(bases);
    this.recoveryPoint = start.point;
    this.syncFloorBase = bases[start.segmentIndex]!;
    for (let i = 0; i < start.segmentIndex; i++) {
      const base = bases[i]!;
      const sizeBytes = this.storage.fileSize(`${this.directory}/${segmentFileName(base, LOG_SUFFIX)}`) ?? 0;
      const segment = new Segment(this.context, this.directory, base, { nextOffset: bases[i + 1]!, sizeBytes, maxTimestampMs: null });
      this.segments.push(segment);
      if (!nameSet.has(segmentFileName(base, INDEX_SUFFIX)) || !nameSet.has(segmentFileName(base, TIME_INDEX_SUFFIX))) {
        segment.rebuildMissingIndexes();
      }
    }
    this.recoverSegments(bases.slice(start.segmentIndex), start.point);
    const active = this.active;
    active.rollBaseMs = this.rollBaseAfterOpen(active);
    this.rebuildProducerState();
  }

  /**
   * Loads the producer-state snapshot and scans the batch headers after it. No snapshot means
   * no idempotent batch before the recovery point (one is written before every checkpoint
   * while the table is not empty); an unusable one means scanning the whole log.
   */
  private rebuildProducerState(): void {
    const bytes = this.storage.readFile(`${this.directory}/${PRODUCER_STATE_FILE}`);
    let from: { segment: number; position: number } = this.recoveryPoint;
    if (bytes !== null) {
      const loaded = this.producers.loadSnapshot(bytes);
      const problem = "problem" in loaded ? loaded.problem : this.snapshotProblem(loaded.position);
      if (problem === null && "position" in loaded) {
        from = loaded.position.segment < this.logStartOffset ? { segment: this.logStartOffset, position: 0 } : loaded.position;
        this.snapshotOffset = loaded.position.offset;
      } else {
        this.logger.warn({ topic: this.topic, partition: this.index, problem }, "producer-state snapshot unusable; scanning the whole log for producer state");
        this.producers.clear();
        from = { segment: this.logStartOffset, position: 0 };
      }
    }
    for (const segment of this.segments) {
      if (segment.baseOffset < from.segment || segment.sizeBytes === 0) continue;
      const fd = segment.acquire();
      try {
        const position = segment.baseOffset === from.segment ? from.position : 0;
        this.recovery.producerBatchesScanned += scanProducerBatches(this.storage, fd, position, segment.sizeBytes, this.producers);
      } finally {
        segment.release();
      }
    }
    this.producers.dirty = this.recovery.producerBatchesScanned > 0;
  }

  /** Why a snapshot's position does not fit the recovered log, or null when it does. */
  private snapshotProblem(position: SnapshotPosition): string | null {
    if (position.offset > this.nextOffset) return `snapshot at offset ${position.offset} is past the log end ${this.nextOffset}`;
    if (position.segment < this.logStartOffset) return null;
    const segment = this.segments.find((candidate) => candidate.baseOffset === position.segment);
    if (segment === undefined) return `snapshot names segment ${position.segment}, which does not exist`;
    if (position.position > segment.sizeBytes) return `snapshot position ${position.position} is past segment ${position.segment}'s end ${segment.sizeBytes}`;
    return null;
  }

  /** Removes leftovers (temp files, indexes without a log); returns segment bases in order. */
  private tidyDirectory(names: string[]): number[] {
    const bases: number[] = [];
    for (const name of names) {
      const base = parseSegmentFileName(name);
      if (base !== null) bases.push(base);
    }
    bases.sort((a, b) => a - b);
    const known = new Set(bases.map((base) => segmentFileName(base, "")));
    for (const name of names) {
      const isIndex = name.endsWith(INDEX_SUFFIX) || name.endsWith(TIME_INDEX_SUFFIX);
      const orphanIndex = isIndex && !known.has(name.slice(0, name.lastIndexOf(".")));
      if (name.endsWith(".tmp") || orphanIndex) this.storage.unlink(`${this.directory}/${name}`);
    }
    return bases;
  }

  /** Where verification starts: the recovery point when it is usable, else the first segment. */
  private recoveryStart(bases: number[]): { segmentIndex: number; point: RecoveryPoint } {
    const read = readRecoveryPoint(this.storage, this.directory);
    const first = bases[0]!;
    const fromStart = { segmentIndex: 0, point: { offset: first, segment: first, position: 0 } };
    if (read.point === null) {
      this.logger.warn({ topic: this.topic, partition: this.index, problem: read.problem ?? "missing" }, "no usable recovery point; verifying the whole log");
      return fromStart;
    }
    const point = read.point;
    // Retention removed the segment it pointed into: everything it covered is gone.
    if (point.segment < first) return fromStart;
    const segmentIndex = bases.indexOf(point.segment);
    const size = segmentIndex < 0 ? null : this.storage.fileSize(`${this.directory}/${segmentFileName(point.segment, LOG_SUFFIX)}`);
    if (segmentIndex < 0 || size === null || point.position > size) {
      this.logger.warn({ topic: this.topic, partition: this.index, recoveryPoint: point }, "recovery point does not match the files; verifying the whole log");
      return fromStart;
    }
    return { segmentIndex, point };
  }

  /** Verifies the segments after the recovery point; cuts the log at the first bad batch. */
  private recoverSegments(bases: number[], point: RecoveryPoint): void {
    let fromPosition = point.position;
    let fromOffset = point.offset;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const isLast = i === bases.length - 1;
      const segment = new Segment(this.context, this.directory, base, { nextOffset: fromOffset, sizeBytes: fromPosition, maxTimestampMs: -1 });
      if (isLast) segment.openWritable();
      this.segments.push(segment);
      const scan = segment.recoverTail(fromPosition, fromOffset);
      this.recovery.bytesScanned += scan.validBytes - fromPosition + scan.droppedBytes;
      if (scan.indexRebuilt) this.noteIndexRebuilt(segment, "index file missing or invalid");
      const nextBase = bases[i + 1];
      const gap = nextBase !== undefined && nextBase !== segment.nextOffset;
      if (scan.droppedBytes > 0 || gap) {
        const reason = scan.reason ?? `segment ${nextBase} does not continue at offset ${segment.nextOffset}`;
        this.truncateAfter(segment, bases.slice(i + 1), scan.droppedBytes, reason);
        return;
      }
      if (!isLast) segment.finishRecovery();
      fromPosition = 0;
      fromOffset = nextBase ?? segment.nextOffset;
    }
  }

  /** Deletes the segments after `segment` (which becomes the active one) and logs the cut. */
  private truncateAfter(segment: Segment, laterBases: number[], droppedInSegment: number, reason: string): void {
    let bytesDropped = droppedInSegment;
    for (const base of laterBases) {
      const later = new Segment(this.context, this.directory, base, { nextOffset: base, sizeBytes: 0, maxTimestampMs: -1 });
      bytesDropped += this.storage.fileSize(later.logPath) ?? 0;
      later.delete();
    }
    if (!segment.isActive) segment.openWritable();
    const truncation: Truncation = { topic: this.topic, partition: this.index, offset: segment.nextOffset, bytesDropped, reason };
    this.recovery.truncations.push(truncation);
    this.logger.warn({ ...truncation, segment: segment.baseOffset, segmentsRemoved: laterBases.length }, "log truncated during recovery");
  }

  /** segment.ms counts from the first batch's timestamp (clamped to now) across a restart. */
  private rollBaseAfterOpen(active: Segment): number {
    const nowMs = this.now();
    if (active.sizeBytes === 0) return -1;
    const fd = active.acquire();
    try {
      const first = active.firstBatchTimestamp(fd);
      return first === null ? nowMs : Math.min(first, nowMs);
    } finally {
      active.release();
    }
  }

  private noteIndexRebuilt(segment: Segment, reason: string): void {
    const rebuild: IndexRebuild = { topic: this.topic, partition: this.index, segment: segment.baseOffset, reason };
    this.recovery.indexRebuilds.push(rebuild);
    this.logger.warn(rebuild, "segment index rebuilt from the log");
  }

  // ---- state ---------------------------------------------------------------------------

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
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
    return this.failure !== null;
  }

  private checkUsable(): void {
    if (this.closed) throw new RunnelError("SHUTTING_DOWN", `partition ${this.topic}-${this.index} is closed`);
    if (this.failure !== null) {
      throw new RunnelError("PARTITION_FAILED", `partition ${this.topic}-${this.index} failed earlier (${this.failure.message}) and is read-only until a restart`, {
        cause: this.failure,
      });
    }
  }

  /** Classifies a storage error: STORAGE_FULL leaves the partition usable, anything else fails it. */
  private storageFailure(error: unknown, what: string, fullIsFatal = false): RunnelError {
    const failure = toRunnelError(error);
    if (failure.code === "STORAGE_FULL" && !fullIsFatal) {
      this.logger.warn({ topic: this.topic, partition: this.index, error: failure.message }, `${what}: disk full`);
      return failure;
    }
    if (this.failure === null && !this.closed) {
      this.failure = failure;
      this.logger.error({ topic: this.topic, partition: this.index, error: failure.message }, `${what} failed; partition marked failed`);
    }
    return failure;
  }

  // ---- append --------------------------------------------------------------------------

  append(batch: Uint8Array): AppendResult {
    this.checkUsable();
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
      throw this.storageFailure(error, "append");
    }
    if (active.rollBaseMs < 0) active.rollBaseMs = appendTimeMs;
    if (header.producerId >= 0) this.producers.record(header.producerId, header.producerEpoch, header.baseSequence, header.recordCount, baseOffset);
    this.unflushedMessages += header.recordCount;
    const flushMessages = this.config["flush.messages"];
    if (flushMessages > 0 && this.unflushedMessages >= flushMessages) this.scheduleBackgroundFlush();
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
      throw this.storageFailure(error, "roll");
    }
    try {
      old.seal();
    } catch (error) {
      next.delete();
      throw this.storageFailure(error, "roll");
    }
    next.rollBaseMs = -1;
    this.segments.push(next);
    this.logger.info({ topic: this.topic, partition: this.index, segment: next.baseOffset, atMs: nowMs }, "segment rolled");
    this.scheduleRollCheckpoint();
  }

  // ---- reads ---------------------------------------------------------------------------

  read(offset: number, maxBytes: number): ReadSlice | null {
    this.checkUsable();
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RunnelError("INVALID_REQUEST", `maxBytes must be a positive integer, got ${maxBytes}`);
    const nextOffset = this.nextOffset;
    if (offset === nextOffset) return null;
    this.checkOffset(offset);
    const segment = this.segmentFor(offset);
    const fd = segment.acquire();
    let start: { position: number; baseOffset: number; totalBytes: number };
    let end: number;
    try {
      start = segment.locate(fd, offset);
      end = segment.sliceEnd(fd, start.position, start.totalBytes, maxBytes);
    } catch (error) {
      segment.release();
      throw this.storageFailure(error, "read", true);
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

  /** The segment holding `offset` (logStartOffset <= offset < nextOffset). */
  private segmentFor(offset: number): Segment {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.segments[middle]!.baseOffset <= offset) low = middle;
      else high = middle - 1;
    }
    // An empty segment shares its base with the next offset; step past it.
    while (offset >= this.segments[low]!.nextOffset && low < this.segments.length - 1) low++;
    return this.segments[low]!;
  }

  readBytes(slice: ReadSlice): Uint8Array {
    const bytes = new Uint8Array(slice.length);
    let read: number;
    try {
      read = this.storage.pread(slice.fd, bytes, slice.position);
    } catch (error) {
      throw this.storageFailure(error, "read", true);
    }
    if (read !== slice.length) {
      throw new RunnelError("STORAGE_ERROR", `short read: ${read} of ${slice.length} bytes at ${slice.position} (was the slice released?)`);
    }
    return bytes;
  }

  offsetForTimestamp(timestampMs: number): number | null {
    this.checkUsable();
    for (const segment of this.segments) {
      if (segment.sizeBytes === 0 || segment.maxTimestamp < timestampMs) continue;
      const fd = segment.acquire();
      try {
        const offset = segment.offsetForTimestamp(fd, timestampMs);
        if (offset !== null) return Math.max(offset, this.logStartOffset);
      } catch (error) {
        throw this.storageFailure(error, "offsetForTimestamp", true);
      } finally {
        segment.release();
      }
    }
    return null;
  }

  // ---- durability ----------------------------------------------------------------------

  flush(): void {
    this.checkUsable();
    const active = this.active;
    const point = { offset: active.nextOffset, segment: active.baseOffset, position: active.sizeBytes };
    if (point.offset === this.recoveryPoint.offset && point.segment === this.recoveryPoint.segment) return;
    try {
      for (const segment of this.segments) {
        if (segment.baseOffset < this.recoveryPoint.segment || segment.deleted) continue;
        const fd = segment.acquire();
        try {
          this.storage.fdatasync(fd);
        } finally {
          segment.release();
        }
        segment.persistIndexes(true);
      }
    } catch (error) {
      throw this.storageFailure(error, "flush", true);
    }
    try {
      if (this.producers.dirty && this.producers.size > 0) {
        this.storage.writeFileAtomic(`${this.directory}/${PRODUCER_STATE_FILE}`, this.producers.encodeSnapshot(point));
        this.producers.dirty = false;
        this.snapshotOffset = point.offset;
      }
      writeRecoveryPoint(this.storage, this.directory, point);
    } catch (error) {
      throw this.storageFailure(error, "recovery point write");
    }
    this.recoveryPoint = point;
    this.unflushedMessages = 0;
    this.lastFlushMs = this.now();
  }

  /** Background flush policy (flush.ms); called by the log manager's timer. */
  flushIfDue(nowMs: number): void {
    const flushMs = this.config["flush.ms"];
    if (flushMs < 0 || this.closed || this.failure !== null || this.unflushedMessages === 0) return;
    if (nowMs - this.lastFlushMs >= flushMs) this.scheduleBackgroundFlush();
  }

  /** Starts a background flush, or asks the running one to go again when it ends. */
  private scheduleBackgroundFlush(): void {
    this.backgroundFlush.request();
  }

  /**
   * The flush policy's flush: like flush(), but every fdatasync runs on a worker thread, so
   * appends and reads go on meanwhile. An I/O error marks the partition failed (logged).
   */
  private async flushInBackground(): Promise<void> {
    if (this.closed || this.failure !== null) return;
    const active = this.active;
    const point = { offset: active.nextOffset, segment: active.baseOffset, position: active.sizeBytes };
    if (point.offset <= this.recoveryPoint.offset) return;
    this.unflushedMessages = 0;
    this.lastFlushMs = this.now();
    // The snapshot is taken now, so it ends exactly at `point`, whose bytes are synced below.
    const snapshot = this.takeSnapshot(point);
    const segments = this.segments.filter((segment) => segment.baseOffset >= this.recoveryPoint.segment && !segment.deleted);
    try {
      // Index entries go to the page cache first: on a full disk this fails alone, and only
      // delays the checkpoint (a full disk must not fail a partition whose log is intact).
      for (const segment of segments) if (!segment.deleted) segment.persistIndexes(false);
    } catch (error) {
      if (snapshot !== null) this.producers.dirty = true;
      if (!this.closed) this.storageFailure(error, "index write");
      return;
    }
    try {
      for (const segment of segments) {
        if (segment.deleted) continue;
        await this.fdatasyncInBackground(segment);
        if (this.closed) return;
        if (!segment.deleted) await this.syncIndexesInBackground(segment);
      }
    } catch (error) {
      if (snapshot !== null) this.producers.dirty = true;
      if (!this.closed) this.storageFailure(error, "background flush", true);
      return;
    }
    await this.checkpointQuietly(point, snapshot);
  }

  /**
   * Writes a checkpoint after a background sync. A full disk only delays it (warned; the next
   * flush tries again); any other error fails the partition.
   */
  private async checkpointQuietly(point: RecoveryPoint, snapshot: { text: string; offset: number } | null): Promise<void> {
    try {
      await this.writeCheckpointInBackground(point, snapshot);
    } catch (error) {
      if (snapshot !== null) this.producers.dirty = true;
      if (!this.closed) this.storageFailure(error, "checkpoint write");
    }
  }

  /** fdatasyncs a segment's index files (their entries already written) off the event loop. */
  private async syncIndexesInBackground(segment: Segment): Promise<void> {
    for (const path of [segment.indexPath, segment.timeIndexPath]) {
      if (!this.storage.exists(path)) continue;
      const fd = this.storage.open(path, { create: false });
      try {
        await this.storage.fdatasyncAsync(fd);
      } finally {
        this.storage.close(fd);
      }
    }
  }

  /** The producer table's snapshot ending at `at`, when it changed since the last one. */
  private takeSnapshot(at: SnapshotPosition): { text: string; offset: number } | null {
    if (!this.producers.dirty || this.producers.size === 0) return null;
    this.producers.dirty = false;
    return { text: this.producers.encodeSnapshot(at), offset: at.offset };
  }

  /**
   * Writes the producer-state snapshot (when given) and then the recovery point `point`, whose
   * bytes the caller already synced. A checkpoint never moves backwards: when a newer one was
   * written meanwhile, this one is dropped. The snapshot goes first, so a recovery point is
   * never ahead of every snapshot of a non-empty table.
   */
  private async writeCheckpointInBackground(point: RecoveryPoint, snapshot: { text: string; offset: number } | null): Promise<void> {
    if (snapshot !== null) {
      const path = `${this.directory}/${PRODUCER_STATE_FILE}`;
      const temporary = await writeTempDurably(this.storage, path, "flush", snapshot.text);
      const newer = this.closed || snapshot.offset <= this.snapshotOffset;
      commitTemp(this.storage, temporary, path, !newer);
      if (!newer) this.snapshotOffset = snapshot.offset;
    }
    const path = `${this.directory}/${RECOVERY_POINT_FILE}`;
    const temporary = await writeTempDurably(this.storage, path, "flush", encodeRecoveryPoint(point));
    const newer = this.closed || this.failure !== null || point.offset <= this.recoveryPoint.offset;
    commitTemp(this.storage, temporary, path, !newer);
    if (!newer) this.recoveryPoint = point;
  }

  sync(): Promise<void> {
    try {
      this.checkUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.syncRunning === null) return this.startSync(null);
    this.syncNext ??= deferred();
    return this.syncNext.promise;
  }

  /** Starts one fdatasync round over every segment written since the last completed round. */
  private startSync(waiting: Deferred | null): Promise<void> {
    const floorBase = this.syncFloorBase;
    const activeBase = this.active.baseOffset;
    const segments: Segment[] = [];
    let round: Promise<void>;
    try {
      const fds: number[] = [];
      for (const segment of this.segments) {
        if (segment.baseOffset < floorBase) continue;
        fds.push(segment.acquire());
        segments.push(segment);
      }
      round = Promise.all(fds.map((fd) => this.storage.fdatasyncAsync(fd))).then(() => undefined);
    } catch (error) {
      round = Promise.reject(error);
    }
    round = round.then(
      () => {
        this.syncFloorBase = Math.max(this.syncFloorBase, activeBase);
      },
      (error: unknown) => {
        throw this.storageFailure(error, "sync", true);
      },
    );
    const settled = round.finally(() => {
      for (const segment of segments) segment.release();
      this.syncRunning = null;
      const next = this.syncNext;
      this.syncNext = null;
      if (next !== null) this.startQueuedSync(next);
    });
    this.syncRunning = settled.then(() => undefined, () => undefined);
    if (waiting !== null) settled.then(waiting.resolve, waiting.reject);
    return settled;
  }

  private startQueuedSync(waiting: Deferred): void {
    try {
      this.checkUsable();
    } catch (error) {
      waiting.reject(error);
      return;
    }
    this.startSync(waiting).catch(() => undefined);
  }

  /** After a roll: fdatasync the closed segments in the background, then move the recovery point. */
  private scheduleRollCheckpoint(): void {
    this.rollCheckpoint.request();
  }

  /** fdatasync of one segment's log on a worker thread, holding its fd open meanwhile. */
  private async fdatasyncInBackground(segment: Segment): Promise<void> {
    const fd = segment.acquire();
    try {
      await this.storage.fdatasyncAsync(fd);
    } finally {
      segment.release();
    }
  }

  /** One checkpoint run; false stops the job from repeating (closed, failed, or disk full). */
  private async runRollCheckpoint(): Promise<boolean> {
    const targetBase = this.active.baseOffset;
    const closed = this.segments.filter((segment) => segment.baseOffset >= this.recoveryPoint.segment && segment.baseOffset < targetBase);
    try {
      for (const segment of closed) {
        if (segment.deleted) continue;
        await this.fdatasyncInBackground(segment);
        if (!segment.deleted) {
          segment.persistIndexes(false);
          await this.syncIndexesInBackground(segment);
        }
      }
      if (this.closed || this.failure !== null) return false;
      if (this.recoveryPoint.offset < targetBase) {
        // The table now ends at the log's end (past targetBase and maybe not yet synced): the
        // snapshot names that position; after a power loss that cut below it, the rebuild
        // notices and scans the whole log instead.
        const active = this.active;
        const snapshot = this.takeSnapshot({ offset: active.nextOffset, segment: active.baseOffset, position: active.sizeBytes });
        await this.checkpointQuietly({ offset: targetBase, segment: targetBase, position: 0 }, snapshot);
      }
    } catch (error) {
      // A full disk while writing index entries only delays the checkpoint; a failed
      // fdatasync (whatever its errno) leaves the file's state unknown and fails the partition.
      if (!this.closed) this.storageFailure(error, "background flush after roll", isSyncFailure(error));
      return false;
    }
    return true;
  }

  // ---- retention -----------------------------------------------------------------------

  /** Deletes whole closed segments past retention.ms or retention.bytes; returns how many. */
  applyRetention(nowMs: number): number {
    if (this.closed || this.failure !== null) return 0;
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
    if (this.closed) return;
    await this.settleBackgroundWork();
    let flushError: unknown = null;
    if (this.failure === null) {
      try {
        this.flush();
      } catch (error) {
        flushError = error;
      }
    }
    this.closed = true;
    this.closeSegments();
    if (flushError !== null) throw flushError;
    if (this.failure !== null) throw this.failure;
  }

  /** Closes at once without flushing (the topic is being deleted). */
  closeNow(): void {
    this.closed = true;
    this.closeSegments();
  }

  private async settleBackgroundWork(): Promise<void> {
    while (this.syncRunning !== null || this.rollCheckpoint.isRunning || this.backgroundFlush.isRunning) {
      await Promise.all([this.syncRunning, this.rollCheckpoint.settled(), this.backgroundFlush.settled()]);
    }
  }

  private closeSegments(): void {
    for (const segment of this.segments) {
      try {
        segment.close();
      } catch (error) {
        this.logger.error({ topic: this.topic, partition: this.index, segment: segment.baseOffset, error: toRunnelError(error).message }, "segment close failed");
      }
    }
  }

  /** For tests and tools: the recovery point as last written. */
  get recoveryPointOffset(): number {
    return this.recoveryPoint.offset;
  }

  static readonly recoveryPointFile = RECOVERY_POINT_FILE;
}
