/**
 * @module test/log/helpers
 * Shared helpers for the storage engine's tests: temp data dirs, deterministic batches,
 * a recording logger and a fault-injecting Storage wrapper (fills the disk, fails fsync or
 * fallocate).
 */
import { afterEach } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LogSink, Partition } from "../../src/log/api.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { SyscallError, ERRNO } from "../../src/native/libc.ts";
import { encodeBatch, decodeRecords, verifyBatch } from "../../src/format/record-batch.ts";
export { prng } from "../support/prng.ts";

export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `runnel-${label}-`));
}

export function removeDir(directory: string): void {
  fs.rmSync(directory, { recursive: true, force: true });
}

/**
 * A temp-dir maker for one test file: call it at the file's top level; every directory it
 * makes is removed after each test.
 */
export function tempDirsPerTest(): (label: string) => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) removeDir(dir);
  });
  return (label) => {
    const dir = tempDir(label);
    dirs.push(dir);
    return dir;
  };
}


/** A batch of `count` records whose values name `tag` and their index; timestamps from `timestampMs`. */
export function makeBatch(tag: string, count: number, timestampMs: number, valueBytes = 16): Uint8Array {
  const records = [];
  for (let i = 0; i < count; i++) {
    const text = `${tag}:${i}:`;
    records.push({ key: `k${i}`, value: text.padEnd(Math.max(valueBytes, text.length), "x"), timestamp: timestampMs + i });
  }
  return encodeBatch(records, { nowMs: timestampMs });
}

/** Values of every record in concatenated batches (each batch verified on the way). */
export function valuesOf(bytes: Uint8Array): string[] {
  const values: string[] = [];
  const decoder = new TextDecoder();
  let position = 0;
  while (position < bytes.length) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + position);
    const total = 12 + view.getInt32(8);
    const batch = bytes.subarray(position, position + total);
    const header = verifyBatch(batch);
    for (const record of decodeRecords(batch, header)) values.push(decoder.decode(record.value!));
    position += total;
  }
  return values;
}

/** Every value of `partition` from its log start, read `maxBytes` at a time through read(). */
export function readAllValues(partition: Partition, maxBytes = 1 << 20): string[] {
  const values: string[] = [];
  let offset = partition.logStartOffset;
  while (offset < partition.nextOffset) {
    const slice = partition.read(offset, maxBytes)!;
    const got = valuesOf(partition.readBytes(slice));
    slice.release();
    values.push(...got.slice(offset - slice.firstOffset));
    offset = slice.firstOffset + got.length;
  }
  return values;
}

export interface RecordingLogger extends LogSink {
  entries: Array<{ level: string; object: object; message: string | undefined }>;
}

export function recordingLogger(): RecordingLogger {
  const entries: RecordingLogger["entries"] = [];
  return {
    entries,
    info: (object, message) => entries.push({ level: "info", object, message }),
    warn: (object, message) => entries.push({ level: "warn", object, message }),
    error: (object, message) => entries.push({ level: "error", object, message }),
  };
}

/** Storage that behaves like a disk with `bytesFree` bytes left and can be told to fail fsyncs. */
export interface FaultyStorage extends Storage {
  /** Bytes pwrite may still write before ENOSPC; Infinity for no bound. */
  bytesFree: number;
  /** Next fdatasync (sync or async) fails with EIO. */
  failNextSync: boolean;
  /** Every pread fails with EIO. */
  failReads: boolean;
  /** When set, every preallocate (fallocate) fails with this errno (e.g. "ENOSPC", "EOPNOTSUPP"). */
  preallocateError: keyof typeof ERRNO | null;
  /** preallocate calls so far, failed ones included. */
  preallocateCalls: number;
}

export function faultyStorage(inner: Storage = nativeStorage): FaultyStorage {
  const storage: FaultyStorage = {
    ...inner,
    bytesFree: Number.POSITIVE_INFINITY,
    failNextSync: false,
    failReads: false,
    preallocateError: null,
    preallocateCalls: 0,
    preallocate(fd, offset, length) {
      storage.preallocateCalls++;
      const errno = storage.preallocateError;
      if (errno !== null) throw new SyscallError("fallocate", ERRNO[errno], errno);
      return inner.preallocate(fd, offset, length);
    },
    pwrite(fd, bytes, position) {
      if (bytes.length > storage.bytesFree) {
        // Like a real full disk: the part that fits lands, then ENOSPC.
        const fits = Math.max(0, Math.floor(storage.bytesFree));
        if (fits > 0) inner.pwrite(fd, bytes.subarray(0, fits), position);
        storage.bytesFree -= fits;
        throw new SyscallError("pwrite", ERRNO.ENOSPC, "ENOSPC");
      }
      storage.bytesFree -= bytes.length;
      return inner.pwrite(fd, bytes, position);
    },
    pread(fd, into, position) {
      if (storage.failReads) throw new SyscallError("pread", ERRNO.EIO, "EIO");
      return inner.pread(fd, into, position);
    },
    fdatasync(fd) {
      if (storage.failNextSync) {
        storage.failNextSync = false;
        throw new SyscallError("fdatasync", ERRNO.EIO, "EIO");
      }
      inner.fdatasync(fd);
    },
    fdatasyncAsync(fd) {
      if (storage.failNextSync) {
        storage.failNextSync = false;
        return Promise.reject(new SyscallError("fdatasync", ERRNO.EIO, "EIO"));
      }
      return inner.fdatasyncAsync(fd);
    },
  };
  return storage;
}

/** Storage that counts fdatasync calls (sync and async) and can hold async ones until released. */
export function countingStorage(inner: Storage = nativeStorage) {
  const state = { syncs: 0, asyncStarted: 0, gate: null as Promise<void> | null };
  const storage: Storage = {
    ...inner,
    fdatasync(fd) {
      state.syncs++;
      inner.fdatasync(fd);
    },
    async fdatasyncAsync(fd) {
      state.asyncStarted++;
      if (state.gate) await state.gate;
      await inner.fdatasyncAsync(fd);
    },
  };
  return { storage, state };
}

/** Open fds of this process (Linux), for the fd cache bound test. */
export function openFdCount(): number {
  return fs.readdirSync("/proc/self/fd").length;
}

export function segmentFiles(directory: string, suffix = ".log"): string[] {
  return fs.readdirSync(directory).filter((name) => name.endsWith(suffix)).sort();
}
