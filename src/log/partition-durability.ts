/**
 * @module log/partition-durability
 * When a partition's bytes reach the disk, and how its recovery point follows them:
 *
 *   - flush(): synchronous fdatasync of everything after the recovery point, then the
 *     producer-state snapshot and the recovery point (close, tests, tools).
 *   - sync(): group commit. One fdatasync round runs at a time on worker threads; callers
 *     arriving meanwhile share the next round, which starts when the running one ends.
 *   - the flush policy (flush.messages, flush.ms): a background flush, fdatasync on a worker
 *     thread, checkpoint files via durable-file.ts.
 *   - after a roll: the closed segments are synced in the background and the recovery point
 *     moves to the new active segment, so a restart scans at most about one segment.
 *   - after recovery: the verified tail is synced and checkpointed in the background, so
 *     repeated crashes do not re-verify ever more bytes.
 *
 * It owns the recovery point, the snapshot's offset and the flush bookkeeping; it reads the
 * partition's live segment list and shares its PartitionHealth (partition-health.ts), so a
 * failed fdatasync fails the partition and a closed or failed partition stops background work.
 */
import { CoalescingJob } from "./coalescing-job.ts";
import { commitTemp, writeTempDurably } from "./durable-file.ts";
import type { PartitionHealth } from "./partition-health.ts";
import { activeSegment } from "./partition-segments.ts";
import { PRODUCER_STATE_FILE, type ProducerStateTable, type SnapshotPosition } from "./producer-state.ts";
import { encodeRecoveryPoint, RECOVERY_POINT_FILE, writeRecoveryPoint, type RecoveryPoint } from "./recovery-point.ts";
import type { Segment } from "./segment.ts";
import type { Semaphore } from "./semaphore.ts";
import type { Storage } from "./storage.ts";
import { SyscallError } from "../native/libc.ts";

export interface DurabilityInputs {
  directory: string;
  storage: Storage;
  /** Bounds the fdatasyncs (and so the fds they hold) running at once, broker-wide (fd-cache.ts). */
  syncSlots: Semaphore;
  /** The partition's live segment list (oldest first, the last active): read here, never changed. */
  segments: readonly Segment[];
  /** The idempotent-producer table whose snapshot is written before each recovery point. */
  producers: ProducerStateTable;
  health: PartitionHealth;
  now: () => number;
  /** The recovery point found on open. */
  recoveryPoint: RecoveryPoint;
  /** Offset of the producer-state snapshot on disk (-1 when none is known). */
  snapshotOffset: number;
  /** When the flush.ms clock starts: the partition's opening. */
  openedAtMs: number;
}

/** A producer-state snapshot taken at a checkpoint position, waiting to be written. */
interface Snapshot {
  text: string;
  offset: number;
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

/** A failed fdatasync (or a non-syscall error) leaves the file's state unknown, whatever the errno. */
function isSyncFailure(error: unknown): boolean {
  return !(error instanceof SyscallError) || error.syscall === "fdatasync" || error.syscall === "fsync";
}

/** The checkpoint position at the end of `segment` (the active one). */
function endOf(segment: Segment): RecoveryPoint {
  return { offset: segment.nextOffset, segment: segment.baseOffset, position: segment.sizeBytes };
}

export class PartitionDurability {
  private readonly directory: string;
  private readonly storage: Storage;
  private readonly syncSlots: Semaphore;
  private readonly segments: readonly Segment[];
  private readonly producers: ProducerStateTable;
  private readonly health: PartitionHealth;
  private readonly now: () => number;
  private recoveryPoint: RecoveryPoint;
  /** Offset of the producer-state snapshot on disk (-1 when none is known). */
  private snapshotOffset: number;
  private unflushedMessages = 0;
  private lastFlushMs: number;
  /** Group commit: the fdatasync running now, and the one queued behind it. */
  private syncRunning: Promise<void> | null = null;
  private syncNext: Deferred | null = null;
  /** Segments below this base were covered by a completed sync (or the recovery point). */
  private syncFloorBase: number;
  /**
   * Raised by each truncation: a background checkpoint started before it names a position in
   * a log that no longer exists, so it is dropped rather than written.
   */
  private truncations = 0;
  /** Background flush of rolled segments, then recovery point at the new active segment. */
  private readonly rollCheckpoint = new CoalescingJob(() => this.runRollCheckpoint());
  /** Background flush policy (flush.messages / flush.ms). */
  private readonly backgroundFlush = new CoalescingJob(async () => {
    await this.flushInBackground();
    return !this.health.stopped;
  });

  constructor(inputs: DurabilityInputs) {
    this.directory = inputs.directory;
    this.storage = inputs.storage;
    this.syncSlots = inputs.syncSlots;
    this.segments = inputs.segments;
    this.producers = inputs.producers;
    this.health = inputs.health;
    this.now = inputs.now;
    this.recoveryPoint = inputs.recoveryPoint;
    this.snapshotOffset = inputs.snapshotOffset;
    this.lastFlushMs = inputs.openedAtMs;
    // Everything before the recovery point's segment was on disk when the partition opened.
    this.syncFloorBase = inputs.recoveryPoint.segment;
  }

  /** The recovery point as last written (where a producer-table rebuild without a snapshot scans from). */
  get recoveryPointNow(): RecoveryPoint {
    return this.recoveryPoint;
  }

  /** The recovery point as last written. */
  get recoveryPointOffset(): number {
    return this.recoveryPoint.offset;
  }

  // ---- synchronous flush ---------------------------------------------------------------

  /** fdatasync of every segment from the recovery point's on, then the checkpoint files. */
  flush(): void {
    this.health.checkUsable();
    const point = endOf(activeSegment(this.segments));
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
      throw this.health.storageFailure(error, "flush", true);
    }
    try {
      if (this.producers.dirty && this.producers.size > 0) {
        this.storage.writeFileAtomic(`${this.directory}/${PRODUCER_STATE_FILE}`, this.producers.encodeSnapshot(point));
        this.producers.dirty = false;
        this.snapshotOffset = point.offset;
      }
      writeRecoveryPoint(this.storage, this.directory, point);
    } catch (error) {
      throw this.health.storageFailure(error, "recovery point write");
    }
    this.recoveryPoint = point;
    this.unflushedMessages = 0;
    this.lastFlushMs = this.now();
  }

  // ---- after recovery ------------------------------------------------------------------

  /**
   * After open verified bytes past the recovery point: sync them and move the recovery point to
   * the log's end, in the background (fdatasync on a worker thread; a start with many recovered
   * partitions is not held up). Without it, a broker killed again within flush.ms verifies the
   * same bytes again, plus the new ones: each restart re-checks more (issue 16).
   */
  checkpointAfterRecovery(): void {
    this.backgroundFlush.request();
  }

  // ---- flush policy --------------------------------------------------------------------

  /** Counts appended records; starts a background flush once flush.messages of them are waiting. */
  noteAppended(recordCount: number, flushMessages: number): void {
    this.unflushedMessages += recordCount;
    if (flushMessages > 0 && this.unflushedMessages >= flushMessages) this.backgroundFlush.request();
  }

  /** Starts a background flush when flush.ms has passed since the last one with records waiting. */
  flushIfDue(nowMs: number, flushMs: number): void {
    if (flushMs < 0 || this.health.stopped || this.unflushedMessages === 0) return;
    if (nowMs - this.lastFlushMs >= flushMs) this.backgroundFlush.request();
  }

  /**
   * The flush policy's flush: like flush(), but every fdatasync runs on a worker thread, so
   * appends and reads go on meanwhile. An I/O error marks the partition failed (logged).
   */
  private async flushInBackground(): Promise<void> {
    if (this.health.stopped) return;
    const point = endOf(activeSegment(this.segments));
    if (point.offset <= this.recoveryPoint.offset) return;
    const truncations = this.truncations;
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
      if (!this.health.closed) this.health.storageFailure(error, "index write");
      return;
    }
    try {
      for (const segment of segments) {
        if (segment.deleted) continue;
        await this.fdatasyncInBackground(segment);
        if (this.health.closed) return;
        if (!segment.deleted) await this.syncIndexesInBackground(segment);
      }
    } catch (error) {
      if (snapshot !== null) this.producers.dirty = true;
      if (!this.health.closed) this.health.storageFailure(error, "background flush", true);
      return;
    }
    await this.checkpointQuietly(point, snapshot, truncations);
  }

  // ---- group commit --------------------------------------------------------------------

  /** Resolves after an fdatasync round that started after this call. */
  sync(): Promise<void> {
    try {
      this.health.checkUsable();
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
    const activeBase = activeSegment(this.segments).baseOffset;
    const segments: Segment[] = [];
    // The fds are taken inside a sync slot (fd-cache.ts): a synced produce to thousands of
    // partitions must not hold thousands of fds at once.
    let round: Promise<void> = this.syncSlots.run(async () => {
      const fds: number[] = [];
      for (const segment of this.segments) {
        if (segment.baseOffset < floorBase) continue;
        fds.push(segment.acquire());
        segments.push(segment);
      }
      await Promise.all(fds.map((fd) => this.storage.fdatasyncAsync(fd)));
    });
    round = round.then(
      () => {
        this.syncFloorBase = Math.max(this.syncFloorBase, activeBase);
      },
      (error: unknown) => {
        throw this.health.storageFailure(error, "sync", true);
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
      this.health.checkUsable();
    } catch (error) {
      waiting.reject(error);
      return;
    }
    this.startSync(waiting).catch(() => undefined);
  }

  // ---- checkpoint after a roll ---------------------------------------------------------

  /** After a roll: fdatasync the closed segments in the background, then move the recovery point. */
  afterRoll(): void {
    this.rollCheckpoint.request();
  }

  /** One checkpoint run; false stops the job from repeating (closed, failed, or disk full). */
  private async runRollCheckpoint(): Promise<boolean> {
    const targetBase = activeSegment(this.segments).baseOffset;
    const truncations = this.truncations;
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
      if (this.health.stopped) return false;
      if (this.recoveryPoint.offset < targetBase) {
        // The table now ends at the log's end (past targetBase and maybe not yet synced): the
        // snapshot names that position; after a power loss that cut below it, the rebuild
        // notices and scans the whole log instead.
        const snapshot = this.takeSnapshot(endOf(activeSegment(this.segments)));
        await this.checkpointQuietly({ offset: targetBase, segment: targetBase, position: 0 }, snapshot, truncations);
      }
    } catch (error) {
      // A full disk while writing index entries only delays the checkpoint; a failed
      // fdatasync (whatever its errno) leaves the file's state unknown and fails the partition.
      if (!this.health.closed) this.health.storageFailure(error, "background flush after roll", isSyncFailure(error));
      return false;
    }
    return true;
  }

  // ---- background I/O and checkpoint files ---------------------------------------------

  /** fdatasync of one segment's log on a worker thread, holding its fd open meanwhile. */
  private fdatasyncInBackground(segment: Segment): Promise<void> {
    return this.syncSlots.run(async () => {
      const fd = segment.acquire();
      try {
        await this.storage.fdatasyncAsync(fd);
      } finally {
        segment.release();
      }
    });
  }

  /** fdatasyncs a segment's index files (their entries already written) off the event loop. */
  private async syncIndexesInBackground(segment: Segment): Promise<void> {
    for (const path of [segment.indexPath, segment.timeIndexPath]) {
      // A missing index file has nothing to sync (it is rebuilt on open).
      await this.syncSlots.run(() => this.storage.fdatasyncPathAsync(path));
    }
  }

  /** The producer table's snapshot ending at `at`, when it changed since the last one. */
  private takeSnapshot(at: SnapshotPosition): Snapshot | null {
    if (!this.producers.dirty || this.producers.size === 0) return null;
    this.producers.dirty = false;
    return { text: this.producers.encodeSnapshot(at), offset: at.offset };
  }

  /**
   * Writes a checkpoint after a background sync. A full disk only delays it (warned; the next
   * flush tries again); any other error fails the partition.
   */
  private async checkpointQuietly(point: RecoveryPoint, snapshot: Snapshot | null, truncations: number): Promise<void> {
    try {
      await this.writeCheckpointInBackground(point, snapshot, truncations);
    } catch (error) {
      if (snapshot !== null) this.producers.dirty = true;
      if (!this.health.closed) this.health.storageFailure(error, "checkpoint write");
    }
  }

  /**
   * Writes the producer-state snapshot (when given) and then the recovery point `point`, whose
   * bytes the caller already synced. A checkpoint never moves backwards: when a newer one was
   * written meanwhile, this one is dropped. The snapshot goes first, so a recovery point is
   * never ahead of every snapshot of a non-empty table.
   */
  private async writeCheckpointInBackground(point: RecoveryPoint, snapshot: Snapshot | null, truncations: number): Promise<void> {
    if (snapshot !== null) {
      const path = `${this.directory}/${PRODUCER_STATE_FILE}`;
      const temporary = await this.syncSlots.run(() => writeTempDurably(this.storage, path, "flush", snapshot.text));
      const newer = this.health.closed || snapshot.offset <= this.snapshotOffset || truncations !== this.truncations;
      commitTemp(this.storage, temporary, path, !newer);
      if (!newer) this.snapshotOffset = snapshot.offset;
    }
    const path = `${this.directory}/${RECOVERY_POINT_FILE}`;
    // In a sync slot: the temp file's fd stays open during its fdatasync (fd-cache.ts).
    const temporary = await this.syncSlots.run(() => writeTempDurably(this.storage, path, "flush", encodeRecoveryPoint(point)));
    const newer = this.health.stopped || point.offset <= this.recoveryPoint.offset || truncations !== this.truncations;
    commitTemp(this.storage, temporary, path, !newer);
    if (!newer) this.recoveryPoint = point;
  }

  // ---- truncation ----------------------------------------------------------------------

  /**
   * Before the log is cut at `offset` inside the segment based at `targetBase`: a recovery point
   * past the cut moves back to that segment's start (written now, synchronously), so a crash
   * anywhere in the truncation re-verifies from there and finds a consistent log. Checkpoints
   * already under way are dropped when they finish.
   */
  beforeTruncation(offset: number, targetBase: number): void {
    this.truncations++;
    if (this.recoveryPoint.offset > offset) {
      const point = { offset: targetBase, segment: targetBase, position: 0 };
      writeRecoveryPoint(this.storage, this.directory, point);
      this.recoveryPoint = point;
    }
  }

  /**
   * After the cut: the producer table (rebuilt for the shorter log) is snapshotted at the new
   * end, or its old snapshot removed when it is empty, so no snapshot describes batches that are
   * gone; the group commit syncs the new active segment again.
   */
  afterTruncation(): void {
    const active = activeSegment(this.segments);
    this.syncFloorBase = Math.min(this.syncFloorBase, active.baseOffset);
    const path = `${this.directory}/${PRODUCER_STATE_FILE}`;
    if (this.producers.size > 0) {
      const point = endOf(active);
      this.storage.writeFileAtomic(path, this.producers.encodeSnapshot(point));
      this.producers.dirty = false;
      this.snapshotOffset = point.offset;
    } else {
      this.storage.unlink(path);
      this.snapshotOffset = -1;
    }
  }

  /**
   * After Partition.restartAt: the log is one empty segment at `base`. A background checkpoint
   * under way names the old log, so it is dropped; the producer snapshot (of the old log) goes;
   * the recovery point moves to the new segment's start.
   */
  afterRestart(base: number): void {
    this.storage.unlink(`${this.directory}/${PRODUCER_STATE_FILE}`);
    this.snapshotOffset = -1;
    this.producers.dirty = false;
    this.unflushedMessages = 0;
    this.moveRecoveryPoint(base);
    this.syncFloorBase = base;
  }

  /** The recovery point at the start of segment `base` (an empty one); a checkpoint under way is dropped. */
  moveRecoveryPoint(base: number): void {
    this.truncations++;
    const point = { offset: base, segment: base, position: 0 };
    writeRecoveryPoint(this.storage, this.directory, point);
    this.recoveryPoint = point;
  }

  /** The snapshot's offset, for rebuilding the producer table after a truncation. */
  get producerSnapshotOffset(): number {
    return this.snapshotOffset;
  }

  // ---- close ---------------------------------------------------------------------------

  /**
   * Before close's synchronous flush: settles, then flushes once more the background way (its
   * fdatasyncs on the thread pool, side by side with other partitions closing), so the final
   * flush() usually finds nothing left to do. Failures are recorded as a background flush
   * records them, and flush() stays the judge of a clean close.
   */
  async flushBeforeClose(): Promise<void> {
    await this.settle();
    if (this.health.stopped) return;
    this.backgroundFlush.request();
    await this.settle();
  }

  /** Resolves once no sync round, background flush or roll checkpoint is running. */
  async settle(): Promise<void> {
    while (this.syncRunning !== null || this.rollCheckpoint.isRunning || this.backgroundFlush.isRunning) {
      await Promise.all([this.syncRunning, this.rollCheckpoint.settled(), this.backgroundFlush.settled()]);
    }
  }
}
