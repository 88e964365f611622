/**
 * Recovery: a crash is simulated by copying the live data directory (what the page cache
 * holds at a kill -9: no clean-shutdown marker), then damaging the copy the way a torn write,
 * a flipped bit or a lost file would, and reopening it.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { openLogManager } from "../../src/log/log-manager.ts";
import type { LogManager } from "../../src/log/api.ts";
import { makeBatch, recordingLogger, segmentFiles, readAllValues, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();


/** Writes `flushed` batches and flushes, then `tail` more; returns a crash copy and batch sizes. */
async function crashedLog(options: { flushed: number; tail: number; segmentBytes?: number }) {
  const live = newTempDir("live");
  const manager = await openLogManager({ dataDir: live, topicDefaults: { "segment.bytes": options.segmentBytes ?? 1 << 30 } });
  manager.createTopic("t", { partitions: 1 });
  const partition = manager.partition("t", 0);
  const sizes: number[] = [];
  for (let i = 0; i < options.flushed + options.tail; i++) {
    const batch = makeBatch(`b${i}`, 2, 1000 + i * 10, 200);
    sizes.push(batch.length);
    partition.append(batch);
    if (i === options.flushed - 1) partition.flush();
  }
  const copy = newTempDir("crash");
  fs.cpSync(live, copy, { recursive: true });
  await manager.close();
  return { dir: copy, partitionDir: `${copy}/topics/t/0`, sizes };
}

function allValues(manager: LogManager): string[] {
  return readAllValues(manager.partition("t", 0));
}

const logFile = (partitionDir: string, base = 0) => `${partitionDir}/${String(base).padStart(20, "0")}.log`;

describe("Recovery", () => {
  test("a torn tail (file cut mid-batch) recovers to the last whole batch and reports the cut", async () => {
    const { dir, partitionDir, sizes } = await crashedLog({ flushed: 5, tail: 5 });
    const full = sizes.reduce((a, b) => a + b, 0);
    fs.truncateSync(logFile(partitionDir), full - 30);
    const logger = recordingLogger();
    const manager = await openLogManager({ dataDir: dir, logger });
    expect(manager.recovery.clean).toBe(false);
    expect(manager.recovery.truncations).toHaveLength(1);
    const cut = manager.recovery.truncations[0]!;
    expect(cut).toMatchObject({ topic: "t", partition: 0, offset: 18, bytesDropped: sizes[9]! - 30 });
    expect(cut.reason).toContain("torn");
    expect(manager.partition("t", 0).nextOffset).toBe(18);
    expect(allValues(manager).at(-1)!.startsWith("b8:1:")).toBe(true);
    const logged = logger.entries.find((entry) => entry.message === "log truncated during recovery");
    expect(logged?.object).toMatchObject({ topic: "t", partition: 0, offset: 18, bytesDropped: sizes[9]! - 30 });
    // The log takes appends again right after the cut.
    expect(manager.partition("t", 0).append(makeBatch("after", 1, 5000)).baseOffset).toBe(18);
    await manager.close();
  });

  test("a flipped byte in the unflushed tail truncates at that batch", async () => {
    const { dir, partitionDir, sizes } = await crashedLog({ flushed: 4, tail: 6 });
    const position = sizes.slice(0, 7).reduce((a, b) => a + b, 0) + 100; // inside batch 7's records
    const fd = fs.openSync(logFile(partitionDir), "r+");
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, position);
    byte[0] = byte[0]! ^ 0x10;
    fs.writeSync(fd, byte, 0, 1, position);
    fs.closeSync(fd);
    const manager = await openLogManager({ dataDir: dir });
    const cut = manager.recovery.truncations[0]!;
    expect(cut.offset).toBe(14);
    expect(cut.bytesDropped).toBe(sizes.slice(7).reduce((a, b) => a + b, 0));
    expect(cut.reason).toContain("checksum");
    expect(allValues(manager)).toHaveLength(14);
    await manager.close();
  });

  test("garbage after the last batch is cut off exactly", async () => {
    const { dir, partitionDir } = await crashedLog({ flushed: 3, tail: 2 });
    fs.appendFileSync(logFile(partitionDir), Buffer.from("this is not a record batch, just noise that a crash left behind".repeat(3)));
    fs.appendFileSync(logFile(partitionDir), new Uint8Array(4096)); // and zeroed pages
    const manager = await openLogManager({ dataDir: dir });
    expect(manager.recovery.truncations).toHaveLength(1);
    expect(manager.recovery.truncations[0]).toMatchObject({ offset: 10, bytesDropped: 63 * 3 + 4096 });
    expect(allValues(manager)).toHaveLength(10);
    await manager.close();
  });

  test("missing index files are rebuilt from the log and reads still work", async () => {
    const { dir, partitionDir } = await crashedLog({ flushed: 30, tail: 10, segmentBytes: 4096 });
    const before = new Map(segmentFiles(partitionDir, ".index").map((name) => [name, fs.readFileSync(`${partitionDir}/${name}`)]));
    const indexes = segmentFiles(partitionDir, ".index");
    expect(indexes.length).toBeGreaterThan(3);
    fs.unlinkSync(`${partitionDir}/${indexes[1]}`);
    fs.unlinkSync(`${partitionDir}/${indexes[1]!.replace(".index", ".timeindex")}`);
    const manager = await openLogManager({ dataDir: dir });
    expect(manager.recovery.truncations).toEqual([]);
    expect(manager.recovery.indexRebuilds.map((rebuild) => rebuild.segment)).toContain(Number(indexes[1]!.slice(0, 20)));
    expect(allValues(manager)).toHaveLength(80);
    expect(fs.readFileSync(`${partitionDir}/${indexes[1]}`)).toEqual(before.get(indexes[1]!)!);
    expect(manager.partition("t", 0).offsetForTimestamp(1000 + 35 * 10)).toBe(70);
    await manager.close();
  });

  test("an invalid index (odd length, entries out of order) is rebuilt on first use", async () => {
    const { dir, partitionDir } = await crashedLog({ flushed: 40, tail: 0, segmentBytes: 8192 });
    const indexes = segmentFiles(partitionDir, ".index");
    fs.writeFileSync(`${partitionDir}/${indexes[0]}`, new Uint8Array([0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 2]));
    fs.appendFileSync(`${partitionDir}/${indexes[1]}`, new Uint8Array(3));
    const logger = recordingLogger();
    const manager = await openLogManager({ dataDir: dir, logger });
    expect(allValues(manager)).toHaveLength(80);
    const rebuilt = logger.entries.filter((entry) => entry.message === "segment index rebuilt from the log");
    expect(rebuilt.length).toBe(2);
    expect(fs.statSync(`${partitionDir}/${indexes[1]}`).size % 8).toBe(0);
    await manager.close();
  });

  test("corruption in a middle segment after the recovery point removes every later segment", async () => {
    const { dir, partitionDir } = await crashedLog({ flushed: 2, tail: 40, segmentBytes: 4096 });
    const logs = segmentFiles(partitionDir);
    expect(logs.length).toBeGreaterThan(4);
    // The copy ran before any background roll checkpoint could finish (cpSync never yields), so
    // the recovery point is still in segment 0 and segment 2 is in the verified tail.
    const victim = `${partitionDir}/${logs[2]}`;
    const victimSize = fs.statSync(victim).size;
    fs.truncateSync(victim, victimSize - 5);
    const laterBytes = logs.slice(3).reduce((sum, name) => sum + fs.statSync(`${partitionDir}/${name}`).size, 0);
    const manager = await openLogManager({ dataDir: dir });
    const cut = manager.recovery.truncations[0]!;
    expect(cut.bytesDropped).toBe(laterBytes + (victimSize - 5) - (fs.statSync(victim).size));
    expect(segmentFiles(partitionDir)).toEqual(logs.slice(0, 3));
    expect(manager.partition("t", 0).nextOffset).toBe(cut.offset);
    expect(allValues(manager)).toHaveLength(cut.offset);
    await manager.close();
  });

  test("after an unclean stop only bytes after the recovery point are verified", async () => {
    const { dir, sizes } = await crashedLog({ flushed: 30, tail: 3 });
    const manager = await openLogManager({ dataDir: dir });
    expect(manager.recovery.clean).toBe(false);
    expect(manager.recovery.bytesScanned).toBe(sizes.slice(30).reduce((a, b) => a + b, 0));
    await manager.close();
    const again = await openLogManager({ dataDir: dir });
    expect(again.recovery.clean).toBe(true);
    expect(again.recovery.bytesScanned).toBe(0);
    await again.close();
  });

  test("a missing or unreadable recovery point makes recovery verify the whole log", async () => {
    const { dir, partitionDir, sizes } = await crashedLog({ flushed: 5, tail: 1 });
    fs.writeFileSync(`${partitionDir}/recovery-point`, "{not json");
    const manager = await openLogManager({ dataDir: dir });
    expect(manager.recovery.bytesScanned).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(allValues(manager)).toHaveLength(12);
    await manager.close();
  });
});
