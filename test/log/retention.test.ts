import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { openLogManager } from "../../src/log/log-manager.ts";
import { RunnelError } from "../../src/errors.ts";
import { makeBatch, segmentFiles, valuesOf, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

async function filledPartition(config: Record<string, number>, batches: number) {
  const dataDir = newTempDir("retention");
  let nowMs = 10_000_000;
  const manager = await openLogManager({ dataDir, now: () => nowMs, topicDefaults: { "segment.bytes": 4096, ...config } });
  manager.createTopic("t", { partitions: 1 });
  const partition = manager.partition("t", 0);
  for (let i = 0; i < batches; i++) partition.append(makeBatch(`r${i}`, 1, 1_000_000 + i * 1000, 900));
  return { manager, partition, dataDir, setNow: (value: number) => (nowMs = value) };
}

describe("Retention", () => {
  test("by time: closed segments whose max timestamp is older than retention.ms are deleted", async () => {
    const { manager, partition, dataDir } = await filledPartition({ "retention.ms": 20_000 }, 40);
    const before = partition.info();
    expect(before.segmentCount).toBeGreaterThan(5);
    // Batch i has timestamp 1_000_000 + i*1000; at now = 1_030_000 batches older than 1_010_000 expire.
    const deleted = manager.runRetention(1_030_000);
    expect(deleted).toBeGreaterThan(0);
    const after = partition.info();
    expect(after.segmentCount).toBe(before.segmentCount - deleted);
    expect(after.logStartOffset).toBeGreaterThan(0);
    // Every remaining batch before the new start would have been expired; the first kept segment holds a young enough batch.
    const slice = partition.read(after.logStartOffset, 1 << 20)!;
    const values = valuesOf(partition.readBytes(slice));
    slice.release();
    const lastInFirstSegment = Number(values.at(-1)!.split(":")[0]!.slice(1));
    expect(1_000_000 + lastInFirstSegment * 1000).toBeGreaterThanOrEqual(1_030_000 - 20_000);
    expect(segmentFiles(`${dataDir}/topics/t/0`)).toHaveLength(after.segmentCount);
    let caught: unknown;
    try {
      partition.read(0, 100);
    } catch (error) {
      caught = error;
    }
    expect((caught as RunnelError).code).toBe("OFFSET_OUT_OF_RANGE");
    expect((caught as RunnelError).details).toEqual({ logStartOffset: after.logStartOffset, nextOffset: 40 });
    expect((caught as RunnelError).message).toContain(String(after.logStartOffset));
    await manager.close();
  });

  test("never deletes a segment holding records at or past the high watermark (replication sets it)", async () => {
    const { manager, partition } = await filledPartition({ "retention.bytes": 4096, "retention.ms": -1 }, 40);
    partition.setHighWatermark(7);
    manager.runRetention();
    // Only segments wholly below offset 7 may go: offset 7 is still readable.
    expect(partition.logStartOffset).toBeLessThanOrEqual(7);
    expect(partition.info().segmentCount).toBeGreaterThan(2);
    partition.setHighWatermark(null);
    manager.runRetention();
    expect(partition.logStartOffset).toBeGreaterThan(7);
    await manager.close();
  });

  test("by size: oldest segments go while the partition stays at or above retention.bytes", async () => {
    const { manager, partition } = await filledPartition({ "retention.bytes": 10_000, "retention.ms": -1 }, 60);
    manager.runRetention();
    const info = partition.info();
    expect(info.sizeBytes).toBeGreaterThanOrEqual(10_000);
    expect(info.sizeBytes).toBeLessThan(10_000 + 4096);
    expect(info.nextOffset).toBe(60);
    await manager.close();
  });

  test("the active segment is never deleted, however old", async () => {
    const { manager, partition } = await filledPartition({ "retention.ms": 0, "retention.bytes": 0 }, 30);
    manager.runRetention(Number.MAX_SAFE_INTEGER);
    expect(partition.info().segmentCount).toBe(1);
    expect(partition.logStartOffset).toBeGreaterThan(0);
    const slice = partition.read(partition.logStartOffset, 100);
    expect(slice).not.toBeNull();
    slice!.release();
    await manager.close();
  });

  test("a slice being read keeps its deleted segment readable until released", async () => {
    const { manager, partition, dataDir } = await filledPartition({ "retention.ms": 0 }, 30);
    const slice = partition.read(0, 900)!;
    manager.runRetention(Number.MAX_SAFE_INTEGER);
    expect(fs.existsSync(`${dataDir}/topics/t/0/${"0".padStart(20, "0")}.log`)).toBe(false);
    expect(valuesOf(partition.readBytes(slice))[0]!.startsWith("r0:0:")).toBe(true);
    slice.release();
    await manager.close();
  });

  test("the background task applies retention on its timer", async () => {
    const { manager, partition, setNow } = await filledPartition({ "retention.ms": 1000 }, 30);
    setNow(Number.MAX_SAFE_INTEGER);
    manager.startBackgroundTasks({ retentionCheckIntervalMs: 5 });
    const deadline = Date.now() + 5000;
    while (partition.info().segmentCount > 1 && Date.now() < deadline) await Bun.sleep(5);
    expect(partition.info().segmentCount).toBe(1);
    await manager.close();
  });
});
