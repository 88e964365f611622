/**
 * @module log/fd-cache
 * A bounded, reference-counted cache of open segment files, shared by every partition of a
 * log manager, so that thousands of partitions with many closed segments stay under the
 * open-files limit.
 *
 * - Files are opened on demand and closed least-recently-used first once more than `capacity`
 *   are open; room is made before a new file is opened. Active segments are not pinned (see
 *   segment.ts): an idle partition's active segment is closed like any other and reopened by
 *   its next append, so the budget holds however many partitions exist.
 * - Pinned files (kept for callers that need an fd to stay put) are always open and do not
 *   count against the bound.
 * - Background fdatasyncs hold their file's fd while they run; `syncSlots` bounds how many run
 *   at once, or 5,000 partitions flushed together would hold 5,000 fds.
 * - An open that fails for lack of descriptors (EMFILE/ENFILE: sockets took them) closes every
 *   unreferenced file of the cache and tries once more.
 * - A file with references (a ReadSlice being sent, a sync in flight) is never closed: the
 *   cache may then run over its bound until the reference is released.
 * - A retired file (deleted by retention, or its partition closed) leaves the cache at once
 *   and is closed when its last reference goes. Unlinking a file that is still open is fine
 *   on Linux: its bytes stay readable through the fd until it is closed.
 */
import { readFileSync } from "node:fs";
import { Semaphore } from "./semaphore.ts";

/** Upper bound of fdatasyncs in flight at once (the thread pool runs only a few anyway). */
const SYNCS_IN_FLIGHT_MAX = 64;

export interface CacheableFile {
  /** Opens the file; returns its fd. */
  openFile(): number;
  /** Closes the fd and drops memory tied to it (loaded indexes). */
  closeFile(fd: number): void;
}

interface Entry {
  fd: number;
  refs: number;
  pinned: boolean;
  retired: boolean;
}

export class FileCache {
  /** Insertion order is recency order: re-inserted on every acquire. */
  private readonly entries = new Map<CacheableFile, Entry>();
  /** Retired files still referenced, closed on their last release. */
  private readonly retiring = new Map<CacheableFile, Entry>();
  private unpinnedOpen = 0;
  /** Async fdatasyncs (which hold fds) running at once, broker-wide: a quarter of the capacity. */
  readonly syncSlots: Semaphore;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`fd cache capacity must be a positive integer, got ${capacity}`);
    this.syncSlots = new Semaphore(Math.max(1, Math.min(SYNCS_IN_FLIGHT_MAX, Math.floor(capacity / 4))));
  }

  /** Open fds held by the cache (pinned, unpinned and retiring). */
  get openCount(): number {
    return this.entries.size + this.retiring.size;
  }

  /** Opens `file` if needed and keeps it open (the active segment); returns its fd. */
  pin(file: CacheableFile): number {
    const existing = this.entries.get(file);
    if (existing) {
      if (!existing.pinned) this.unpinnedOpen--;
      existing.pinned = true;
      return existing.fd;
    }
    const fd = file.openFile();
    this.entries.set(file, { fd, refs: 0, pinned: true, retired: false });
    return fd;
  }

  /** The file becomes evictable (the segment was rolled). */
  unpin(file: CacheableFile): void {
    const entry = this.entries.get(file);
    if (!entry || !entry.pinned) return;
    entry.pinned = false;
    this.unpinnedOpen++;
    this.entries.delete(file);
    this.entries.set(file, entry);
    this.evict();
  }

  /** Returns an open fd for `file` and takes a reference; pair with release(). */
  acquire(file: CacheableFile): number {
    const retiring = this.retiring.get(file);
    if (retiring) {
      retiring.refs++;
      return retiring.fd;
    }
    let entry = this.entries.get(file);
    if (entry) {
      this.entries.delete(file);
    } else {
      this.evictDownTo(this.capacity - 1);
      entry = { fd: this.openWithRoom(file), refs: 0, pinned: false, retired: false };
      this.unpinnedOpen++;
    }
    entry.refs++;
    this.entries.set(file, entry);
    this.evict();
    return entry.fd;
  }

  release(file: CacheableFile): void {
    const entry = this.entries.get(file) ?? this.retiring.get(file);
    if (!entry || entry.refs === 0) throw new Error("FileCache.release without a matching acquire");
    entry.refs--;
    if (entry.refs > 0) return;
    if (entry.retired) {
      this.retiring.delete(file);
      file.closeFile(entry.fd);
      return;
    }
    this.evict();
  }

  /** The fd when the file is open, else -1. Takes no reference. */
  fdOf(file: CacheableFile): number {
    return this.entries.get(file)?.fd ?? this.retiring.get(file)?.fd ?? -1;
  }

  /** Removes `file` for good: closed now, or on the last release when referenced. */
  retire(file: CacheableFile): void {
    const entry = this.entries.get(file);
    if (!entry) return;
    this.entries.delete(file);
    if (!entry.pinned) this.unpinnedOpen--;
    if (entry.refs === 0) {
      file.closeFile(entry.fd);
      return;
    }
    entry.retired = true;
    this.retiring.set(file, entry);
  }

  /** Opens `file`; out of descriptors, closes every unreferenced file and tries once more. */
  private openWithRoom(file: CacheableFile): number {
    try {
      return file.openFile();
    } catch (error) {
      const errno = (error as { errnoName?: unknown }).errnoName;
      if (errno !== "EMFILE" && errno !== "ENFILE") throw error;
      this.evictDownTo(0);
      return file.openFile();
    }
  }

  /** Closes least-recently-used unreferenced unpinned files while over capacity. */
  private evict(): void {
    this.evictDownTo(this.capacity);
  }

  private evictDownTo(limit: number): void {
    if (this.unpinnedOpen <= limit) return;
    for (const [file, entry] of this.entries) {
      if (this.unpinnedOpen <= limit) return;
      if (entry.pinned || entry.refs > 0) continue;
      this.entries.delete(file);
      this.unpinnedOpen--;
      file.closeFile(entry.fd);
    }
  }
}

/** The process's soft limit on open files (RLIMIT_NOFILE, from /proc/self/limits), or null when unknown. */
export function openFilesSoftLimit(): number | null {
  let text: string;
  try {
    text = readFileSync("/proc/self/limits", "utf8");
  } catch {
    return null;
  }
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (match === null || match[1] === "unlimited") return null;
  return Number(match[1]);
}

/**
 * The segment fds the cache may hold: `configured`, but at most half the process's open-files
 * limit, so that sockets, index files and the rest always have room (a broker started with
 * `ulimit -n 512` and the default 1,024 would otherwise meet EMFILE).
 */
export function segmentFdBudget(configured: number, softLimit: number | null = openFilesSoftLimit()): number {
  if (softLimit === null) return configured;
  return Math.max(1, Math.min(configured, Math.floor(softLimit / 2)));
}
