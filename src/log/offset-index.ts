/**
 * @module log/offset-index
 * The two sparse indexes beside every segment, held in memory as typed arrays and written
 * to their files in bulk (at flush, roll and close) rather than per entry: everything after
 * the recovery point is rebuilt from the log on an unclean start anyway, so an entry only
 * has to reach the disk before the recovery point moves past it.
 *
 *   .index      8-byte entries, big-endian: relativeOffset u32 | position u32
 *               relativeOffset = batch base offset - segment base offset; position = the
 *               batch's first byte in the .log. Both strictly increase.
 *   .timeindex  12-byte entries, big-endian: timestamp i64 | relativeOffset u32
 *               timestamp = the largest batch maxTimestamp of the segment up to and
 *               including the batch at relativeOffset. Both strictly increase.
 *
 * Lookups are binary searches for a floor; the caller finishes with a short forward scan
 * of batch headers in the log. Only the active segment keeps these in memory: a sealed
 * segment reads its files on demand (sealed-index.ts), so the heap does not grow with the log. A file whose length is not a multiple of the entry size or
 * whose entries do not increase is reported invalid, and the segment rebuilds it.
 */
import { readInt64, writeInt64 } from "../format/record-batch.ts";
import type { Storage } from "./storage.ts";

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;
const INITIAL_CAPACITY = 64;
const U32_MAX = 0xffff_ffff;

/** How many entries of a file of `length` bytes are already on disk and can be appended to. */
interface PersistState {
  persistedCount: number;
  /** The file no longer matches the memory prefix (truncated, rebuilt): rewrite it whole. */
  rewrite: boolean;
}

/** Writes entries [from, count) of an index to its file; rewrites it whole when asked. */
function persistEntries(
  storage: Storage, path: string, state: PersistState, count: number, entryBytes: number,
  encode: (view: DataView, index: number, at: number) => void, syncToDisk: boolean,
): void {
  const from = state.rewrite ? 0 : state.persistedCount;
  if (from === count && !state.rewrite && !syncToDisk) return;
  const fd = storage.open(path, { create: true });
  try {
    if (state.rewrite) storage.ftruncate(fd, 0);
    if (count > from) {
      const bytes = new Uint8Array((count - from) * entryBytes);
      const view = new DataView(bytes.buffer);
      for (let index = from; index < count; index++) encode(view, index, (index - from) * entryBytes);
      storage.pwrite(fd, bytes, from * entryBytes);
    }
    if (syncToDisk) storage.fdatasync(fd);
  } finally {
    storage.close(fd);
  }
  state.persistedCount = count;
  state.rewrite = false;
}

/** Sparse map from relative offset to file position. */
export class OffsetIndex {
  /** Interleaved [relativeOffset, position] pairs. */
  private entries = new Uint32Array(INITIAL_CAPACITY * 2);
  private count = 0;
  private readonly persist: PersistState = { persistedCount: 0, rewrite: false };

  get length(): number {
    return this.count;
  }

  /** Builds an index from file bytes; null when the bytes are not a valid index. */
  static fromBytes(bytes: Uint8Array, nextRelativeOffset: number, logBytes: number): OffsetIndex | null {
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new OffsetIndex();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 0; at < bytes.length; at += OFFSET_INDEX_ENTRY_BYTES) {
      const relativeOffset = view.getUint32(at);
      const position = view.getUint32(at + 4);
      if (relativeOffset >= nextRelativeOffset || position >= logBytes) return null;
      if (!index.append(relativeOffset, position)) return null;
    }
    index.persist.persistedCount = index.count;
    return index;
  }

  /** Adds an entry; false (and nothing added) when it would not strictly increase. */
  append(relativeOffset: number, position: number): boolean {
    if (this.count > 0) {
      const last = (this.count - 1) * 2;
      if (relativeOffset <= this.entries[last]! || position <= this.entries[last + 1]!) return false;
    }
    if (relativeOffset > U32_MAX || position > U32_MAX) return false;
    if (this.count * 2 === this.entries.length) {
      const grown = new Uint32Array(this.entries.length * 2);
      grown.set(this.entries);
      this.entries = grown;
    }
    this.entries[this.count * 2] = relativeOffset;
    this.entries[this.count * 2 + 1] = position;
    this.count++;
    return true;
  }

  /** The relative offset of entry `entry` (0 <= entry < length). */
  relativeOffsetAt(entry: number): number {
    return this.entries[entry * 2]!;
  }

  /** The position of entry `entry` (0 <= entry < length). */
  positionAt(entry: number): number {
    return this.entries[entry * 2 + 1]!;
  }

  /** Bytes of the typed array behind the entries (its capacity, not only the entries in use). */
  get memoryBytes(): number {
    return this.entries.byteLength;
  }

  /** Position of the last entry whose relative offset is <= `relativeOffset`; 0 when none. */
  floorPosition(relativeOffset: number): number {
    const found = this.floorEntry(relativeOffset);
    return found < 0 ? 0 : this.entries[found * 2 + 1]!;
  }

  /** Index of the last entry with relativeOffset <= target, or -1. */
  private floorEntry(relativeOffset: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.entries[middle * 2]! <= relativeOffset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** The largest indexed position that is <= `position`; -1 when none. */
  floorByPosition(position: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const candidate = this.entries[middle * 2 + 1]!;
      if (candidate <= position) {
        found = candidate;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** Drops entries whose position is >= `position` (after the log is truncated there). */
  truncateToPosition(position: number): void {
    let keep = this.count;
    while (keep > 0 && this.entries[(keep - 1) * 2 + 1]! >= position) keep--;
    if (keep === this.count) return;
    this.count = keep;
    if (keep < this.persist.persistedCount) this.persist.rewrite = true;
  }

  /** Marks the file as needing a full rewrite (it was missing or invalid). */
  markRewrite(): void {
    this.persist.rewrite = true;
  }

  /** Writes what the file lacks; fdatasyncs when `syncToDisk`. */
  persistTo(storage: Storage, path: string, syncToDisk: boolean): void {
    persistEntries(storage, path, this.persist, this.count, OFFSET_INDEX_ENTRY_BYTES, (view, index, at) => {
      view.setUint32(at, this.entries[index * 2]!);
      view.setUint32(at + 4, this.entries[index * 2 + 1]!);
    }, syncToDisk);
  }

  get dirty(): boolean {
    return this.persist.rewrite || this.persist.persistedCount !== this.count;
  }
}

/** Sparse map from running max timestamp to relative offset. */
export class TimeIndex {
  private timestamps = new Float64Array(INITIAL_CAPACITY);
  private relativeOffsets = new Uint32Array(INITIAL_CAPACITY);
  private count = 0;
  private readonly persist: PersistState = { persistedCount: 0, rewrite: false };

  get length(): number {
    return this.count;
  }

  /** The last (largest) timestamp, or -1 when empty. */
  get lastTimestamp(): number {
    return this.count === 0 ? -1 : this.timestamps[this.count - 1]!;
  }

  /** The timestamp of entry `entry` (0 <= entry < length). */
  timestampAt(entry: number): number {
    return this.timestamps[entry]!;
  }

  /** Bytes of the typed arrays behind the entries (their capacity). */
  get memoryBytes(): number {
    return this.timestamps.byteLength + this.relativeOffsets.byteLength;
  }

  static fromBytes(bytes: Uint8Array, nextRelativeOffset: number): TimeIndex | null {
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new TimeIndex();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 0; at < bytes.length; at += TIME_INDEX_ENTRY_BYTES) {
      const timestamp = readInt64(view, at);
      const relativeOffset = view.getUint32(at + 8);
      if (relativeOffset >= nextRelativeOffset) return null;
      if (!index.append(timestamp, relativeOffset)) return null;
    }
    index.persist.persistedCount = index.count;
    return index;
  }

  /** Adds an entry; false when the timestamp or offset would not strictly increase. */
  append(timestamp: number, relativeOffset: number): boolean {
    if (this.count > 0 && (timestamp <= this.timestamps[this.count - 1]! || relativeOffset <= this.relativeOffsets[this.count - 1]!)) {
      return false;
    }
    if (relativeOffset > U32_MAX) return false;
    if (this.count === this.timestamps.length) {
      const timestamps = new Float64Array(this.count * 2);
      timestamps.set(this.timestamps);
      this.timestamps = timestamps;
      const relativeOffsets = new Uint32Array(this.count * 2);
      relativeOffsets.set(this.relativeOffsets);
      this.relativeOffsets = relativeOffsets;
    }
    this.timestamps[this.count] = timestamp;
    this.relativeOffsets[this.count] = relativeOffset;
    this.count++;
    return true;
  }

  /**
   * Relative offset of the last entry whose timestamp is < `timestampMs`: every batch up to
   * and including it is older than the target, so a scan for the target may start there.
   * -1 when no entry qualifies (scan from the segment's start).
   */
  lastBefore(timestampMs: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.timestamps[middle]! < timestampMs) {
        found = this.relativeOffsets[middle]!;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** Drops entries at or after `relativeOffset` (after the log is truncated there). */
  truncateToOffset(relativeOffset: number): void {
    let keep = this.count;
    while (keep > 0 && this.relativeOffsets[keep - 1]! >= relativeOffset) keep--;
    if (keep === this.count) return;
    this.count = keep;
    if (keep < this.persist.persistedCount) this.persist.rewrite = true;
  }

  markRewrite(): void {
    this.persist.rewrite = true;
  }

  persistTo(storage: Storage, path: string, syncToDisk: boolean): void {
    persistEntries(storage, path, this.persist, this.count, TIME_INDEX_ENTRY_BYTES, (view, index, at) => {
      writeInt64(view, at, this.timestamps[index]!);
      view.setUint32(at + 8, this.relativeOffsets[index]!);
    }, syncToDisk);
  }

  get dirty(): boolean {
    return this.persist.rewrite || this.persist.persistedCount !== this.count;
  }
}
