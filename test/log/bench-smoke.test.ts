/** The storage benchmarks at a smoke size: they run and their data is right (never timings). */
import { describe, expect, test } from "bun:test";
import * as path from "node:path";
import * as fs from "node:fs";
import { batchOfSize, indexLookupBench, interleavedRatio, lookupBench, partitionAppender, preallocationComparison, writeSyncAppender } from "../../bench/log.bench.ts";
import { compareRecovery } from "../../bench/log-recovery.ts";
import { readBatchHeader } from "../../src/format/record-batch.ts";
import { tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

const newDir = (): string => newTempDir("bench-smoke");

describe("Benchmarks at smoke size", () => {
  test("append through a partition and through fs.writeSync store the same bytes", async () => {
    const dir = newDir();
    const batch = batchOfSize(16 * 1024);
    expect(batch.length).toBeLessThanOrEqual(16 * 1024);
    expect(batch.length).toBeGreaterThan(15 * 1024);
    const viaPartition = await partitionAppender(path.join(dir, "p"), batch, 64 * 1024);
    const viaWriteSync = writeSyncAppender(path.join(dir, "w"), batch.slice(), 64 * 1024);
    for (let i = 0; i < 20; i++) {
      viaPartition.step();
      viaWriteSync.step();
    }
    expect(viaPartition.bytesWritten).toBe(viaWriteSync.bytesWritten);
    const baselineFiles = fs.readdirSync(path.join(dir, "w"));
    const baselineBytes = baselineFiles.reduce((sum, name) => sum + fs.statSync(path.join(dir, "w", name)).size, 0);
    expect(baselineFiles.length).toBeGreaterThan(1); // it rolled files like the partition does
    expect(baselineBytes).toBeLessThanOrEqual(64 * 1024 + 4 * batch.length);
    expect(baselineBytes % batch.length).toBe(0);
    const info = viaPartition.partition.info();
    expect(info.nextOffset).toBe(20 * readBatchHeader(batch).recordCount);
    expect(info.sizeBytes).toBeLessThanOrEqual(64 * 1024 + 4 * batch.length);
    const ratio = interleavedRatio(viaPartition, viaWriteSync, 3, 2);
    expect(ratio.median).toBeGreaterThan(0);
    expect(viaPartition.bytesWritten).toBe((20 + 3 * 2) * batch.length);
    expect(viaWriteSync.bytesWritten).toBe((20 + 3 * 2) * batch.length);
    await viaPartition.close();
    await viaWriteSync.close();
  });

  test("the preallocation comparison appends the same bytes with and without it", async () => {
    const batchBytes = 64 * 1024;
    const { wall, systemCpu, bytesEach, partition } = await preallocationComparison(newDir(), batchBytes, 4 * 1024 * 1024, 2, 16);
    expect(wall.median).toBeGreaterThan(0);
    expect(systemCpu.median).toBeGreaterThan(0);
    // 1 wall round + 1 CPU round, 16 batches each, on each side.
    expect(bytesEach).toBe(2 * 16 * batchOfSize(batchBytes).length);
    expect(partition.nextOffset).toBe(2 * 16 * readBatchHeader(batchOfSize(batchBytes)).recordCount);
  });

  test("lookups find the batch holding a random offset", async () => {
    const lookup = await lookupBench(newDir(), 30, 4);
    for (let i = 0; i < 50; i++) expect(lookup.step()).toBeGreaterThanOrEqual(0);
    expect(lookup.partition.info().segmentCount).toBe(30);
    await lookup.close();
    const index = indexLookupBench(1000);
    expect(index.index.floorPosition(40 * 500 + 39)).toBe(500 * 4096);
    for (let i = 0; i < 50; i++) expect(index.step() % 4096).toBe(0);
  });

  test("recovery comparison runs and scans only the tail", async () => {
    const { small, large } = await compareRecovery(newDir(), 1 / 1024);
    expect(small.bytesScanned).toBeGreaterThanOrEqual(64 * 1024);
    expect(small.bytesScanned).toBeLessThan(64 * 1024 + 20 * 1024);
    expect(large.bytesScanned).toBe(small.bytesScanned);
    expect(large.nextOffset).toBeGreaterThan(small.nextOffset);
  }, 20_000);
});
