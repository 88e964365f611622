/**
 * @module native/libc
 * The only importer of `bun:ffi`. Thin wrappers over the libc calls the broker's speed rests
 * on: `pwrite`, `pread`, `fdatasync`, `posix_fadvise`, `fallocate` and `sendfile`, with errno
 * read through `__errno_location()`.
 *
 * Every wrapper: retries on EINTR, loops over short writes/reads where the call allows it,
 * and turns any other failure into a typed `SyscallError` that names the call and the errno
 * (ENOSPC/EDQUOT become STORAGE_FULL, the rest STORAGE_ERROR). No failure is swallowed.
 *
 * Where libc cannot be opened (not Linux, or RUNNEL_NATIVE=off for tests) the module says so
 * in `nativeStatus` and every call falls back to `node:fs`, which does the same syscalls
 * through libuv; `sendfile` and `fallocate` (node:fs has neither) are then `null`: the server
 * uses its copy path and the log does not preallocate.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import * as fs from "node:fs";
import { RunnelError, type ErrorCode } from "../errors.ts";

/** errno values on Linux (x86-64 and arm64 share them). */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EFAULT: 14,
  EINVAL: 22, ENFILE: 23, EMFILE: 24, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EPIPE: 32, ENOSYS: 38,
  EOPNOTSUPP: 95, ECONNRESET: 104, ENOTCONN: 107, EDQUOT: 122,
} as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(ERRNO).map(([name, value]) => [value, name]));

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** A failed system call: which call, which errno, and the stable code it maps to. */
export class SyscallError extends RunnelError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;

  constructor(syscall: string, errno: number, name: string, cause?: unknown) {
    super(codeForErrno(name), `${syscall} failed: ${name}${ERRNO_HINTS[name] ?? ""}`, { cause, details: { syscall, errno: name } });
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = name;
  }
}

/** What an operator can do about the errnos that have a remedy outside the broker. */
const ERRNO_HINTS: Record<string, string> = {
  EMFILE: " (too many open files: the broker keeps up to --open-segments-max segment fds plus one per connection; raise the hard limit, e.g. ulimit -Hn / LimitNOFILE, or use fewer partitions)",
  ENFILE: " (the system-wide open-file table is full: raise fs.file-max)",
  ENOSPC: " (the disk is full: free space or lower retention)",
  EDQUOT: " (the disk quota is exhausted)",
};

function codeForErrno(name: string): ErrorCode {
  return name === "ENOSPC" || name === "EDQUOT" ? "STORAGE_FULL" : "STORAGE_ERROR";
}

/** posix_fadvise advice values (Linux). */
export const FADVISE = { NORMAL: 0, RANDOM: 1, SEQUENTIAL: 2, WILLNEED: 3, DONTNEED: 4, NOREUSE: 5 } as const;
export type FadviseAdvice = (typeof FADVISE)[keyof typeof FADVISE];

/** fallocate mode: reserve blocks but leave the file size as it is (FALLOC_FL_KEEP_SIZE). */
export const FALLOC_FL_KEEP_SIZE = 1;

/** `sendfile` result when the socket buffer is full: wait for the socket to drain. */
export const SENDFILE_WOULD_BLOCK = -1;

export interface Libc {
  /** Writes all of `bytes` at `position`; returns the byte count. */
  pwrite(fd: number, bytes: Uint8Array, position: number): number;
  /** Reads up to `into.length` bytes at `position`; returns how many were read (less at EOF). */
  pread(fd: number, into: Uint8Array, position: number): number;
  /**
   * Reads up to `length` bytes at `position` into `into` from byte `intoOffset` on; returns how
   * many were read (less at EOF). Like `pread` without a subarray object per call (the outbound
   * queue's gathered writes read several ranges into one buffer per answer).
   */
  preadInto(fd: number, into: Uint8Array, intoOffset: number, length: number, position: number): number;
  fdatasync(fd: number): void;
  /** A hint; returns quietly where the platform has no fadvise. */
  fadvise(fd: number, offset: number, length: number, advice: FadviseAdvice): void;
  /**
   * Allocates blocks for [offset, offset + length) (`mode` FALLOC_FL_KEEP_SIZE: without
   * changing the file size). A file system without it fails with EOPNOTSUPP (a SyscallError,
   * like every other errno). `null` where the platform has no fallocate.
   */
  fallocate: ((fd: number, mode: number, offset: number, length: number) => void) | null;
  /**
   * Sends up to `count` bytes of `inFd` from `offset` to the socket `outFd`. Returns the bytes
   * sent, or SENDFILE_WOULD_BLOCK when the socket buffer is full. `null` where unsupported.
   */
  sendfile: ((outFd: number, inFd: number, offset: number, count: number) => number) | null;
  /**
   * Takes an exclusive advisory lock on the whole file without waiting (flock LOCK_EX|LOCK_NB).
   * Returns false when another process holds it. The kernel drops the lock when the fd is
   * closed or the process dies, kill -9 included, so a crashed broker never leaves it stale.
   * `null` where unsupported.
   */
  lockExclusive: ((fd: number) => boolean) | null;
  /**
   * Whether the peer of socket `fd` is gone (reset, or hung up), asked with a zero-timeout
   * poll() that consumes nothing. The server uses it where Bun may miss a close: a socket whose
   * reads were paused when the peer reset it. `null` where unsupported.
   */
  socketHungUp: ((fd: number) => boolean) | null;
}

export interface NativeStatus {
  native: boolean;
  /** Why the native path is off, when it is. */
  reason: string | null;
}

type Symbols = ReturnType<typeof openLibc>["symbols"];

function openLibc() {
  return dlopen("libc.so.6", {
    pwrite: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i64], returns: FFIType.i64_fast },
    pread: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i64], returns: FFIType.i64_fast },
    fdatasync: { args: [FFIType.i32], returns: FFIType.i32 },
    posix_fadvise: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.i32], returns: FFIType.i32 },
    fallocate: { args: [FFIType.i32, FFIType.i32, FFIType.i64, FFIType.i64], returns: FFIType.i32 },
    sendfile: { args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

function makeNative(symbols: Symbols): Libc {
  const errnoPointer = symbols.__errno_location();
  if (errnoPointer === null) throw new Error("__errno_location returned NULL");
  const errno = (): number => read.i32(errnoPointer, 0);
  const preadInto = (fd: number, into: Uint8Array, intoOffset: number, length: number, position: number): number => {
    if (intoOffset < 0 || length < 0 || intoOffset + length > into.length) throw new RangeError(`preadInto: [${intoOffset}, +${length}) is outside a ${into.length}-byte buffer`);
    let total = 0;
    while (total < length) {
      const n = Number(symbols.pread(fd, ptr(into, intoOffset + total), length - total, position + total));
      if (n < 0) {
        const code = errno();
        if (code === ERRNO.EINTR) continue;
        throw new SyscallError("pread", code, errnoName(code));
      }
      if (n === 0) break; // end of file
      total += n;
    }
    return total;
  };
  // sendfile's offset argument is an in/out off_t*: one reusable 8-byte cell, never per call,
  // written as two 32-bit halves (little-endian: x86-64 and arm64) so no BigInt is made per call.
  const offsetCell = new Uint32Array(2);
  // struct pollfd { int fd; short events; short revents; }: one reusable 8-byte cell.
  const pollCell = new Int32Array(2);
  const pollView = new DataView(pollCell.buffer);

  return {
    pwrite(fd, bytes, position) {
      let written = 0;
      while (written < bytes.length) {
        const chunk = written === 0 ? bytes : bytes.subarray(written);
        const n = Number(symbols.pwrite(fd, chunk, chunk.length, position + written));
        if (n < 0) {
          const code = errno();
          if (code === ERRNO.EINTR) continue;
          throw new SyscallError("pwrite", code, errnoName(code));
        }
        // A regular file takes a short write only at a limit (disk full, file size); the
        // next call reports why, so loop rather than guess.
        written += n;
      }
      return written;
    },
    pread(fd, into, position) {
      return preadInto(fd, into, 0, into.length, position);
    },
    preadInto,
    fdatasync(fd) {
      for (;;) {
        if (symbols.fdatasync(fd) === 0) return;
        const code = errno();
        if (code === ERRNO.EINTR) continue;
        throw new SyscallError("fdatasync", code, errnoName(code));
      }
    },
    fadvise(fd, offset, length, advice) {
      // posix_fadvise returns the error number instead of setting errno.
      const code = symbols.posix_fadvise(fd, offset, length, advice);
      if (code !== 0 && code !== ERRNO.ENOSYS) throw new SyscallError("posix_fadvise", code, errnoName(code));
    },
    fallocate(fd, mode, offset, length) {
      for (;;) {
        if (symbols.fallocate(fd, mode, offset, length) === 0) return;
        const code = errno();
        if (code === ERRNO.EINTR) continue;
        throw new SyscallError("fallocate", code, errnoName(code));
      }
    },
    sendfile(outFd, inFd, offset, count) {
      for (;;) {
        offsetCell[0] = offset % 0x1_0000_0000;
        offsetCell[1] = Math.floor(offset / 0x1_0000_0000);
        const n = Number(symbols.sendfile(outFd, inFd, offsetCell, count));
        if (n >= 0) return n;
        const code = errno();
        if (code === ERRNO.EINTR) continue;
        if (code === ERRNO.EAGAIN) return SENDFILE_WOULD_BLOCK;
        throw new SyscallError("sendfile", code, errnoName(code));
      }
    },
    socketHungUp(fd) {
      pollCell[0] = fd;
      pollView.setInt16(4, POLLRDHUP, true);
      pollView.setInt16(6, 0, true);
      for (;;) {
        const ready = symbols.poll(pollCell, 1, 0);
        if (ready >= 0) return ready > 0 && (pollView.getInt16(6, true) & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) !== 0;
        const code = errno();
        if (code === ERRNO.EINTR) continue;
        throw new SyscallError("poll", code, errnoName(code));
      }
    },
    lockExclusive(fd) {
      for (;;) {
        if (symbols.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
        const code = errno();
        if (code === ERRNO.EINTR) continue;
        if (code === ERRNO.EAGAIN) return false; // EWOULDBLOCK: held by another process
        throw new SyscallError("flock", code, errnoName(code));
      }
    },
  };
}

const POLLERR = 0x008;
const POLLHUP = 0x010;
const POLLNVAL = 0x020;
const POLLRDHUP = 0x2000;
const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * node:fs errors carry `code: "ENOSPC"` and a negative `errno`: the same SyscallError as the
 * native path. Anything else is returned as it is.
 */
export function syscallErrorFromFs(syscall: string, error: unknown): unknown {
  const fsError = error as NodeJS.ErrnoException;
  return typeof fsError?.code === "string" ? new SyscallError(syscall, Math.abs(fsError.errno ?? 0), fsError.code, error) : error;
}

function rethrowFs(syscall: string, error: unknown): never {
  throw syscallErrorFromFs(syscall, error);
}

function makeFallback(): Libc {
  return {
    pwrite(fd, bytes, position) {
      let written = 0;
      try {
        while (written < bytes.length) {
          written += fs.writeSync(fd, bytes, written, bytes.length - written, position + written);
        }
      } catch (error) {
        rethrowFs("pwrite", error);
      }
      return written;
    },
    pread(fd, into, position) {
      let total = 0;
      try {
        while (total < into.length) {
          const n = fs.readSync(fd, into, total, into.length - total, position + total);
          if (n === 0) break;
          total += n;
        }
      } catch (error) {
        rethrowFs("pread", error);
      }
      return total;
    },
    preadInto(fd, into, intoOffset, length, position) {
      let total = 0;
      try {
        while (total < length) {
          const n = fs.readSync(fd, into, intoOffset + total, length - total, position + total);
          if (n === 0) break;
          total += n;
        }
      } catch (error) {
        rethrowFs("pread", error);
      }
      return total;
    },
    fdatasync(fd) {
      try {
        fs.fdatasyncSync(fd);
      } catch (error) {
        rethrowFs("fdatasync", error);
      }
    },
    fadvise() {
      // No portable equivalent: the page cache keeps its default policy.
    },
    fallocate: null,
    sendfile: null,
    lockExclusive: null,
    socketHungUp: null,
  };
}

function load(): { libc: Libc; status: NativeStatus } {
  if (process.env.RUNNEL_NATIVE === "off") {
    return { libc: makeFallback(), status: { native: false, reason: "RUNNEL_NATIVE=off" } };
  }
  if (process.platform !== "linux") {
    return { libc: makeFallback(), status: { native: false, reason: `platform ${process.platform} is not Linux` } };
  }
  try {
    return { libc: makeNative(openLibc().symbols), status: { native: true, reason: null } };
  } catch (error) {
    const reason = `libc.so.6 could not be loaded: ${error instanceof Error ? error.message : String(error)}`;
    return { libc: makeFallback(), status: { native: false, reason } };
  }
}

const loaded = load();

/** The libc in use: native through bun:ffi, or the node:fs fallback. */
export const libc: Libc = loaded.libc;
/** Whether the native path is on, and why not when it is off. */
export const nativeStatus: NativeStatus = loaded.status;
/** The node:fs implementation, exported so benchmarks and tests can put both side by side. */
export const fallbackLibc: Libc = makeFallback();
