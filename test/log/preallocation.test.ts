/**
 * Segment preallocation (log/preallocation.ts): blocks reserved past the active segment's end
 * with fallocate KEEP_SIZE, given back at roll, close and reopen after a crash; never a
 * reason for an append to fail. Reservations are read from st_blocks of the real files.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { openLogManager } from "../../src/log/log-manager.ts";
import type { LogManager } from "../../src/log/api.ts";
import { PREALLOCATE_STEP_MIN_BYTES, reservationEnd } from "../../src/log/preallocation.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { ERRNO, FALLOC_FL_KEEP_SIZE, libc, SyscallError } from "../../src/native/libc.ts";
import { RunnelError } from "../../src/errors.ts";
import { MiB } from "../../src/limits.ts";
import { faultyStorage, makeBatch, readAllValues, recordingLogger, removeDir, tempDir, tempDirsPerTest } from "./helpers.ts";
import { mountTmpfs, unmountTmpfs } from "../support/tmpfs.ts";

const newTempDir = tempDirsPerTest();
const CHILD = path.join(import.meta.dir, "fixtures", "preallocate-and-wait.ts");
/** ~64 KiB: 4 records of 16 KiB. */
const batchAt = (i: number) => makeBatch(`b${i}`, 4, i, 16 * 1024);

/** Whether the temp dir's file system honours fallocate KEEP_SIZE (detected, not assumed). */
function detectKeepSizeSupport(): boolean {
  if (libc.fallocate === null) return false;
  const directory = tempDir("fallocate-probe");
  const fd = fs.openSync(path.join(directory, "probe"), "w+");
  try {
    libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MiB);
    const stats = fs.fstatSync(fd);
    return stats.size === 0 && stats.blocks * 512 >= MiB;
  } catch (error) {
    if (error instanceof SyscallError) return false;
    throw error;
  } finally {
    fs.closeSync(fd);
    removeDir(directory);
  }
}

const supported = detectKeepSizeSupport();
if (!supported) console.log("preallocation: the temp dir's file system has no fallocate KEEP_SIZE; reservation assertions are skipped");

function logPath(dataDir: string, topic: string, base = 0, partition = 0): string {
  return `${dataDir}/topics/${topic}/${partition}/${String(base).padStart(20, "0")}.log`;
}

/** Disk bytes reserved past the file's end (0 when none): st_blocks x 512 beyond the size rounded up to a block. */
function reservedBytes(file: string): number {
  const stats = fs.statSync(file);
  const block = stats.blksize;
  return Math.max(0, stats.blocks * 512 - Math.ceil(stats.size / block) * block);
}

/** Reserved bytes are gone, allowing one file-system block (extent-tree metadata counts in st_blocks). */
function expectReleased(file: string): void {
  expect(reservedBytes(file)).toBeLessThanOrEqual(fs.statSync(file).blksize);
}

describe("reservationEnd (the sizing rule)", () => {
  const limit = 1024 * MiB;
  const max = 16 * MiB;

  test("a segment holding less than the minimum step reserves nothing", () => {
    expect(reservationEnd(0, 64 * 1024, 0, limit, max)).toBe(0);
    expect(reservationEnd(PREALLOCATE_STEP_MIN_BYTES - 1, PREALLOCATE_STEP_MIN_BYTES + 10, 0, limit, max)).toBe(0);
  });

  test("each step reserves as much as the segment holds, between the minimum and the maximum", () => {
    expect(reservationEnd(MiB, MiB + 100, 0, limit, max)).toBe(2 * MiB);
    expect(reservationEnd(2 * MiB, 2 * MiB + 100, 2 * MiB, limit, max)).toBe(4 * MiB);
    expect(reservationEnd(5 * MiB, 8 * MiB + 1, 8 * MiB, limit, max)).toBe(13 * MiB);
    expect(reservationEnd(100 * MiB, 100 * MiB + 100, 100 * MiB, limit, max)).toBe(116 * MiB);
  });

  test("nothing is reserved while the write stays inside the reservation", () => {
    expect(reservationEnd(3 * MiB, 4 * MiB, 4 * MiB, limit, max)).toBe(4 * MiB);
  });

  test("a step never passes segment.bytes, yet always covers the write", () => {
    expect(reservationEnd(10 * MiB, 10 * MiB + 100, 10 * MiB, 12 * MiB, max)).toBe(12 * MiB);
    expect(reservationEnd(12 * MiB, 13 * MiB, 12 * MiB, 12 * MiB, max)).toBe(13 * MiB);
    expect(reservationEnd(2 * MiB, 40 * MiB, 2 * MiB, limit, max)).toBe(40 * MiB);
  });

  test("a maximum of 0 turns it off; a maximum below 1 MiB is also the minimum", () => {
    expect(reservationEnd(50 * MiB, 51 * MiB, 0, limit, 0)).toBe(0);
    expect(reservationEnd(256 * 1024, 256 * 1024 + 1, 0, limit, 256 * 1024)).toBe(512 * 1024);
  });
});

describe("Segment preallocation", () => {
  test.skipIf(!supported)("an active segment holding over 1 MiB has blocks reserved past its end, and its size is unchanged", async () => {
    const dataDir = newTempDir("prealloc");
    const manager = await openLogManager({ dataDir });
    manager.createTopic("grow", { partitions: 1 });
    const partition = manager.partition("grow", 0);
    for (let i = 0; i < 40; i++) partition.append(batchAt(i));
    const file = logPath(dataDir, "grow");
    const sizeBytes = partition.info().sizeBytes;
    expect(fs.statSync(file).size).toBe(sizeBytes);
    expect(sizeBytes).toBeGreaterThan(2 * MiB);
    // Steps at ~1 MiB and ~2 MiB (each as big as the segment then): the reservation ends near 4 MiB.
    expect(reservedBytes(file)).toBeGreaterThan(MiB);
    expect(fs.statSync(file).blocks * 512).toBeLessThanOrEqual(4.1 * MiB);
    expect(readAllValues(partition)).toHaveLength(160);
    await manager.close();
    expectReleased(file);
    expect(fs.statSync(file).size).toBe(sizeBytes);
  });

  test.skipIf(!supported)("a roll gives back the rolled segment's reservation; the new one starts reserving at 1 MiB", async () => {
    const dataDir = newTempDir("prealloc-roll");
    const manager = await openLogManager({ dataDir, topicDefaults: { "segment.bytes": 3 * MiB } });
    manager.createTopic("roll", { partitions: 1 });
    const partition = manager.partition("roll", 0);
    let i = 0;
    while (partition.info().segmentCount < 2) partition.append(batchAt(i++));
    const first = logPath(dataDir, "roll", 0);
    expectReleased(first);
    const second = logPath(dataDir, "roll", partition.nextOffset - 4);
    expect(reservedBytes(second)).toBeLessThanOrEqual(fs.statSync(second).blksize);
    while (partition.info().sizeBytes < fs.statSync(first).size + 2.5 * MiB) partition.append(batchAt(i++));
    expect(reservedBytes(second)).toBeGreaterThan(0);
    // The step at ~2 MiB would reach ~4 MiB, but never passes segment.bytes (3 MiB).
    expect(fs.statSync(second).blocks * 512).toBeLessThanOrEqual(3 * MiB + fs.statSync(second).blksize);
    await manager.close();
    expectReleased(second);
  });

  test("quiet partitions reserve nothing: 50 partitions of 100 KiB each", async () => {
    const dataDir = newTempDir("prealloc-quiet");
    const storage = faultyStorage();
    const manager = await openLogManager({ dataDir, storage });
    manager.createTopic("quiet", { partitions: 50 });
    for (let p = 0; p < 50; p++) {
      for (let i = 0; i < 2; i++) manager.partition("quiet", p).append(batchAt(i));
    }
    expect(storage.preallocateCalls).toBe(0);
    for (let p = 0; p < 50; p++) expectReleased(logPath(dataDir, "quiet", 0, p));
    await manager.close();
  });

  test("preallocateBytesMax 0 turns preallocation off", async () => {
    const dataDir = newTempDir("prealloc-off");
    const storage = faultyStorage();
    const manager = await openLogManager({ dataDir, storage, preallocateBytesMax: 0 });
    manager.createTopic("off", { partitions: 1 });
    for (let i = 0; i < 40; i++) manager.partition("off", 0).append(batchAt(i));
    expect(storage.preallocateCalls).toBe(0);
    expectReleased(logPath(dataDir, "off"));
    await manager.close();
    await expect(openLogManager({ dataDir: newTempDir("bad"), preallocateBytesMax: -1 })).rejects.toThrow(RangeError);
  });

  test("fallocate ENOSPC never fails an append: the segment goes on without preallocation, the next one tries again", async () => {
    const dataDir = newTempDir("prealloc-enospc");
    const storage = faultyStorage();
    const logger = recordingLogger();
    const manager = await openLogManager({ dataDir, storage, logger, topicDefaults: { "segment.bytes": 3 * MiB } });
    manager.createTopic("full", { partitions: 1 });
    const partition = manager.partition("full", 0);
    storage.preallocateError = "ENOSPC";
    let i = 0;
    while (partition.info().sizeBytes < 2.5 * MiB) partition.append(batchAt(i++));
    // One failed attempt at 1 MiB, then none for the rest of the segment.
    expect(storage.preallocateCalls).toBe(1);
    expectReleased(logPath(dataDir, "full"));
    expect(logger.entries.filter((entry) => entry.level !== "info")).toEqual([]);
    storage.preallocateError = null;
    while (partition.info().segmentCount < 2 || partition.info().sizeBytes < 3 * MiB + 1.5 * MiB) partition.append(batchAt(i++));
    expect(storage.preallocateCalls).toBe(2);
    expect(readAllValues(partition)).toHaveLength(i * 4);
    await manager.close();
  });

  test("a file system without fallocate turns preallocation off for the log manager, logged once", async () => {
    const storage = faultyStorage();
    storage.preallocateError = "EOPNOTSUPP";
    const logger = recordingLogger();
    const manager = await openLogManager({ dataDir: newTempDir("prealloc-unsupported"), storage, logger });
    manager.createTopic("a", { partitions: 2 });
    for (let p = 0; p < 2; p++) {
      for (let i = 0; i < 40; i++) manager.partition("a", p).append(batchAt(i));
    }
    expect(storage.preallocateCalls).toBe(1);
    const notes = logger.entries.filter((entry) => entry.message?.includes("preallocation is off"));
    expect(notes).toHaveLength(1);
    expect(notes[0]!.level).toBe("info");
    expect(readAllValues(manager.partition("a", 1))).toHaveLength(160);
    await manager.close();
  });

  test("any other fallocate error is warned and the append still succeeds", async () => {
    const storage = faultyStorage();
    storage.preallocateError = "EIO";
    const logger = recordingLogger();
    const manager = await openLogManager({ dataDir: newTempDir("prealloc-eio"), storage, logger });
    manager.createTopic("a", { partitions: 1 });
    for (let i = 0; i < 40; i++) manager.partition("a", 0).append(batchAt(i));
    // Not failed: reads and further appends work.
    expect(readAllValues(manager.partition("a", 0))).toHaveLength(160);
    expect(logger.entries.filter((entry) => entry.level === "warn" && entry.message?.includes("preallocation failed"))).toHaveLength(1);
    await manager.close();
  });

  test.skipIf(!supported)("a failed release is warned and never fails the roll", async () => {
    const dataDir = newTempDir("prealloc-release");
    const logger = recordingLogger();
    let failReleases = true;
    const storage: Storage = {
      ...nativeStorage,
      ftruncate(fd, length) {
        // A release truncates to the current size; anything else (a new segment, a cut) passes.
        if (failReleases && length > 0 && length === nativeStorage.sizeOf(fd)) throw new SyscallError("ftruncate", ERRNO.EIO, "EIO");
        nativeStorage.ftruncate(fd, length);
      },
    };
    const manager = await openLogManager({ dataDir, storage, logger, topicDefaults: { "segment.bytes": 2 * MiB } });
    manager.createTopic("r", { partitions: 1 });
    const partition = manager.partition("r", 0);
    let i = 0;
    while (partition.info().segmentCount < 2) partition.append(batchAt(i++));
    expect(logger.entries.some((entry) => entry.level === "warn" && entry.message?.includes("could not release"))).toBe(true);
    expect(reservedBytes(logPath(dataDir, "r", 0))).toBeGreaterThan(0);
    failReleases = false;
    partition.append(batchAt(i++));
    expect(readAllValues(partition)).toHaveLength(i * 4);
    await manager.close();
  });

  test.skipIf(!supported)("after a crash, reopening gives back the reservation the dead broker left", async () => {
    const dataDir = newTempDir("prealloc-crash");
    const child = Bun.spawn([process.execPath, CHILD, dataDir, "48"], { stdout: "pipe", stderr: "pipe" });
    let nextOffset = -1;
    try {
      const output = await readLine(child.stdout, 15_000);
      expect(output).toStartWith("ready ");
      nextOffset = Number(output.split(" ")[1]);
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
    const file = logPath(dataDir, "grow");
    expect(reservedBytes(file)).toBeGreaterThan(MiB / 2);
    const manager: LogManager = await openLogManager({ dataDir });
    expect(manager.recovery.clean).toBe(false);
    expect(manager.recovery.truncations).toEqual([]);
    expectReleased(file);
    const partition = manager.partition("grow", 0);
    expect(partition.nextOffset).toBe(nextOffset);
    expect(readAllValues(partition)).toHaveLength(nextOffset);
    await manager.close();
  }, 20_000);
});

/** The first line the stream prints, within `deadlineMs`. */
async function readLine(stream: ReadableStream<Uint8Array>, deadlineMs: number): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + deadlineMs;
  try {
    while (!text.includes("\n") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return text.split("\n")[0] ?? "";
}

const mounted = mountTmpfs(4, "prealloc");
const tmpfs = "dir" in mounted ? mounted.dir : null;
afterAll(() => unmountTmpfs(mounted));

describe("Segment preallocation on a real full disk", () => {
  test.skipIf(tmpfs === null)("a 4 MiB tmpfs fills: fallocate's ENOSPC is skipped, pwrite's gives STORAGE_FULL, and appends resume once space is freed", async () => {
    const dataDir = `${tmpfs}/data`;
    const ballast = `${tmpfs}/ballast`;
    fs.writeFileSync(ballast, new Uint8Array(MiB));
    const outcomes: string[] = [];
    const storage: Storage = {
      ...nativeStorage,
      preallocate(fd, offset, length) {
        try {
          const done = nativeStorage.preallocate(fd, offset, length);
          outcomes.push(done ? "reserved" : "unsupported");
          return done;
        } catch (error) {
          outcomes.push(error instanceof SyscallError ? error.errnoName : String(error));
          throw error;
        }
      },
    };
    const manager = await openLogManager({ dataDir, storage });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    let acknowledged = 0;
    let failure: unknown = null;
    for (let i = 0; i < 100 && failure === null; i++) {
      try {
        partition.append(batchAt(i));
        acknowledged++;
      } catch (error) {
        failure = error;
      }
    }
    expect(failure).toBeInstanceOf(RunnelError);
    expect((failure as RunnelError).code).toBe("STORAGE_FULL");
    // The first step (at 1 MiB) fit; the second (2 MiB more) did not, and was skipped.
    expect(outcomes).toEqual(["reserved", "ENOSPC"]);
    expect(partition.info().sizeBytes).toBeGreaterThan(2 * MiB);
    expect(readAllValues(partition)).toHaveLength(acknowledged * 4);
    fs.rmSync(ballast);
    partition.append(batchAt(1000));
    expect(partition.nextOffset).toBe((acknowledged + 1) * 4);
    await manager.close();
    const reopened = await openLogManager({ dataDir });
    expect(readAllValues(reopened.partition("t", 0))).toHaveLength((acknowledged + 1) * 4);
    await reopened.close();
  });
});
