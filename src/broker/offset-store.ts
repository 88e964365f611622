/**
 * @module broker/offset-store
 * Consumer-group committed offsets, durable across restarts.
 *
 * One append-only file, `<dataDir>/consumer-offsets/offsets.log` (beside the log manager's
 * `topics/`, never inside it). Each commit is one record:
 *
 *   off size field
 *     0   4  length   u32 BE, bytes of payload
 *     4   4  crc      u32 BE, CRC-32 (IEEE) of payload
 *     8   n  payload  msgpack [group: str, [[topic: str, partition: int, offset: int, metadata: str], ...]]
 *
 * A commit is acknowledged only after its record is written and fdatasync'd; commits that
 * arrive while a sync runs are written together and share the next sync (group commit). The
 * in-memory map is updated after the sync, so `fetch` never returns a commit that could be lost.
 * On open the file is replayed and cut at the first torn or corrupt record. When the file grows
 * past four times its live size (and at least 1 MiB), it is rewritten as a snapshot — one
 * record per group — with write-temp, fdatasync, rename, directory fsync.
 *
 * Removing a topic's offsets (deleteTopic) rewrites the file the same way, as a snapshot without
 * them: the format has no deletion record, and one rename is the only way to drop the entries of
 * many groups at once so that a crash leaves all of them or none.
 *
 * Every write — commits, removals, compaction — runs in one queue, in arrival order, so a
 * snapshot never races an append to the file it replaces.
 */
import { decode, Encoder } from "@msgpack/msgpack";
import * as path from "node:path";
import { RunnelError } from "../errors.ts";
import type { LogSink } from "../log/api.ts";
import type { Storage } from "../log/storage.ts";
import { nativeStorage } from "../log/storage.ts";

export interface CommittedOffset {
  offset: number;
  metadata: string;
}

export interface OffsetCommit {
  topic: string;
  partition: number;
  offset: number;
  metadata: string;
}

/**
 * What the handlers use of a group's committed offsets. A single node's is the OffsetStore below;
 * a cluster broker's is cluster/replicated-offsets.ts (offsets in `__consumer_offsets`, served by
 * the group's coordinator only).
 */
export interface CommittedOffsets {
  readonly size: number;
  /** Throws NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or COORDINATOR_NOT_AVAILABLE unless this broker serves the group now (a single node always does). */
  requireCoordinator(group: string): void;
  fetch(group: string, topic: string, partition: number): CommittedOffset | null;
  fetchAll(group: string): OffsetCommit[];
  committedGroups(): string[];
  committedTopics(): Set<string>;
  isTopicBeingRemoved(topic: string): boolean;
  commit(group: string, entries: OffsetCommit[]): Promise<void>;
  removeTopic(topic: string, afterRemoval?: () => void): Promise<void>;
  removeGroup(group: string): Promise<void>;
  close(): Promise<void>;
}

interface Settle {
  resolve: () => void;
  reject: (error: unknown) => void;
}

type PendingCommit = Settle & { kind: "commit"; bytes: Uint8Array; group: string; entries: OffsetCommit[] };
type PendingRemoval = Settle & { kind: "removeTopic"; topic: string; afterRemoval: () => void };
type PendingGroupRemoval = Settle & { kind: "removeGroup"; group: string };
type Pending = PendingCommit | PendingRemoval | PendingGroupRemoval;

const RECORD_HEAD_BYTES = 8;
const COMPACT_BYTES_MIN = 1024 * 1024;
const encoder = new Encoder();

function entryKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function encodeRecord(group: string, entries: Iterable<OffsetCommit>): Uint8Array {
  const rows = [...entries].map((entry) => [entry.topic, entry.partition, entry.offset, entry.metadata]);
  const payload = encoder.encode([group, rows]);
  const record = new Uint8Array(RECORD_HEAD_BYTES + payload.length);
  const view = new DataView(record.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, Bun.hash.crc32(payload) >>> 0);
  record.set(payload, RECORD_HEAD_BYTES);
  return record;
}

function temporaryOf(file: string): string {
  return `${file}.tmp`;
}

function concatenate(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let position = 0;
  for (const part of parts) {
    bytes.set(part, position);
    position += part.length;
  }
  return bytes;
}

/** The leading commits of the queue, up to (not including) the first removal. */
function takeLeadingCommits(queue: Pending[]): PendingCommit[] {
  const commits: PendingCommit[] = [];
  for (const pending of queue) {
    if (pending.kind !== "commit") break;
    commits.push(pending);
  }
  queue.splice(0, commits.length);
  return commits;
}

export class OffsetStore implements CommittedOffsets {
  private readonly groups = new Map<string, Map<string, OffsetCommit>>();
  /** Topics whose offsets are being removed: commits naming them are refused meanwhile. */
  private readonly removing = new Set<string>();
  private entryCount = 0;
  private fileBytes = 0;
  private queue: Pending[] = [];
  private writing = false;
  private writer: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly file: string,
    private fd: number,
    private readonly storage: Storage,
    private readonly entriesMax: number,
    private readonly logger: LogSink | undefined,
  ) {}

  static open(dataDir: string, options: { entriesMax: number; storage?: Storage; logger?: LogSink }): OffsetStore {
    const storage = options.storage ?? nativeStorage;
    const directory = path.join(dataDir, "consumer-offsets");
    storage.mkdirp(directory);
    const file = path.join(directory, "offsets.log");
    // A replacement interrupted before its rename: the file it was to replace is still whole.
    storage.unlink(temporaryOf(file));
    const fd = storage.open(file, { create: true });
    const store = new OffsetStore(file, fd, storage, options.entriesMax, options.logger);
    store.replay();
    return store;
  }

  get size(): number {
    return this.entryCount;
  }

  /** A single node coordinates every group. */
  requireCoordinator(_group: string): void {}

  fetch(group: string, topic: string, partition: number): CommittedOffset | null {
    const entry = this.groups.get(group)?.get(entryKey(topic, partition));
    return entry === undefined ? null : { offset: entry.offset, metadata: entry.metadata };
  }

  /** Every committed offset of a group, in no particular order. */
  fetchAll(group: string): OffsetCommit[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }

  /** Every group holding committed offsets. */
  committedGroups(): string[] {
    return [...this.groups.keys()];
  }

  /** Every topic some group has committed offsets for. */
  committedTopics(): Set<string> {
    const topics = new Set<string>();
    for (const entries of this.groups.values()) for (const entry of entries.values()) topics.add(entry.topic);
    return topics;
  }

  /** True while `removeTopic(topic)` runs: a commit naming the topic would be refused. */
  isTopicBeingRemoved(topic: string): boolean {
    return this.removing.has(topic);
  }

  /** Resolves once the commit is on disk (fdatasync returned). Throws LIMIT_EXCEEDED, UNKNOWN_TOPIC, STORAGE_*. */
  commit(group: string, entries: OffsetCommit[]): Promise<void> {
    if (this.closed) return Promise.reject(new RunnelError("SHUTTING_DOWN", "the offset store is closed"));
    const removed = entries.find((entry) => this.removing.has(entry.topic));
    if (removed !== undefined) return Promise.reject(new RunnelError("UNKNOWN_TOPIC", `topic '${removed.topic}' is being deleted`));
    const known = this.groups.get(group);
    const added = entries.filter((entry) => known?.get(entryKey(entry.topic, entry.partition)) === undefined).length;
    if (this.entryCount + added > this.entriesMax) {
      return Promise.reject(new RunnelError("LIMIT_EXCEEDED", `the broker holds at most ${this.entriesMax} committed offsets`));
    }
    return new Promise((resolve, reject) => this.enqueue({ kind: "commit", bytes: encodeRecord(group, entries), group, entries, resolve, reject }));
  }

  /**
   * Forgets every group's committed offsets of `topic`, durably: resolves once a file without
   * them has replaced the old one (temp, fdatasync, rename, directory fsync). Commits queued
   * before this call are written first (and so removed too); commits naming the topic are
   * refused (UNKNOWN_TOPIC) until it settles. `afterRemoval` runs right after the removal, in the
   * same turn — deleteTopic deletes the log there, so no commit slips in between — and its error,
   * if any, rejects the promise (the offsets stay removed). UNKNOWN_TOPIC when the topic is
   * already being removed; STORAGE_* when the file could not be replaced (nothing removed then).
   */
  removeTopic(topic: string, afterRemoval: () => void = () => {}): Promise<void> {
    if (this.closed) return Promise.reject(new RunnelError("SHUTTING_DOWN", "the offset store is closed"));
    if (this.removing.has(topic)) return Promise.reject(new RunnelError("UNKNOWN_TOPIC", `topic '${topic}' is being deleted`));
    this.removing.add(topic);
    return new Promise((resolve, reject) => this.enqueue({ kind: "removeTopic", topic, afterRemoval, resolve, reject }));
  }

  /**
   * Forgets every committed offset of `group` (deleteGroup), durably, as removeTopic does: the
   * file is replaced by a snapshot without them. Commits queued before are removed too; commits
   * after it start the group afresh.
   */
  removeGroup(group: string): Promise<void> {
    if (this.closed) return Promise.reject(new RunnelError("SHUTTING_DOWN", "the offset store is closed"));
    return new Promise((resolve, reject) => this.enqueue({ kind: "removeGroup", group, resolve, reject }));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writer;
    this.storage.close(this.fd);
  }

  private enqueue(pending: Pending): void {
    this.queue.push(pending);
    if (!this.writing) this.writer = this.writeQueued();
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (head?.kind === "removeTopic") {
        this.queue.shift();
        await this.runRemoval(head);
      } else if (head?.kind === "removeGroup") {
        this.queue.shift();
        await this.runGroupRemoval(head);
      } else {
        await this.runCommits(takeLeadingCommits(this.queue));
      }
      try {
        await this.compactIfLarge();
      } catch (error) {
        // Before the rename the old file is still in use, after it the new one (same offsets): keep appending.
        this.logger?.warn({ err: error }, "offset store: compaction failed");
      }
    }
    this.writing = false;
  }

  private async runCommits(batch: PendingCommit[]): Promise<void> {
    try {
      await this.writeBatch(batch);
      for (const pending of batch) this.apply(pending.group, pending.entries);
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }

  private async writeBatch(batch: PendingCommit[]): Promise<void> {
    const bytes = concatenate(batch.map((pending) => pending.bytes));
    this.storage.pwrite(this.fd, bytes, this.fileBytes);
    this.fileBytes += bytes.length;
    await this.storage.fdatasyncAsync(this.fd);
  }

  private async runRemoval(removal: PendingRemoval): Promise<void> {
    try {
      const removed = this.countEntriesOf(removal.topic);
      if (removed > 0) {
        await this.replaceFile(concatenate(this.liveRecords(removal.topic)), () => this.forget(removal.topic));
        this.logger?.info({ topic: removal.topic, offsetsRemoved: removed }, "offset store: removed a deleted topic's committed offsets");
      }
      removal.afterRemoval();
      removal.resolve();
    } catch (error) {
      removal.reject(error);
    } finally {
      this.removing.delete(removal.topic);
    }
  }

  private async runGroupRemoval(removal: PendingGroupRemoval): Promise<void> {
    try {
      const offsets = this.groups.get(removal.group);
      if (offsets !== undefined) {
        const live = this.liveRecords(undefined, removal.group);
        await this.replaceFile(concatenate(live), () => {
          this.entryCount -= offsets.size;
          this.groups.delete(removal.group);
        });
        this.logger?.info({ group: removal.group, offsetsRemoved: offsets.size }, "offset store: removed a deleted group's committed offsets");
      }
      removal.resolve();
    } catch (error) {
      removal.reject(error);
    }
  }

  private apply(group: string, entries: Iterable<OffsetCommit>): void {
    let offsets = this.groups.get(group);
    if (offsets === undefined) this.groups.set(group, (offsets = new Map()));
    for (const entry of entries) {
      const key = entryKey(entry.topic, entry.partition);
      if (!offsets.has(key)) this.entryCount++;
      offsets.set(key, { topic: entry.topic, partition: entry.partition, offset: entry.offset, metadata: entry.metadata });
    }
  }

  private countEntriesOf(topic: string): number {
    let count = 0;
    for (const offsets of this.groups.values()) for (const entry of offsets.values()) if (entry.topic === topic) count++;
    return count;
  }

  /** Drops the topic's entries from memory, and the groups left with none. */
  private forget(topic: string): void {
    for (const [group, offsets] of this.groups) {
      for (const [key, entry] of offsets) {
        if (entry.topic !== topic) continue;
        offsets.delete(key);
        this.entryCount--;
      }
      if (offsets.size === 0) this.groups.delete(group);
    }
  }

  /** One record per group holding live offsets (without `excludedTopic`'s or `excludedGroup`'s): a snapshot's content. */
  private liveRecords(excludedTopic?: string, excludedGroup?: string): Uint8Array[] {
    const records: Uint8Array[] = [];
    for (const [group, offsets] of this.groups) {
      if (group === excludedGroup) continue;
      const entries = [...offsets.values()].filter((entry) => entry.topic !== excludedTopic);
      if (entries.length > 0) records.push(encodeRecord(group, entries));
    }
    return records;
  }

  private replay(): void {
    const bytes = this.storage.readFile(this.file) ?? new Uint8Array(0);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let position = 0;
    while (bytes.length - position >= RECORD_HEAD_BYTES) {
      const length = view.getUint32(position);
      const end = position + RECORD_HEAD_BYTES + length;
      if (end > bytes.length) break;
      const payload = bytes.subarray(position + RECORD_HEAD_BYTES, end);
      if ((Bun.hash.crc32(payload) >>> 0) !== view.getUint32(position + 4)) break;
      const parsed = parseRecord(payload);
      if (parsed === null) break;
      this.apply(parsed.group, parsed.entries);
      position = end;
    }
    if (position < bytes.length) {
      this.logger?.warn({ file: this.file, bytesDropped: bytes.length - position }, "offset store: cut a torn or corrupt tail");
      this.storage.ftruncate(this.fd, position);
      this.storage.fdatasync(this.fd);
    }
    this.fileBytes = position;
  }

  private async compactIfLarge(): Promise<void> {
    if (this.fileBytes < COMPACT_BYTES_MIN) return;
    const records = this.liveRecords();
    const liveBytes = records.reduce((sum, record) => sum + record.length, 0);
    if (this.fileBytes < 4 * liveBytes) return;
    await this.replaceFile(concatenate(records), () => {});
  }

  /**
   * Replaces the file by `bytes` so that a crash leaves the old file or the new one, whole:
   * write a temp file, fdatasync it, rename it over the file, fsync the directory. A failure up
   * to the rename leaves the old file in use and throws. Once the rename is done the new file is
   * the store's (its fd takes over the appends) and `onReplaced` brings memory in line, before
   * the directory fsync — which may still throw: the change is then in effect but maybe not
   * durable, and the caller reports the error.
   */
  private async replaceFile(bytes: Uint8Array, onReplaced: () => void): Promise<void> {
    const temporary = temporaryOf(this.file);
    const fd = this.storage.open(temporary, { create: true });
    try {
      this.storage.ftruncate(fd, 0);
      const written = this.storage.pwrite(fd, bytes, 0);
      if (written !== bytes.length) throw new RunnelError("STORAGE_ERROR", `short write: ${written} of ${bytes.length} bytes to ${temporary}`);
      await this.storage.fdatasyncAsync(fd);
      this.storage.rename(temporary, this.file);
    } catch (error) {
      this.closeQuietly(fd);
      this.unlinkQuietly(temporary);
      throw error;
    }
    const replaced = this.fd;
    this.fd = fd;
    this.fileBytes = bytes.length;
    onReplaced();
    this.closeQuietly(replaced);
    this.storage.fsyncDirectory(path.dirname(this.file));
  }

  /** A leftover temp file is harmless (the next replacement truncates it): never mask the first error. */
  private unlinkQuietly(file: string): void {
    try {
      this.storage.unlink(file);
    } catch (error) {
      this.logger?.warn({ err: error, file }, "offset store: could not remove a temp file");
    }
  }

  private closeQuietly(fd: number): void {
    try {
      this.storage.close(fd);
    } catch (error) {
      this.logger?.warn({ err: error, fd }, "offset store: close failed");
    }
  }
}

function parseRecord(payload: Uint8Array): { group: string; entries: OffsetCommit[] } | null {
  let value: unknown;
  try {
    value = decode(payload);
  } catch {
    return null;
  }
  if (!Array.isArray(value) || typeof value[0] !== "string" || !Array.isArray(value[1])) return null;
  const entries: OffsetCommit[] = [];
  for (const row of value[1] as unknown[]) {
    if (!Array.isArray(row) || typeof row[0] !== "string" || typeof row[1] !== "number" || typeof row[2] !== "number" || typeof row[3] !== "string") return null;
    entries.push({ topic: row[0], partition: row[1], offset: row[2], metadata: row[3] });
  }
  return { group: value[0], entries };
}
