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
 * file changed under us is a STORAGE_ERROR, never a wrong position). The last BLOCKS_CACHED blocks
 * read, broker-wide, are kept (at most 192 KiB): a consumer reading a segment in order finds its
 * next position in the block its previous fetch read, so most fetches make no index syscall.
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
/** Blocks kept after their read, broker-wide, least recently used out first. */
export const BLOCKS_CACHED = 64;
/** Validation pass chunk: a multiple of both entry sizes (8 and 12) and of their blocks. */
const PASS_CHUNK_BYTES = 48 * 1024;

/** One scratch buffer for validation passes: they are synchronous, so they never overlap. */
const scratch = new Uint8Array(PASS_CHUNK_BYTES);
const scratchView = new DataView(scratch.buffer);

/** A block read from a sealed index file, kept in `blockCache`. */
interface CachedBlock {
  block: number;
  entries: number;
  view: DataView;
}

/** The recently read blocks, by `blockKey`; Map order is recency. */
const blockCache = new Map<number, CachedBlock>();
/** Blocks per file are < 2^24 (u32 entries / 256), so `owner * 2^24 + block` is a safe integer key. */
const BLOCK_KEY_STRIDE = 2 ** 24;
let nextOwnerId = 0;

function blockKey(ownerId: number, block: number): number {
  return ownerId * BLOCK_KEY_STRIDE + block;
}

/** Reads of index blocks that went to the file (for tests and the bench). */
export const blockReads = { fromFile: 0, fromCache: 0 };

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

/** Block `block` of `owner`'s file of `count` entries: from the cache, else read (and cached). */
function blockOf(ownerId: number, storage: Storage, path: string, block: number, count: number, entryBytes: number): CachedBlock {
  const key = blockKey(ownerId, block);
  const cached = blockCache.get(key);
  if (cached !== undefined) {
    blockCache.delete(key);
    blockCache.set(key, cached);
    blockReads.fromCache++;
    return cached;
  }
  const entries = Math.min(BLOCK_ENTRIES, count - block * BLOCK_ENTRIES);
  const bytes = new Uint8Array(entries * entryBytes);
  const fd = storage.open(path, { create: false });
  let read: number;
  try {
    read = storage.pread(fd, bytes, block * BLOCK_ENTRIES * entryBytes);
  } finally {
    storage.close(fd);
  }
  if (read !== bytes.length) throw changedUnderUs(path, `block ${block} is ${read} bytes, ${bytes.length} expected`);
  blockReads.fromFile++;
  return { block, entries, view: new DataView(bytes.buffer) };
}

/** Keeps a block whose first entry was checked; drops the least recently used beyond BLOCKS_CACHED. */
function keepBlock(ownerId: number, read: CachedBlock): void {
  const key = blockKey(ownerId, read.block);
  blockCache.delete(key);
  blockCache.set(key, read);
  if (blockCache.size > BLOCKS_CACHED) blockCache.delete(blockCache.keys().next().value as number);
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
  private readonly id = nextOwnerId++;

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
    const { entries, view } = this.loadBlock(block);
    const last = lastEntryWhere(entries, (at) => view.getUint32(at) <= relativeOffset, OFFSET_INDEX_ENTRY_BYTES);
    return view.getUint32(last + 4);
  }

  /** The largest indexed position that is <= `position`; -1 when none. */
  floorByPosition(position: number): number {
    const block = lastBlockWhere(this.firsts.length / 2, (candidate) => this.firsts[candidate * 2 + 1]! <= position);
    if (block < 0) return -1;
    const { entries, view } = this.loadBlock(block);
    const last = lastEntryWhere(entries, (at) => view.getUint32(at + 4) <= position, OFFSET_INDEX_ENTRY_BYTES);
    return view.getUint32(last + 4);
  }

  /** The block (cached or read); one read from the file must start with the entry remembered. */
  private loadBlock(block: number): CachedBlock {
    const read = blockOf(this.id, this.storage, this.path, block, this.length, OFFSET_INDEX_ENTRY_BYTES);
    if (read.view.getUint32(0) !== this.firsts[block * 2] || read.view.getUint32(4) !== this.firsts[block * 2 + 1]) {
      throw changedUnderUs(this.path, `block ${block} starts with another entry`);
    }
    keepBlock(this.id, read);
    return read;
  }
}

/** A sealed `.timeindex`: running max timestamp -> relative offset, read block by block. */
export class SealedTimeIndex implements TimeLookup {
  private readonly id = nextOwnerId++;

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
    const { entries, view } = blockOf(this.id, this.storage, this.path, block, this.length, TIME_INDEX_ENTRY_BYTES);
    if (readInt64(view, 0) !== this.firsts[block]) throw changedUnderUs(this.path, `block ${block} starts with another entry`);
    keepBlock(this.id, { block, entries, view });
    const last = lastEntryWhere(entries, (at) => readInt64(view, at) < timestampMs, TIME_INDEX_ENTRY_BYTES);
    return view.getUint32(last + 8);
  }
}

/** Byte offset in a block of the last of `entries` for which `holds` is true (the first always is). */
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
