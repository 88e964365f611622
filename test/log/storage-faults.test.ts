/**
 * Disk full and I/O errors. A fault-injecting Storage runs everywhere; a real 1 MiB tmpfs
 * runs too where this process may mount one (root in a container that allows it).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { openLogManager } from "../../src/log/log-manager.ts";
import { RunnelError } from "../../src/errors.ts";
import type { LogManager } from "../../src/log/api.ts";
import { faultyStorage, makeBatch, readAllValues, tempDirsPerTest } from "./helpers.ts";
import { mountTmpfs, unmountTmpfs } from "../support/tmpfs.ts";

const newTempDir = tempDirsPerTest();

const newDir = (): string => newTempDir("faults");

function errorOf(run: () => unknown): RunnelError {
  try {
    run();
  } catch (error) {
    if (error instanceof RunnelError) return error;
    throw error;
  }
  throw new Error("expected an error");
}

/** A 1 MiB tmpfs when allowed; null otherwise (then only the fault seam runs). */
const mounted = mountTmpfs(1, "faults");
const tmpfs = "dir" in mounted ? mounted.dir : null;
afterAll(() => unmountTmpfs(mounted));

describe("Storage faults", () => {
  test("ENOSPC mid-write gives STORAGE_FULL, cuts the partial write off and leaves the partition usable", async () => {
    const storage = faultyStorage();
    const dataDir = newDir();
    const manager = await openLogManager({ dataDir, storage });
    manager.createTopic("full", { partitions: 1 });
    const partition = manager.partition("full", 0);
    for (let i = 0; i < 5; i++) partition.append(makeBatch(`ok${i}`, 2, i, 500));
    const sizeBefore = partition.info().sizeBytes;
    storage.bytesFree = 700; // the next batch (~1.1 KiB) only half fits
    const error = errorOf(() => partition.append(makeBatch("nope", 2, 9, 500)));
    expect(error.code).toBe("STORAGE_FULL");
    expect(error.retriable).toBe(true);
    expect(error.message).toContain("ENOSPC");
    expect(partition.info().sizeBytes).toBe(sizeBefore);
    expect(fs.statSync(`${dataDir}/topics/full/0/${"0".padStart(20, "0")}.log`).size).toBe(sizeBefore);
    expect(readAllValues(partition)).toHaveLength(10);
    storage.bytesFree = Number.POSITIVE_INFINITY;
    expect(partition.append(makeBatch("again", 1, 10)).baseOffset).toBe(10);
    await manager.close();
    const reopened = await openLogManager({ dataDir });
    expect(reopened.recovery.truncations).toEqual([]);
    expect(readAllValues(reopened.partition("full", 0)).at(-1)!.startsWith("again:0:")).toBe(true);
    await reopened.close();
  });

  test("an fdatasync EIO rejects sync() with STORAGE_ERROR and fails the partition, which stays recoverable", async () => {
    const storage = faultyStorage();
    const dataDir = newDir();
    const manager = await openLogManager({ dataDir, storage });
    manager.createTopic("eio", { partitions: 2 });
    const partition = manager.partition("eio", 0);
    partition.append(makeBatch("acked", 3, 1));
    storage.failNextSync = true;
    const syncError = await partition.sync().then(() => null, (error: unknown) => error as RunnelError);
    expect(syncError?.code).toBe("STORAGE_ERROR");
    expect(syncError?.message).toContain("EIO");
    expect(errorOf(() => partition.append(makeBatch("late", 1, 2))).code).toBe("PARTITION_FAILED");
    expect(errorOf(() => partition.read(0, 100)).code).toBe("PARTITION_FAILED");
    await expect(partition.sync()).rejects.toMatchObject({ code: "PARTITION_FAILED" });
    // The other partition is unaffected.
    manager.partition("eio", 1).append(makeBatch("fine", 1, 1));
    await manager.partition("eio", 1).sync();
    await manager.close();
    expect(fs.existsSync(`${dataDir}/clean-shutdown`)).toBe(false);
    const reopened = await openLogManager({ dataDir });
    expect(reopened.recovery.clean).toBe(false);
    expect(readAllValues(reopened.partition("eio", 0))).toHaveLength(3);
    await reopened.close();
  });

  test("an EIO on flush fails the partition", async () => {
    const storage = faultyStorage();
    const manager = await openLogManager({ dataDir: newDir(), storage });
    manager.createTopic("eio", { partitions: 1 });
    const partition = manager.partition("eio", 0);
    partition.append(makeBatch("a", 1, 1));
    storage.failNextSync = true;
    expect(errorOf(() => partition.flush()).code).toBe("STORAGE_ERROR");
    expect(errorOf(() => partition.flush()).code).toBe("PARTITION_FAILED");
    await manager.close();
  });

  test.skipIf(tmpfs === null)("a real full tmpfs: STORAGE_FULL, acknowledged data intact, recoverable, writable once space is freed", async () => {
    const dataDir = `${tmpfs}/data`;
    let manager: LogManager = await openLogManager({ dataDir, topicDefaults: { "segment.bytes": 128 * 1024, "retention.bytes": 0 } });
    manager.createTopic("tiny", { partitions: 1 });
    let partition = manager.partition("tiny", 0);
    let acknowledged = 0;
    let failure: RunnelError | null = null;
    for (let i = 0; i < 200 && failure === null; i++) {
      try {
        partition.append(makeBatch(`t${i}`, 4, i, 4000));
        acknowledged += 4;
      } catch (error) {
        failure = error as RunnelError;
      }
    }
    expect(failure?.code).toBe("STORAGE_FULL");
    expect(readAllValues(partition)).toHaveLength(acknowledged);
    expect(partition.nextOffset).toBe(acknowledged);
    // Retention frees closed segments; then appends succeed again.
    expect(manager.runRetention()).toBeGreaterThan(0);
    expect(partition.append(makeBatch("after", 1, 1)).baseOffset).toBe(acknowledged);
    await manager.close().catch(() => undefined);
    manager = await openLogManager({ dataDir });
    partition = manager.partition("tiny", 0);
    expect(partition.nextOffset).toBe(acknowledged + 1);
    expect(readAllValues(partition).at(-1)!.startsWith("after:0:")).toBe(true);
    await manager.close();
  });
});
