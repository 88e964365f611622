/**
 * @module log/storage
 * The file seam: every file operation the log makes goes through a `Storage`. Production
 * uses `nativeStorage` (native/libc.ts pwrite/pread/fdatasync/fadvise/fallocate, node:fs for
 * the rest);
 * tests wrap it to tear writes, fill the disk or fail an fsync without mocks.
 */
import * as fs from "node:fs";
import * as fsAsync from "node:fs/promises";
import { FADVISE, FALLOC_FL_KEEP_SIZE, libc, type FadviseAdvice, syscallErrorFromFs } from "../native/libc.ts";

export interface Storage {
  /** Opens (creating when `create`) for read and write; returns the fd. */
  open(path: string, options: { create: boolean }): number;
  close(fd: number): void;
  pwrite(fd: number, bytes: Uint8Array, position: number): number;
  pread(fd: number, into: Uint8Array, position: number): number;
  fdatasync(fd: number): void;
  /** Async fdatasync on a worker thread, so a group commit never blocks the event loop. */
  fdatasyncAsync(fd: number): Promise<void>;
  fadvise(fd: number, offset: number, length: number, advice: FadviseAdvice): void;
  ftruncate(fd: number, length: number): void;
  /**
   * Reserves disk blocks for [offset, offset + length) without changing the file's size
   * (fallocate FALLOC_FL_KEEP_SIZE). False where the platform has no fallocate; a file system
   * without it throws a SyscallError (EOPNOTSUPP), a full one STORAGE_FULL (ENOSPC/EDQUOT).
   * `ftruncate(fd, size)` gives back what lies beyond the end of the file.
   */
  preallocate(fd: number, offset: number, length: number): boolean;
  sizeOf(fd: number): number;
  /** Bytes of disk the file occupies (st_blocks x 512): its data plus any blocks reserved past its end. */
  allocatedBytesOf(fd: number): number;
  /** Size of the file at `path`, or null when it does not exist. */
  fileSize(path: string): number | null;
  /** Writes a small file atomically: temp file, fsync, rename, fsync of the directory. */
  /** Temp file (`mode`, default 0644), fdatasync, rename over `path`, fsync the directory. */
  writeFileAtomic(path: string, bytes: Uint8Array | string, options?: { mode?: number }): void;
  readFile(path: string): Uint8Array | null;
  exists(path: string): boolean;
  unlink(path: string): void;
  mkdirp(path: string): void;
  readdir(path: string): string[];
  removeTree(path: string): void;
  rename(from: string, to: string): void;
  fsyncDirectory(path: string): void;
  // Async forms, run on the thread pool so that creating and deleting topics never holds the
  // event loop (log/topic-staging.ts). Same errors as the sync forms.
  mkdirAsync(path: string): Promise<void>;
  /** Creates or replaces the file with `bytes`; fdatasyncs it before resolving when `sync`. */
  writeFileAsync(path: string, bytes: Uint8Array | string, options: { sync: boolean }): Promise<void>;
  renameAsync(from: string, to: string): Promise<void>;
  fsyncDirectoryAsync(path: string): Promise<void>;
  removeTreeAsync(path: string): Promise<void>;
  /** Opens the file at `path`, fdatasyncs and closes it, all on the thread pool; false when it does not exist. */
  fdatasyncPathAsync(path: string): Promise<boolean>;
}

async function fsCallAsync<T>(syscall: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw syscallErrorFromFs(syscall, error);
  }
}

function fsCall<T>(syscall: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw syscallErrorFromFs(syscall, error);
  }
}

export const nativeStorage: Storage = {
  open: (path, { create }) =>
    fsCall("open", () => fs.openSync(path, create ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR, 0o644)),
  close: (fd) => fsCall("close", () => fs.closeSync(fd)),
  pwrite: (fd, bytes, position) => libc.pwrite(fd, bytes, position),
  pread: (fd, into, position) => libc.pread(fd, into, position),
  fdatasync: (fd) => libc.fdatasync(fd),
  fdatasyncAsync: (fd) =>
    new Promise((resolve, reject) =>
      fs.fdatasync(fd, (error) => (error ? reject(syscallErrorFromFs("fdatasync", error)) : resolve())),
    ),
  fadvise: (fd, offset, length, advice) => libc.fadvise(fd, offset, length, advice),
  ftruncate: (fd, length) => fsCall("ftruncate", () => fs.ftruncateSync(fd, length)),
  preallocate: (fd, offset, length) => {
    if (libc.fallocate === null) return false;
    libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length);
    return true;
  },
  sizeOf: (fd) => fsCall("fstat", () => fs.fstatSync(fd).size),
  allocatedBytesOf: (fd) => fsCall("fstat", () => fs.fstatSync(fd).blocks * 512),
  fileSize: (path) => {
    const stats = fsCall("stat", () => fs.statSync(path, { throwIfNoEntry: false }));
    return stats === undefined ? null : stats.size;
  },
  writeFileAtomic(path, bytes, options) {
    const temporary = `${path}.tmp`;
    fsCall("write", () => {
      const fd = fs.openSync(temporary, "w", options?.mode ?? 0o644);
      try {
        fs.writeFileSync(fd, bytes);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temporary, path);
    });
    nativeStorage.fsyncDirectory(pathDirectory(path));
  },
  readFile: (path) => {
    try {
      return fs.readFileSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw syscallErrorFromFs("read", error);
    }
  },
  exists: (path) => fs.existsSync(path),
  unlink: (path) => fsCall("unlink", () => fs.rmSync(path, { force: true })),
  mkdirp: (path) => fsCall("mkdir", () => fs.mkdirSync(path, { recursive: true })),
  readdir: (path) => fsCall("readdir", () => fs.readdirSync(path)),
  removeTree: (path) => fsCall("rm", () => fs.rmSync(path, { recursive: true, force: true })),
  rename: (from, to) => fsCall("rename", () => fs.renameSync(from, to)),
  fsyncDirectory(path) {
    fsCall("fsync", () => {
      const fd = fs.openSync(path, "r");
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  },
  mkdirAsync: (path) => fsCallAsync("mkdir", async () => void (await fsAsync.mkdir(path, { recursive: true }))),
  writeFileAsync: (path, bytes, { sync }) =>
    fsCallAsync("write", async () => {
      const file = await fsAsync.open(path, "w", 0o644);
      try {
        await file.writeFile(bytes);
        if (sync) await file.datasync();
      } finally {
        await file.close();
      }
    }),
  renameAsync: (from, to) => fsCallAsync("rename", () => fsAsync.rename(from, to)),
  fsyncDirectoryAsync: (path) =>
    fsCallAsync("fsync", async () => {
      const directory = await fsAsync.open(path, "r");
      try {
        await directory.sync();
      } finally {
        await directory.close();
      }
    }),
  removeTreeAsync: (path) => fsCallAsync("rm", () => fsAsync.rm(path, { recursive: true, force: true })),
  fdatasyncPathAsync: (path) =>
    fsCallAsync("fdatasync", async () => {
      let file: fsAsync.FileHandle;
      try {
        file = await fsAsync.open(path, "r+");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
        throw error;
      }
      try {
        await file.datasync();
      } finally {
        await file.close();
      }
      return true;
    }),
};


function pathDirectory(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? (slash === 0 ? "/" : ".") : path.slice(0, slash);
}

export { FADVISE };
