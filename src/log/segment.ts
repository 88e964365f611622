/**
 * @module log/segment
 * One segment: a `.log` file named by its base offset (20 digits) holding whole record
 * batches back to back, plus its `.index` and `.timeindex` (see offset-index.ts).
 *
 * What lives on the JS heap per segment is metadata only: base and next offset, size, max
 * timestamp, and the active segment's sparse index entries. A sealed segment keeps only every
 * 256th index entry and reads the rest from its files on demand (sealed-index.ts), so the heap
 * does not grow with the log; its entries are in memory only while rebuilt or not yet written
 * (a failed write at roll). Batch bytes are never kept: reads hand out file ranges and header
 * scans read 8 KiB at a time into one shared scratch buffer.
 *
 * Invariant: `sizeBytes` always ends on a batch boundary, so a range ending at `sizeBytes`
 * holds only whole batches. The active segment may hold disk blocks reserved past its end
 * (preallocation.ts); they never change the file's size and are given back at roll and close.
 */
import { RunnelError } from "../errors.ts";
import {
  BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, CRC_START, batchCrc, checkHeaderFields, FIELD, readBatchHeader, readInt64,
} from "../format/record-batch.ts";
import { LIMITS } from "../limits.ts";
import type { CacheableFile, FileCache } from "./fd-cache.ts";
import { OffsetIndex, TimeIndex } from "./offset-index.ts";
import type { Preallocator } from "./preallocation.ts";
import { type OffsetLookup, SealedOffsetIndex, SealedTimeIndex, type TimeLookup } from "./sealed-index.ts";
import { FADVISE, type Storage } from "./storage.ts";

export const LOG_SUFFIX = ".log";
export const INDEX_SUFFIX = ".index";
export const TIME_INDEX_SUFFIX = ".timeindex";
const OFFSET_DIGITS = 20;
const SCAN_CHUNK_BYTES = 8 * 1024;
const RECOVERY_CHUNK_BYTES = 1024 * 1024;
const RELATIVE_OFFSET_MAX = 0xffff_ffff;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return `${String(baseOffset).padStart(OFFSET_DIGITS, "0")}${suffix}`;
}

/** Base offset of a `<20 digits>.log` file name, or null for anything else. */
export function parseSegmentFileName(name: string): number | null {
  if (name.length !== OFFSET_DIGITS + LOG_SUFFIX.length || !name.endsWith(LOG_SUFFIX)) return null;
  const digits = name.slice(0, OFFSET_DIGITS);
  if (!/^\d+$/.test(digits)) return null;
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : null;
}

/** What the segment needs from its partition and manager. */
export interface SegmentContext {
  storage: Storage;
  cache: FileCache;
  indexIntervalBytes: number;
  /** Reserves blocks ahead of the active segment's end (one per log manager). */
  preallocator: Preallocator;
  /** Called when an index file was missing or invalid and has been rebuilt from the log. */
  onIndexRebuilt(segment: Segment, which: string): void;
}

/** Header fields the log reads while scanning: one reused object, never retained. */
interface ScannedHeader {
  baseOffset: number;
  lastOffset: number;
  leaderEpoch: number;
  maxTimestamp: number;
  totalBytes: number;
}

/** Result of a recovery scan of one segment's tail. */
export interface TailScan {
  /** Bytes of the file that hold whole, verified batches. */
  validBytes: number;
  /** Bytes after validBytes (torn or corrupt); 0 when the tail was intact. */
  droppedBytes: number;
  reason: string | null;
  /** The index files were unusable, so the whole segment was verified from byte 0. */
  indexRebuilt: boolean;
}

/** One shared 8 KiB window for header scans: scans are synchronous, so they never overlap. */
const scanWindow = new Uint8Array(SCAN_CHUNK_BYTES);
const scanView = new DataView(scanWindow.buffer);
const scanned: ScannedHeader = { baseOffset: 0, lastOffset: 0, leaderEpoch: 0, maxTimestamp: 0, totalBytes: 0 };
let scanWindowFd = -1;
let scanWindowStart = 0;
let scanWindowLength = 0;
/** Grown on demand for recovery (up to the largest batch), reused across scans. */
let recoveryBuffer = new Uint8Array(RECOVERY_CHUNK_BYTES);

/** Reads the header at `position` into `scanned`; throws when it is not a sane batch within `end`. */
function readHeaderAt(storage: Storage, fd: number, position: number, end: number, where: string): ScannedHeader {
  const windowEnd = scanWindowStart + scanWindowLength;
  if (fd !== scanWindowFd || position < scanWindowStart || position + BATCH_HEADER_BYTES > windowEnd) {
    const want = Math.min(SCAN_CHUNK_BYTES, end - position);
    scanWindowFd = fd;
    scanWindowStart = position;
    scanWindowLength = want > 0 ? storage.pread(fd, want === SCAN_CHUNK_BYTES ? scanWindow : scanWindow.subarray(0, want), position) : 0;
  }
  const at = position - scanWindowStart;
  if (scanWindowLength - at < BATCH_HEADER_BYTES) throw corruptLog(where, position, "a batch header runs past the end");
  const batchLength = scanView.getInt32(at + FIELD.batchLength);
  const totalBytes = BATCH_LOG_OVERHEAD_BYTES + batchLength;
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES || position + totalBytes > end) {
    throw corruptLog(where, position, `batch length ${batchLength} does not fit`);
  }
  scanned.baseOffset = readInt64(scanView, at + FIELD.baseOffset);
  scanned.lastOffset = scanned.baseOffset + scanView.getInt32(at + FIELD.lastOffsetDelta);
  scanned.leaderEpoch = scanView.getInt32(at + FIELD.leaderEpoch);
  scanned.maxTimestamp = readInt64(scanView, at + FIELD.maxTimestamp);
  scanned.totalBytes = totalBytes;
  return scanned;
}

/** The window caches file bytes; forget them whenever a file is truncated or closed. */
function invalidateScanWindow(): void {
  scanWindowFd = -1;
  scanWindowLength = 0;
}

function corruptLog(where: string, position: number, what: string): RunnelError {
  return new RunnelError("STORAGE_ERROR", `${where} is corrupt at byte ${position}: ${what}`, { details: { file: where, position } });
}

export class Segment implements CacheableFile {
  readonly baseOffset: number;
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  nextOffset: number;
  sizeBytes: number;
  /** When segment.ms counts from: the first batch's time (see partition.ts). */
  rollBaseMs = -1;
  /** Retention deleted the files; reads through outstanding slices still work. */
  deleted = false;
  private maxTimestampMs: number | null;
  private offsetIndex: OffsetIndex | null = null;
  private timeIndex: TimeIndex | null = null;
  /** A sealed segment's indexes, read from their files (null while the entries are in memory). */
  private sealedIndexes: { offsetIndex: SealedOffsetIndex; timeIndex: SealedTimeIndex } | null = null;
  private bytesSinceIndexEntry = 0;
  private lastBatchBaseOffset = -1;
  /**
   * True while this is the active segment. Its fd is not pinned: like any other it lives in the
   * fd cache, so idle partitions give theirs back and the broker's fds stay within
   * openSegmentsMax however many partitions exist; an append takes it back (reopening the file).
   */
  private active = false;
  /** Where the blocks reserved by preallocation end (<= sizeBytes when none are reserved). */
  private reservedEndBytes = 0;
  /** False once preallocation failed for this segment (a full disk): appends go on without it. */
  private reserving = true;

  constructor(
    private readonly context: SegmentContext,
    directory: string,
    baseOffset: number,
    state: { nextOffset: number; sizeBytes: number; maxTimestampMs: number | null },
  ) {
    this.baseOffset = baseOffset;
    this.logPath = `${directory}/${segmentFileName(baseOffset, LOG_SUFFIX)}`;
    this.indexPath = `${directory}/${segmentFileName(baseOffset, INDEX_SUFFIX)}`;
    this.timeIndexPath = `${directory}/${segmentFileName(baseOffset, TIME_INDEX_SUFFIX)}`;
    this.nextOffset = state.nextOffset;
    this.sizeBytes = state.sizeBytes;
    this.maxTimestampMs = state.maxTimestampMs;
  }

  /** Creates the empty files of a new segment and makes it the writable one. */
  static create(context: SegmentContext, directory: string, baseOffset: number): Segment {
    const segment = new Segment(context, directory, baseOffset, { nextOffset: baseOffset, sizeBytes: 0, maxTimestampMs: -1 });
    segment.offsetIndex = new OffsetIndex();
    segment.timeIndex = new TimeIndex();
    segment.offsetIndex.markRewrite();
    segment.timeIndex.markRewrite();
    const fd = context.storage.open(segment.logPath, { create: true });
    try {
      context.storage.ftruncate(fd, 0);
    } finally {
      context.storage.close(fd);
    }
    segment.openWritable();
    return segment;
  }

  // ---- fd cache ------------------------------------------------------------------------

  openFile(): number {
    const fd = this.context.storage.open(this.logPath, { create: false });
    this.context.storage.fadvise(fd, 0, 0, FADVISE.SEQUENTIAL);
    return fd;
  }

  closeFile(fd: number): void {
    if (fd === scanWindowFd) invalidateScanWindow();
    this.context.storage.close(fd);
    // Closed segments' indexes are persisted at roll; keep them in memory only if that failed.
    if (!this.active) this.dropToSealed();
  }

  acquire(): number {
    return this.context.cache.acquire(this);
  }

  release(): void {
    this.context.cache.release(this);
  }

  /** Makes this the active segment (the file is opened on the first append, through the cache). */
  openWritable(): void {
    this.active = true;
  }

  get isActive(): boolean {
    return this.active;
  }

  /**
   * Rolled: seals the time index, writes the index files (no fsync), gives back the blocks
   * reserved past the end and lets the cache evict it.
   */
  seal(): void {
    this.sealTimeIndex();
    this.persistIndexes(false);
    this.releaseReservation();
    this.active = false;
    this.dropToSealed();
  }

  // ---- append --------------------------------------------------------------------------

  /**
   * Writes a stamped, verified batch at the end, first reserving blocks ahead when the write
   * would pass the reservation (never past `segmentBytesLimit`, the topic's segment.bytes). On
   * failure the file is cut back to where it was, so a partial write never stays in the log; if
   * even that fails, a STORAGE_ERROR says so.
   */
  append(batch: Uint8Array, baseOffset: number, lastOffset: number, maxTimestampMs: number, segmentBytesLimit: number): number {
    const position = this.sizeBytes;
    const writeEnd = position + batch.length;
    const fd = this.acquire();
    try {
      if (writeEnd > this.reservedEndBytes && this.reserving) this.reserveAhead(fd, position, writeEnd, segmentBytesLimit);
      try {
        this.context.storage.pwrite(fd, batch, position);
      } catch (error) {
        this.cutBackAfterFailedWrite(fd, position, error);
        throw error;
      }
    } finally {
      this.release();
    }
    this.noteBatch(position, baseOffset, lastOffset, maxTimestampMs, batch.length);
    return position;
  }

  /** Preallocation: one fallocate per step; a failure only stops it for this segment. */
  private reserveAhead(fd: number, position: number, writeEnd: number, segmentBytesLimit: number): void {
    const { preallocator } = this.context;
    const from = Math.max(this.reservedEndBytes, position);
    const to = preallocator.endFor(position, writeEnd, this.reservedEndBytes, segmentBytesLimit);
    if (to <= from) return;
    if (preallocator.reserve(fd, from, to, this.logPath)) this.reservedEndBytes = to;
    else this.reserving = false;
  }

  /**
   * Gives back blocks reserved past the end (ftruncate to the size); never throws. The blocks
   * stay reserved while the fd cache has the file closed (fallocate reserves them in the file,
   * not the fd), so this reopens the file when needed.
   */
  private releaseReservation(): void {
    if (this.active && this.reservedEndBytes > this.sizeBytes) {
      let fd: number;
      try {
        fd = this.acquire();
      } catch {
        // No fd to be had (EMFILE): the blocks stay reserved until the next open gives them
        // back (recovery's releaseLeftover); they never change the file's size.
        this.reservedEndBytes = 0;
        return;
      }
      try {
        this.context.preallocator.release(fd, this.sizeBytes, this.logPath);
      } finally {
        this.release();
      }
    }
    this.reservedEndBytes = 0;
  }

  private cutBackAfterFailedWrite(fd: number, position: number, writeError: unknown): void {
    try {
      this.context.storage.ftruncate(fd, position);
      // ftruncate also gave back whatever was reserved past `position`.
      this.reservedEndBytes = Math.min(this.reservedEndBytes, position);
      invalidateScanWindow();
    } catch (truncateError) {
      throw new RunnelError("STORAGE_ERROR", `${this.logPath}: a write failed and the partial bytes could not be cut off`, {
        cause: new AggregateError([writeError, truncateError]),
      });
    }
  }

  /** Bookkeeping for a batch now in the file: sizes, offsets, timestamps, sparse index entries. */
  private noteBatch(position: number, baseOffset: number, lastOffset: number, maxTimestampMs: number, totalBytes: number): void {
    const indexes = this.loadIndexes();
    if (this.maxTimestampMs === null || maxTimestampMs > this.maxTimestampMs) this.maxTimestampMs = maxTimestampMs;
    if (this.bytesSinceIndexEntry >= this.context.indexIntervalBytes && position > 0) {
      const relativeOffset = baseOffset - this.baseOffset;
      indexes.offsetIndex.append(relativeOffset, position);
      if (this.maxTimestampMs > indexes.timeIndex.lastTimestamp) indexes.timeIndex.append(this.maxTimestampMs, relativeOffset);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += totalBytes;
    this.sizeBytes = position + totalBytes;
    this.nextOffset = lastOffset + 1;
    this.lastBatchBaseOffset = baseOffset;
  }

  /** Whether a batch of `lastOffset` can still be addressed by a u32 relative offset here. */
  fitsRelativeOffset(lastOffset: number): boolean {
    return lastOffset - this.baseOffset <= RELATIVE_OFFSET_MAX;
  }

  /** Makes the last time-index entry carry the segment's max timestamp (retention reads it). */
  private sealTimeIndex(): void {
    const timeIndex = this.loadIndexes().timeIndex;
    const maxTimestampMs = this.maxTimestampMs ?? -1;
    if (this.lastBatchBaseOffset >= 0 && maxTimestampMs > timeIndex.lastTimestamp) {
      timeIndex.append(maxTimestampMs, this.lastBatchBaseOffset - this.baseOffset);
    }
  }

  // ---- durability ----------------------------------------------------------------------

  /** Writes index entries the files lack; with `syncToDisk`, also fdatasyncs them. */
  persistIndexes(syncToDisk: boolean): void {
    if (this.isActive) this.sealTimeIndex();
    if (this.offsetIndex) this.offsetIndex.persistTo(this.context.storage, this.indexPath, syncToDisk);
    if (this.timeIndex) this.timeIndex.persistTo(this.context.storage, this.timeIndexPath, syncToDisk);
  }

  // ---- reads ---------------------------------------------------------------------------

  get maxTimestamp(): number {
    if (this.maxTimestampMs === null) this.maxTimestampMs = this.lookups().timeIndex.lastTimestamp;
    return this.maxTimestampMs;
  }

  /** Position and base offset of the batch holding `offset` (which must be in this segment). */
  locate(fd: number, offset: number): { position: number; baseOffset: number; totalBytes: number } {
    let position = this.lookups().offsetIndex.floorPosition(offset - this.baseOffset);
    while (position < this.sizeBytes) {
      const header = readHeaderAt(this.context.storage, fd, position, this.sizeBytes, this.logPath);
      if (header.lastOffset >= offset) return { position, baseOffset: header.baseOffset, totalBytes: header.totalBytes };
      position += header.totalBytes;
    }
    throw corruptLog(this.logPath, position, `offset ${offset} is not in the segment though next offset is ${this.nextOffset}`);
  }

  /**
   * Where a read starting at `start` (a batch of `firstBytes`) should end: whole batches up to
   * `maxBytes` in total, at least the first one. Jumps by the index, then scans headers.
   */
  sliceEnd(fd: number, start: number, firstBytes: number, maxBytes: number): number {
    const limit = start + Math.max(maxBytes, firstBytes);
    if (limit >= this.sizeBytes) return this.sizeBytes;
    let position = Math.max(start + firstBytes, this.lookups().offsetIndex.floorByPosition(limit));
    while (position < this.sizeBytes) {
      const header = readHeaderAt(this.context.storage, fd, position, this.sizeBytes, this.logPath);
      if (position + header.totalBytes > limit) break;
      position += header.totalBytes;
    }
    return position;
  }

  /** Base offset of the first batch whose maxTimestamp >= `timestampMs`, or null. */
  offsetForTimestamp(fd: number, timestampMs: number): number | null {
    const indexes = this.lookups();
    const before = indexes.timeIndex.lastBefore(timestampMs);
    let position = before < 0 ? 0 : indexes.offsetIndex.floorPosition(before);
    while (position < this.sizeBytes) {
      const header = readHeaderAt(this.context.storage, fd, position, this.sizeBytes, this.logPath);
      if (header.maxTimestamp >= timestampMs) return header.baseOffset;
      position += header.totalBytes;
    }
    return null;
  }

  /** Base offset and maxTimestamp of the first batch (segment.ms after a restart). */
  firstBatchTimestamp(fd: number): number | null {
    if (this.sizeBytes === 0) return null;
    return readHeaderAt(this.context.storage, fd, 0, this.sizeBytes, this.logPath).maxTimestamp;
  }

  // ---- indexes -------------------------------------------------------------------------

  /** Bytes the indexes hold on the heap: the entries while in memory, else the sealed blocks' first entries. */
  get indexMemoryBytes(): number {
    const sealed = this.sealedIndexes;
    const inMemory = (this.offsetIndex?.memoryBytes ?? 0) + (this.timeIndex?.memoryBytes ?? 0);
    return inMemory + (sealed === null ? 0 : sealed.offsetIndex.memoryBytes + sealed.timeIndex.memoryBytes);
  }

  /** The indexes to look up in: the in-memory ones when held (the active segment), else the sealed files. */
  private lookups(): { offsetIndex: OffsetLookup; timeIndex: TimeLookup } {
    if (this.offsetIndex !== null && this.timeIndex !== null) return { offsetIndex: this.offsetIndex, timeIndex: this.timeIndex };
    return this.active ? this.loadIndexes() : this.loadSealed();
  }

  /** A sealed segment's indexes from their files (validated once); rebuilt from the log when missing or invalid. */
  private loadSealed(): { offsetIndex: OffsetLookup; timeIndex: TimeLookup } {
    if (this.sealedIndexes !== null) return this.sealedIndexes;
    const { storage } = this.context;
    const nextRelativeOffset = this.nextOffset - this.baseOffset;
    const offsetIndex = SealedOffsetIndex.fromFile(storage, this.indexPath, nextRelativeOffset, this.sizeBytes);
    const timeIndex = offsetIndex === null ? null : SealedTimeIndex.fromFile(storage, this.timeIndexPath, nextRelativeOffset);
    if (offsetIndex !== null && timeIndex !== null) {
      this.sealedIndexes = { offsetIndex, timeIndex };
      return this.sealedIndexes;
    }
    const [path, name] = offsetIndex === null ? [this.indexPath, ".index"] : [this.timeIndexPath, ".timeindex"];
    this.rebuildIndexes(`${storage.exists(path) ? "invalid" : "missing"} ${name}`);
    // Rebuilt and written: sealed again. Kept in memory only when the files could not be written.
    return this.sealedIndexes ?? { offsetIndex: this.offsetIndex!, timeIndex: this.timeIndex! };
  }

  /**
   * A segment that is not active gives its in-memory entries up for the sealed form, once its files
   * hold them all (an index whose write failed stays in memory until a flush writes it).
   */
  private dropToSealed(): void {
    const { offsetIndex, timeIndex } = this;
    if (this.active || offsetIndex === null || timeIndex === null || offsetIndex.dirty || timeIndex.dirty) return;
    const { storage } = this.context;
    this.sealedIndexes = {
      offsetIndex: SealedOffsetIndex.fromIndex(offsetIndex, storage, this.indexPath),
      timeIndex: SealedTimeIndex.fromIndex(timeIndex, storage, this.timeIndexPath),
    };
    this.offsetIndex = null;
    this.timeIndex = null;
  }

  /** The in-memory indexes, loading (and if needed rebuilding) them from their files. */
  private loadIndexes(): { offsetIndex: OffsetIndex; timeIndex: TimeIndex } {
    if (this.offsetIndex === null || this.timeIndex === null) {
      const { storage } = this.context;
      const nextRelativeOffset = this.nextOffset - this.baseOffset;
      const indexBytes = storage.readFile(this.indexPath);
      const timeBytes = storage.readFile(this.timeIndexPath);
      const offsetIndex = indexBytes === null ? null : OffsetIndex.fromBytes(indexBytes, nextRelativeOffset, this.sizeBytes);
      const timeIndex = timeBytes === null ? null : TimeIndex.fromBytes(timeBytes, nextRelativeOffset);
      if (offsetIndex === null || timeIndex === null) {
        this.rebuildIndexes(offsetIndex === null ? (indexBytes === null ? "missing .index" : "invalid .index") : timeBytes === null ? "missing .timeindex" : "invalid .timeindex");
      } else {
        this.offsetIndex = offsetIndex;
        this.timeIndex = timeIndex;
        this.sealedIndexes = null;
      }
    }
    return { offsetIndex: this.offsetIndex!, timeIndex: this.timeIndex! };
  }

  /** Rebuilds both indexes by walking every batch header of the log, then rewrites the files. */
  private rebuildIndexes(why: string): void {
    this.reindexFromLog();
    this.context.onIndexRebuilt(this, why);
  }

  /** Both indexes, max timestamp and index spacing recomputed from the batch headers; files rewritten. */
  private reindexFromLog(): void {
    this.offsetIndex = new OffsetIndex();
    this.timeIndex = new TimeIndex();
    this.sealedIndexes = null;
    this.offsetIndex.markRewrite();
    this.timeIndex.markRewrite();
    const fd = this.acquire();
    try {
      const end = this.sizeBytes;
      this.maxTimestampMs = -1;
      this.bytesSinceIndexEntry = 0;
      this.lastBatchBaseOffset = -1;
      let position = 0;
      while (position < end) {
        const header = readHeaderAt(this.context.storage, fd, position, end, this.logPath);
        this.noteBatch(position, header.baseOffset, header.lastOffset, header.maxTimestamp, header.totalBytes);
        position += header.totalBytes;
      }
    } finally {
      this.release();
    }
    this.sealTimeIndex();
    this.persistIndexes(false);
    this.dropToSealed();
  }

  /**
   * Cuts the segment before the batch holding `offset` (at `offset` itself when a batch starts
   * there; at or below baseOffset: everything), makes it the active one and rewrites its indexes
   * from what is left. Returns the bytes cut off. Rare (a follower's divergent tail), so the
   * indexes are simply rebuilt from the remaining headers.
   */
  truncateTo(offset: number): number {
    if (offset >= this.nextOffset) {
      this.active = true;
      return 0;
    }
    const fd = this.acquire();
    let position = 0;
    let nextOffset = this.baseOffset;
    try {
      if (offset > this.baseOffset) {
        const located = this.locate(fd, offset);
        position = located.position;
        nextOffset = located.baseOffset;
      }
      this.context.storage.ftruncate(fd, position);
      invalidateScanWindow();
    } finally {
      this.release();
    }
    const droppedBytes = this.sizeBytes - position;
    this.sizeBytes = position;
    this.nextOffset = nextOffset;
    this.reservedEndBytes = Math.min(this.reservedEndBytes, position);
    this.active = true;
    this.reindexFromLog();
    return droppedBytes;
  }

  /** Leader epoch of the batch holding `offset` (in this segment), read from its header. */
  epochAt(offset: number): number {
    const fd = this.acquire();
    try {
      const { position } = this.locate(fd, offset);
      return readHeaderAt(this.context.storage, fd, position, this.sizeBytes, this.logPath).leaderEpoch;
    } finally {
      this.release();
    }
  }

  /** Calls `visit(leaderEpoch, baseOffset)` for every batch, in order (rebuilding the epoch history). */
  forEachBatchEpoch(visit: (leaderEpoch: number, baseOffset: number) => void): void {
    const fd = this.acquire();
    try {
      let position = 0;
      while (position < this.sizeBytes) {
        const header = readHeaderAt(this.context.storage, fd, position, this.sizeBytes, this.logPath);
        visit(header.leaderEpoch, header.baseOffset);
        position += header.totalBytes;
      }
    } finally {
      this.release();
    }
  }

  /** Index files are missing on disk (checked at partition load): rebuild now. */
  rebuildMissingIndexes(): void {
    this.offsetIndex = null;
    this.timeIndex = null;
    this.sealedIndexes = null;
    this.rebuildIndexes("missing index file");
  }

  // ---- recovery ------------------------------------------------------------------------

  /**
   * Verifies every batch from `fromPosition` (which holds offset `fromOffset`) to the end of
   * the file: header fields, offsets continuing without a gap, length within the file, crc.
   * Cuts the file at the first batch that fails and rebuilds index entries for the range.
   */
  recoverTail(fromPosition: number, fromOffset: number): TailScan {
    const fd = this.acquire();
    try {
      const fileBytes = this.context.storage.sizeOf(fd);
      let indexRebuilt = false;
      if (!this.prepareIndexesForRecovery(fromPosition, fromOffset)) {
        // Without the index of the trusted range there is nothing to trust: verify it all.
        indexRebuilt = true;
        fromPosition = 0;
        this.prepareIndexesForRecovery(0, this.baseOffset);
      }
      const { validBytes, reason } = this.verifyBatches(fd, fromPosition, this.nextOffset, fileBytes);
      const droppedBytes = fileBytes - validBytes;
      if (droppedBytes > 0) {
        // Also gives back any blocks a crashed broker had reserved past the end.
        this.context.storage.ftruncate(fd, validBytes);
        invalidateScanWindow();
      } else {
        this.context.preallocator.releaseLeftover(fd, validBytes, this.logPath);
      }
      return { validBytes, droppedBytes, reason, indexRebuilt };
    } finally {
      this.release();
    }
  }

  /** A closed segment verified during recovery: seal and write its rebuilt indexes. */
  finishRecovery(): void {
    this.sealTimeIndex();
    this.persistIndexes(false);
    this.dropToSealed();
  }

  /**
   * Keeps only index entries for the trusted range before `fromPosition`. False when that
   * range is not empty and its index files are missing or invalid.
   */
  private prepareIndexesForRecovery(fromPosition: number, fromOffset: number): boolean {
    this.sizeBytes = fromPosition;
    this.nextOffset = fromOffset;
    const indexes = fromPosition === 0 ? null : this.tryLoadIndexFiles(fromOffset, fromPosition);
    if (indexes === null && fromPosition > 0) return false;
    this.offsetIndex = indexes?.offsetIndex ?? new OffsetIndex();
    this.timeIndex = indexes?.timeIndex ?? new TimeIndex();
    this.sealedIndexes = null;
    if (indexes === null) {
      this.offsetIndex.markRewrite();
      this.timeIndex.markRewrite();
    }
    this.offsetIndex.truncateToPosition(fromPosition);
    this.timeIndex.truncateToOffset(fromOffset - this.baseOffset);
    this.maxTimestampMs = this.timeIndex.lastTimestamp;
    const lastIndexed = this.offsetIndex.floorByPosition(fromPosition);
    this.bytesSinceIndexEntry = fromPosition - Math.max(lastIndexed, 0);
    this.lastBatchBaseOffset = -1;
    return true;
  }

  /**
   * The index files, trimmed to the trusted range. Entries past the recovery point may be
   * garbage after a power loss, so only a prefix is kept; an invalid file is replaced.
   */
  private tryLoadIndexFiles(fromOffset: number, fromPosition: number): { offsetIndex: OffsetIndex; timeIndex: TimeIndex } | null {
    const { storage } = this.context;
    const trimmed = (bytes: Uint8Array | null, entryBytes: number) =>
      bytes === null ? null : bytes.subarray(0, bytes.length - (bytes.length % entryBytes));
    const indexBytes = trimmed(storage.readFile(this.indexPath), 8);
    const timeBytes = trimmed(storage.readFile(this.timeIndexPath), 12);
    if (indexBytes === null || timeBytes === null) return null;
    const relativeEnd = fromOffset - this.baseOffset;
    const offsetIndex = OffsetIndex.fromBytes(prefixWhere(indexBytes, 8, (view, at) => view.getUint32(at + 4) < fromPosition && view.getUint32(at) < relativeEnd), relativeEnd, fromPosition);
    const timeIndex = TimeIndex.fromBytes(prefixWhere(timeBytes, 12, (view, at) => view.getUint32(at + 8) < relativeEnd), relativeEnd);
    if (offsetIndex === null || timeIndex === null) return null;
    if (offsetIndex.length * 8 !== indexBytes.length) offsetIndex.markRewrite();
    if (timeIndex.length * 12 !== timeBytes.length) timeIndex.markRewrite();
    return { offsetIndex, timeIndex };
  }

  /** Walks and checks batches; returns where the verified bytes end and why they end there. */
  private verifyBatches(fd: number, fromPosition: number, fromOffset: number, fileBytes: number): { validBytes: number; reason: string | null } {
    const { storage } = this.context;
    let position = fromPosition;
    let expectedOffset = fromOffset;
    let chunkStart = 0;
    let chunkLength = 0;
    while (position < fileBytes) {
      const remaining = fileBytes - position;
      if (remaining < BATCH_HEADER_BYTES) return { validBytes: position, reason: `torn batch header (${remaining} bytes)` };
      if (position < chunkStart || position + BATCH_HEADER_BYTES > chunkStart + chunkLength) {
        chunkStart = position;
        chunkLength = storage.pread(fd, recoveryBuffer.subarray(0, Math.min(recoveryBuffer.length, remaining)), position);
      }
      const header = readBatchHeader(recoveryBuffer.subarray(0, chunkLength), position - chunkStart);
      const problem = headerProblem(header, expectedOffset);
      if (problem !== null) return { validBytes: position, reason: problem };
      const totalBytes = BATCH_LOG_OVERHEAD_BYTES + header.batchLength;
      if (totalBytes > remaining) return { validBytes: position, reason: `torn batch: ${totalBytes} bytes declared, ${remaining} present` };
      if (position + totalBytes > chunkStart + chunkLength) {
        if (totalBytes > recoveryBuffer.length) recoveryBuffer = new Uint8Array(totalBytes);
        chunkStart = position;
        chunkLength = storage.pread(fd, recoveryBuffer.subarray(0, Math.min(recoveryBuffer.length, remaining)), position);
      }
      const at = position - chunkStart;
      if (batchCrc(header.magic, recoveryBuffer.subarray(at + CRC_START, at + totalBytes)) !== header.crc) {
        return { validBytes: position, reason: `checksum mismatch in batch at offset ${expectedOffset}` };
      }
      this.noteBatch(position, header.baseOffset, header.baseOffset + header.lastOffsetDelta, header.maxTimestamp, totalBytes);
      expectedOffset = this.nextOffset;
      position += totalBytes;
    }
    return { validBytes: position, reason: null };
  }

  // ---- removal -------------------------------------------------------------------------

  /** Drops cached pages, unlinks the files and closes the fd (once no slice uses it). */
  delete(): void {
    const { storage, cache } = this.context;
    const fd = cache.fdOf(this);
    // Unlink frees the pages anyway once the last fd closes; DONTNEED drops them now even
    // while a slice keeps the file open.
    if (fd >= 0) storage.fadvise(fd, 0, 0, FADVISE.DONTNEED);
    storage.unlink(this.logPath);
    storage.unlink(this.indexPath);
    storage.unlink(this.timeIndexPath);
    this.deleted = true;
    this.active = false;
    cache.retire(this);
  }

  /**
   * Gives the fd back (closed once no slice uses it) and writes nothing: the segment's files are
   * about to be removed with their topic, so persisting indexes would be wasted I/O.
   */
  abandon(): void {
    this.active = false;
    this.context.cache.retire(this);
  }

  /** Writes the indexes, gives back reserved blocks and the fd (to the cache, for closing). */
  close(): void {
    try {
      if (this.isActive) {
        try {
          this.persistIndexes(false);
        } finally {
          this.releaseReservation();
        }
      }
    } finally {
      // Even when the indexes could not be written (a full disk): the fd must not outlive the
      // segment (it kept a deleted file's space, and its file system busy, until exit).
      this.active = false;
      this.context.cache.retire(this);
    }
  }
}

/** The longest prefix of fixed-size entries for which `keep` holds. */
function prefixWhere(bytes: Uint8Array, entryBytes: number, keep: (view: DataView, at: number) => boolean): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = 0;
  while (end < bytes.length && keep(view, end)) end += entryBytes;
  return bytes.subarray(0, end);
}

/** Why a header found during recovery cannot start the next batch, or null when it can. */
function headerProblem(header: ReturnType<typeof readBatchHeader>, expectedOffset: number): string | null {
  try {
    checkHeaderFields(header);
  } catch (error) {
    return `invalid batch header: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (header.baseOffset !== expectedOffset) return `batch base offset ${header.baseOffset} where ${expectedOffset} was expected`;
  if (header.batchLength + BATCH_LOG_OVERHEAD_BYTES > LIMITS.batchBytesMax) return `batch length ${header.batchLength} is over the limit`;
  return null;
}
