import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fallbackLibc, libc, nativeStatus, SyscallError } from "../../src/native/libc.ts";

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

test("the native path is on for Linux", () => {
  if (process.platform === "linux") {
    expect(nativeStatus).toEqual({ native: true, reason: null });
    expect(libc.sendfile).not.toBeNull();
  }
  expect(fallbackLibc.sendfile).toBeNull();
});
