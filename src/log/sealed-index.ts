/**
 * @module log/sealed-index
 * A sealed segment's `.index` and `.timeindex` (layouts in offset-index.ts), read from their files
 * on demand instead of held on the heap: the broker's memory must not grow with the log (issue 17),
 * and the OS page cache already holds the files' recent pages.
 *
 * The files are cut into blocks of BLOCK_ENTRIES entries (2 KiB of `.index`, 3 KiB of
 * `.timeindex`). Memory keeps only each block's first entry — 1/256 of the index — so a lookup is
 * a binary search over those, then one pread of the block that holds the answer and a binary
 * search inside it. The first entry read back must match the one remembered (a paired check: a
 * file changed under us is a STORAGE_ERROR, never a wrong position).
 *
 * Built from the in-memory index when a segment is sealed (no read), or, after a restart, by one
 * pass over the file that also validates it (the checks of OffsetIndex.fromBytes: entry size,
 * strictly increasing, within the segment); an invalid file gives null and the segment rebuilds it.
 */
import { RunnelError } from "../errors.ts";
import { readInt64 } from "../format/record-batch.ts";
import { OFFSET_INDEX_ENTRY_BYTES, type OffsetIndex, TIME_INDEX_ENTRY_BYTES, type TimeIndex } from "./offset-index.ts";
import type { Storage } from "./storage.ts";

/** Entries per block: one lookup reads one block. */
export const BLOCK_ENTRIES = 256;
/** Validation pass chunk: a multiple of both entry sizes (8 and 12) and of their blocks. */
const PASS_CHUNK_BYTES = 48 * 1024;

/** One scratch buffer for block reads and validation passes: lookups are synchronous, so they never overlap. */
const scratch = new Uint8Array(PASS_CHUNK_BYTES);
const scratchView = new DataView(scratch.buffer);

/** The lookups a segment needs from its offset index, in memory or sealed. */
export interface OffsetLookup {
  readonly length: number;
  floorPosition(relativeOffset: number): number;
  floorByPosition(position: number): number;
}

/** The lookups a segment needs from its time index, in memory or sealed. */
export interface TimeLookup {
  readonly length: number;
  readonly lastTimestamp: number;
  lastBefore(timestampMs: number): number;
}

/** Index of the last block whose first key satisfies `holds`, or -1 (keys increase, so `holds` is a prefix). */
function lastBlockWhere(blocks: number, holds: (block: number) => boolean): number {
  let low = 0;
  let high = blocks - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (holds(middle)) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

/** Reads block `block` of a file of `count` entries into the scratch buffer; returns its entry count. */
function readBlock(storage: Storage, path: string, block: number, count: number, entryBytes: number): number {
  const entries = Math.min(BLOCK_ENTRIES, count - block * BLOCK_ENTRIES);
  const bytes = entries * entryBytes;
  const fd = storage.open(path, { create: false });
  let read: number;
  try {
    read = storage.pread(fd, scratch.subarray(0, bytes), block * BLOCK_ENTRIES * entryBytes);
  } finally {
    storage.close(fd);
  }
  if (read !== bytes) throw changedUnderUs(path, `block ${block} is ${read} bytes, ${bytes} expected`);
  return entries;
}

function changedUnderUs(path: string, what: string): RunnelError {
  return new RunnelError("STORAGE_ERROR", `${path} changed since it was sealed: ${what}`, { details: { file: path } });
}

/**
 * Reads a whole index file chunk by chunk (never all of it at once), calling `visit` for each
 * entry's offset in the scratch view; false as soon as `visit` does. Null when the file is missing
 * or its length is not a multiple of `entryBytes`; otherwise the entry count (or false).
 */
function passOver(storage: Storage, path: string, entryBytes: number, visit: (at: number, entry: number) => boolean): number | false | null {
  const fileBytes = storage.fileSize(path);
  if (fileBytes === null || fileBytes % entryBytes !== 0) return null;
  if (fileBytes === 0) return 0;
  const fd = storage.open(path, { create: false });
  try {
    for (let start = 0; start < fileBytes; start += PASS_CHUNK_BYTES) {
      const want = Math.min(PASS_CHUNK_BYTES, fileBytes - start);
      if (storage.pread(fd, scratch.subarray(0, want), start) !== want) return null;
      for (let at = 0; at < want; at += entryBytes) if (!visit(at, (start + at) / entryBytes)) return false;
    }
  } finally {
    storage.close(fd);
  }
  return fileBytes / entryBytes;
}

/** A sealed `.index`: relative offset -> position, read block by block. */
export class SealedOffsetIndex implements OffsetLookup {
  private constructor(
    private readonly storage: Storage,
    private readonly path: string,
    readonly length: number,
    /** Each block's first entry, interleaved [relativeOffset, position]. */
    private readonly firsts: Uint32Array,
  ) {}

  /** From the in-memory index that was just written to `path` whole. */
  static fromIndex(index: OffsetIndex, storage: Storage, path: string): SealedOffsetIndex {
    const firsts = new Uint32Array(Math.ceil(index.length / BLOCK_ENTRIES) * 2);
    for (let block = 0; block * 2 < firsts.length; block++) {
      firsts[block * 2] = index.relativeOffsetAt(block * BLOCK_ENTRIES);
      firsts[block * 2 + 1] = index.positionAt(block * BLOCK_ENTRIES);
    }
    return new SealedOffsetIndex(storage, path, index.length, firsts);
  }

  /** From the file, validated on the way; null when it is missing or invalid. */
  static fromFile(storage: Storage, path: string, nextRelativeOffset: number, logBytes: number): SealedOffsetIndex | null {
    const firsts: number[] = [];
    let lastRelative = -1;
    let lastPosition = -1;
    const count = passOver(storage, path, OFFSET_INDEX_ENTRY_BYTES, (at, entry) => {
      const relativeOffset = scratchView.getUint32(at);
      const position = scratchView.getUint32(at + 4);
      if (relativeOffset >= nextRelativeOffset || position >= logBytes || relativeOffset <= lastRelative || position <= lastPosition) return false;
      if (entry % BLOCK_ENTRIES === 0) firsts.push(relativeOffset, position);
      lastRelative = relativeOffset;
      lastPosition = position;
      return true;
    });
    if (count === null || count === false) return null;
    return new SealedOffsetIndex(storage, path, count, Uint32Array.from(firsts));
  }

  get memoryBytes(): number {
    return this.firsts.byteLength;
  }

  /** Position of the last entry whose relative offset is <= `relativeOffset`; 0 when none. */
  floorPosition(relativeOffset: number): number {
    const block = lastBlockWhere(this.firsts.length / 2, (candidate) => this.firsts[candidate * 2]! <= relativeOffset);
    if (block < 0) return 0;
    const entries = this.loadBlock(block);
    const last = lastEntryWhere(entries, (at) => scratchView.getUint32(at) <= relativeOffset, OFFSET_INDEX_ENTRY_BYTES);
    return scratchView.getUint32(last + 4);
  }

  /** The largest indexed position that is <= `position`; -1 when none. */
  floorByPosition(position: number): number {
    const block = lastBlockWhere(this.firsts.length / 2, (candidate) => this.firsts[candidate * 2 + 1]! <= position);
    if (block < 0) return -1;
    const entries = this.loadBlock(block);
    const last = lastEntryWhere(entries, (at) => scratchView.getUint32(at + 4) <= position, OFFSET_INDEX_ENTRY_BYTES);
    return scratchView.getUint32(last + 4);
  }

  /** Reads the block and checks its first entry against the one remembered. */
  private loadBlock(block: number): number {
    const entries = readBlock(this.storage, this.path, block, this.length, OFFSET_INDEX_ENTRY_BYTES);
    if (scratchView.getUint32(0) !== this.firsts[block * 2] || scratchView.getUint32(4) !== this.firsts[block * 2 + 1]) {
      throw changedUnderUs(this.path, `block ${block} starts with another entry`);
    }
    return entries;
  }
}

/** A sealed `.timeindex`: running max timestamp -> relative offset, read block by block. */
export class SealedTimeIndex implements TimeLookup {
  private constructor(
    private readonly storage: Storage,
    private readonly path: string,
    readonly length: number,
    /** Each block's first timestamp. */
    private readonly firsts: Float64Array,
    readonly lastTimestamp: number,
  ) {}

  static fromIndex(index: TimeIndex, storage: Storage, path: string): SealedTimeIndex {
    const firsts = new Float64Array(Math.ceil(index.length / BLOCK_ENTRIES));
    for (let block = 0; block < firsts.length; block++) firsts[block] = index.timestampAt(block * BLOCK_ENTRIES);
    return new SealedTimeIndex(storage, path, index.length, firsts, index.lastTimestamp);
  }

  static fromFile(storage: Storage, path: string, nextRelativeOffset: number): SealedTimeIndex | null {
    const firsts: number[] = [];
    let lastTimestamp = -1;
    let lastRelative = -1;
    let first = true;
    const count = passOver(storage, path, TIME_INDEX_ENTRY_BYTES, (at, entry) => {
      const timestamp = readInt64(scratchView, at);
      const relativeOffset = scratchView.getUint32(at + 8);
      if (relativeOffset >= nextRelativeOffset) return false;
      if (!first && (timestamp <= lastTimestamp || relativeOffset <= lastRelative)) return false;
      if (entry % BLOCK_ENTRIES === 0) firsts.push(timestamp);
      first = false;
      lastTimestamp = timestamp;
      lastRelative = relativeOffset;
      return true;
    });
    if (count === null || count === false) return null;
    return new SealedTimeIndex(storage, path, count, Float64Array.from(firsts), count === 0 ? -1 : lastTimestamp);
  }

  get memoryBytes(): number {
    return this.firsts.byteLength;
  }

  /** Relative offset of the last entry whose timestamp is < `timestampMs`; -1 when none (TimeIndex.lastBefore). */
  lastBefore(timestampMs: number): number {
    const block = lastBlockWhere(this.firsts.length, (candidate) => this.firsts[candidate]! < timestampMs);
    if (block < 0) return -1;
    const entries = readBlock(this.storage, this.path, block, this.length, TIME_INDEX_ENTRY_BYTES);
    if (readInt64(scratchView, 0) !== this.firsts[block]) throw changedUnderUs(this.path, `block ${block} starts with another entry`);
    const last = lastEntryWhere(entries, (at) => readInt64(scratchView, at) < timestampMs, TIME_INDEX_ENTRY_BYTES);
    return scratchView.getUint32(last + 8);
  }
}

/** Byte offset in the scratch block of the last of `entries` for which `holds` is true (the first always is). */
function lastEntryWhere(entries: number, holds: (at: number) => boolean, entryBytes: number): number {
  let low = 1;
  let high = entries - 1;
  let found = 0;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (holds(middle * entryBytes)) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found * entryBytes;
}
