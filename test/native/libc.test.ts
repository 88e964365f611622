import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FALLOC_FL_KEEP_SIZE, fallbackLibc, libc, nativeStatus, SyscallError } from "../../src/native/libc.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-libc-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each([
  ["native", libc],
  ["fallback", fallbackLibc],
])("libc (%s)", (_name, impl) => {
  test("pwrite then pread returns the same bytes at the same position", () => {
    const fd = fs.openSync(path.join(dir, `${_name}.bin`), "w+");
    const bytes = new Uint8Array(10_000).map((_, i) => i % 251);
    expect(impl.pwrite(fd, bytes, 4096)).toBe(bytes.length);
    const into = new Uint8Array(bytes.length);
    expect(impl.pread(fd, into, 4096)).toBe(bytes.length);
    expect(into).toEqual(bytes);
    expect(impl.pread(fd, new Uint8Array(100), 4096 + 9_990)).toBe(10);
    impl.fdatasync(fd);
    impl.fadvise(fd, 0, 0, 2);
    fs.closeSync(fd);
  });

  test("preadInto reads a file range into the middle of a buffer and leaves the bytes around it alone", () => {
    const fd = fs.openSync(path.join(dir, `${_name}-into.bin`), "w+");
    const bytes = new Uint8Array(5_000).map((_, i) => (i * 7) % 253);
    impl.pwrite(fd, bytes, 0);
    const into = new Uint8Array(3_000).fill(0xee);
    expect(impl.preadInto(fd, into, 1_000, 1_500, 2_000)).toBe(1_500);
    expect(into.subarray(1_000, 2_500)).toEqual(bytes.subarray(2_000, 3_500));
    expect(into.subarray(0, 1_000).every((byte) => byte === 0xee)).toBe(true);
    expect(into.subarray(2_500).every((byte) => byte === 0xee)).toBe(true);
    // At the end of the file it returns what was there.
    expect(impl.preadInto(fd, into, 0, 1_000, 4_900)).toBe(100);
    expect(() => impl.preadInto(987_654, into, 0, 10, 0)).toThrow(SyscallError);
    fs.closeSync(fd);
  });

  test("a bad fd is a typed error naming the call and errno, never swallowed", () => {
    let caught: unknown;
    try {
      impl.pwrite(987_654, new Uint8Array(4), 0);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).syscall).toBe("pwrite");
    expect((caught as SyscallError).errnoName).toBe("EBADF");
    expect((caught as SyscallError).code).toBe("STORAGE_ERROR");
    expect(() => impl.fdatasync(987_654)).toThrow(SyscallError);
  });
});

describe.skipIf(libc.fallocate === null)("libc fallocate (native)", () => {
  test("KEEP_SIZE reserves blocks past the end without changing the size, and ftruncate to the size gives them back", () => {
    const fd = fs.openSync(path.join(dir, "fallocate.bin"), "w+");
    try {
      libc.pwrite(fd, new Uint8Array(1000).fill(7), 0);
      try {
        libc.fallocate!(fd, FALLOC_FL_KEEP_SIZE, 1000, 2 * 1024 * 1024);
      } catch (error) {
        // A temp dir on a file system without fallocate: the typed error is all there is to check.
        expect((error as SyscallError).errnoName).toBe("EOPNOTSUPP");
        return;
      }
      const reserved = fs.fstatSync(fd);
      expect(reserved.size).toBe(1000);
      expect(reserved.blocks * 512).toBeGreaterThanOrEqual(2 * 1024 * 1024);
      fs.ftruncateSync(fd, 1000);
      const released = fs.fstatSync(fd);
      expect(released.size).toBe(1000);
      expect(released.blocks * 512).toBeLessThanOrEqual(2 * released.blksize);
    } finally {
      fs.closeSync(fd);
    }
  });

  test("a bad fd is a SyscallError naming fallocate and EBADF", () => {
    let caught: unknown;
    try {
      libc.fallocate!(987_654, FALLOC_FL_KEEP_SIZE, 0, 4096);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).syscall).toBe("fallocate");
    expect((caught as SyscallError).errnoName).toBe("EBADF");
  });
});

test("the node:fs fallback has no fallocate, so the log skips preallocation", () => {
  expect(fallbackLibc.fallocate).toBeNull();
});

test("the native path is on for Linux", () => {
  if (process.platform === "linux") {
    expect(nativeStatus).toEqual({ native: true, reason: null });
    expect(libc.sendfile).not.toBeNull();
    expect(libc.fallocate).not.toBeNull();
  }
  expect(fallbackLibc.sendfile).toBeNull();
});
