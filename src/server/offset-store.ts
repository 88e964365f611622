/**
 * @module server/offset-store
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
 * record per group — with write-temp, fsync, rename.
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

type Pending = { bytes: Uint8Array; group: string; entries: OffsetCommit[]; resolve: () => void; reject: (error: unknown) => void };

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

export class OffsetStore {
  private readonly groups = new Map<string, Map<string, OffsetCommit>>();
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
    const fd = storage.open(file, { create: true });
    const store = new OffsetStore(file, fd, storage, options.entriesMax, options.logger);
    store.replay();
    return store;
  }

  get size(): number {
    return this.entryCount;
  }

  fetch(group: string, topic: string, partition: number): CommittedOffset | null {
    const entry = this.groups.get(group)?.get(entryKey(topic, partition));
    return entry === undefined ? null : { offset: entry.offset, metadata: entry.metadata };
  }

  /** Every committed offset of a group, in no particular order. */
  fetchAll(group: string): OffsetCommit[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }

  /** Resolves once the commit is on disk (fdatasync returned). Throws LIMIT_EXCEEDED, STORAGE_*. */
  commit(group: string, entries: OffsetCommit[]): Promise<void> {
    if (this.closed) return Promise.reject(new RunnelError("SHUTTING_DOWN", "the offset store is closed"));
    const known = this.groups.get(group);
    const added = entries.filter((entry) => known?.get(entryKey(entry.topic, entry.partition)) === undefined).length;
    if (this.entryCount + added > this.entriesMax) {
      return Promise.reject(new RunnelError("LIMIT_EXCEEDED", `the broker holds at most ${this.entriesMax} committed offsets`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes: encodeRecord(group, entries), group, entries, resolve, reject });
      if (!this.writing) this.writer = this.writeQueued();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writer;
    this.storage.close(this.fd);
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.writeBatch(batch);
        for (const pending of batch) this.apply(pending.group, pending.entries);
        for (const pending of batch) pending.resolve();
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
      try {
        this.compactIfLarge();
      } catch (error) {
        // The old file is intact (the snapshot is written aside, then renamed): keep appending.
        this.logger?.warn({ err: error }, "offset store: compaction failed");
      }
    }
    this.writing = false;
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const total = batch.reduce((sum, pending) => sum + pending.bytes.length, 0);
    const bytes = new Uint8Array(total);
    let position = 0;
    for (const pending of batch) {
      bytes.set(pending.bytes, position);
      position += pending.bytes.length;
    }
    this.storage.pwrite(this.fd, bytes, this.fileBytes);
    this.fileBytes += total;
    await this.storage.fdatasyncAsync(this.fd);
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

  private compactIfLarge(): void {
    if (this.fileBytes < COMPACT_BYTES_MIN) return;
    const records = [...this.groups].map(([group, offsets]) => encodeRecord(group, offsets.values()));
    const liveBytes = records.reduce((sum, record) => sum + record.length, 0);
    if (this.fileBytes < 4 * liveBytes) return;
    const snapshot = new Uint8Array(liveBytes);
    let position = 0;
    for (const record of records) {
      snapshot.set(record, position);
      position += record.length;
    }
    this.storage.writeFileAtomic(this.file, snapshot);
    this.storage.close(this.fd);
    this.fd = this.storage.open(this.file, { create: true });
    this.fileBytes = liveBytes;
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
