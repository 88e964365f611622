/**
 * Sealed segments' indexes are read from their files on demand (src/log/sealed-index.ts): the
 * answers match the in-memory index, the heap keeps only each block's first entry, and a file
 * that is invalid or changed under the broker is never trusted.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { RunnelError } from "../../src/errors.ts";
import { openLogManager } from "../../src/log/log-manager.ts";
import { OffsetIndex, TimeIndex } from "../../src/log/offset-index.ts";
import { BLOCK_ENTRIES, blockReads, SealedOffsetIndex, SealedTimeIndex } from "../../src/log/sealed-index.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { makeBatch, prng, readAllValues, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

/** A storage that counts preads per file suffix (.log, .index, .timeindex). */
function preadCountingStorage(): { storage: Storage; preads: Map<string, number> } {
  const suffixOf = new Map<number, string>();
  const preads = new Map<string, number>();
  const storage: Storage = {
    ...nativeStorage,
    open(file, options) {
      const fd = nativeStorage.open(file, options);
      suffixOf.set(fd, path.extname(file));
      return fd;
    },
    pread(fd, into, position) {
      const suffix = suffixOf.get(fd) ?? "?";
      preads.set(suffix, (preads.get(suffix) ?? 0) + 1);
      return nativeStorage.pread(fd, into, position);
    },
  };
  return { storage, preads };
}

/** Random strictly increasing in-memory indexes of `count` entries, written to files in `dir`. */
function writtenIndexes(dir: string, count: number, seed: number): { offsets: OffsetIndex; times: TimeIndex; indexPath: string; timePath: string; next: number; logBytes: number } {
  const random = prng(seed);
  const offsets = new OffsetIndex();
  const times = new TimeIndex();
  let relative = 0;
  let position = 0;
  let timestamp = 1_700_000_000_000;
  for (let entry = 0; entry < count; entry++) {
    relative += 1 + Math.floor(random() * 50);
    position += 1 + Math.floor(random() * 5000);
    timestamp += 1 + Math.floor(random() * 1000);
    offsets.append(relative, position);
    times.append(timestamp, relative);
  }
  const indexPath = path.join(dir, "00000000000000000000.index");
  const timePath = path.join(dir, "00000000000000000000.timeindex");
  offsets.markRewrite();
  times.markRewrite();
  offsets.persistTo(nativeStorage, indexPath, false);
  times.persistTo(nativeStorage, timePath, false);
  return { offsets, times, indexPath, timePath, next: relative + 1, logBytes: position + 1 };
}

describe("Sealed index", () => {
  test("answers every floor lookup as the in-memory index does, whether built at seal or read back from the files", () => {
    const dir = newTempDir("sealed-model");
    for (const [seed, count] of [[1, 1], [2, BLOCK_ENTRIES], [3, BLOCK_ENTRIES + 1], [4, 5 * BLOCK_ENTRIES + 17]] as const) {
      const { offsets, times, indexPath, timePath, next, logBytes } = writtenIndexes(dir, count, seed);
      const fromFile = SealedOffsetIndex.fromFile(nativeStorage, indexPath, next, logBytes)!;
      const timeFromFile = SealedTimeIndex.fromFile(nativeStorage, timePath, next)!;
      const sealed = [SealedOffsetIndex.fromIndex(offsets, nativeStorage, indexPath), fromFile];
      const sealedTimes = [SealedTimeIndex.fromIndex(times, nativeStorage, timePath), timeFromFile];
      expect(fromFile.length).toBe(count);
      expect(timeFromFile.lastTimestamp).toBe(times.lastTimestamp);
      const random = prng(seed + 100);
      for (let probe = 0; probe < 300; probe++) {
        // Probes at, just beside and between entries, and before the first.
        const at = Math.floor(random() * count);
        const relative = offsets.relativeOffsetAt(at) + Math.floor(random() * 3) - 1;
        const position = offsets.positionAt(at) + Math.floor(random() * 3) - 1;
        const timestamp = times.timestampAt(at) + Math.floor(random() * 3) - 1;
        for (const index of sealed) {
          expect(index.floorPosition(relative)).toBe(offsets.floorPosition(relative));
          expect(index.floorByPosition(position)).toBe(offsets.floorByPosition(position));
        }
        for (const index of sealedTimes) expect(index.lastBefore(timestamp)).toBe(times.lastBefore(timestamp));
      }
      expect(sealed[1]!.floorPosition(0)).toBe(0);
      expect(sealed[1]!.floorByPosition(0)).toBe(-1);
      expect(sealedTimes[1]!.lastBefore(0)).toBe(-1);
    }
  });

  test("keeps one entry in 256 on the heap", () => {
    const dir = newTempDir("sealed-heap");
    const { offsets, times, indexPath, timePath } = writtenIndexes(dir, 10 * BLOCK_ENTRIES, 7);
    const sealed = SealedOffsetIndex.fromIndex(offsets, nativeStorage, indexPath);
    const sealedTimes = SealedTimeIndex.fromIndex(times, nativeStorage, timePath);
    expect(sealed.memoryBytes).toBe(10 * 8);
    expect(sealedTimes.memoryBytes).toBe(10 * 8);
    expect(offsets.memoryBytes).toBeGreaterThanOrEqual(10 * BLOCK_ENTRIES * 8);
  });

  test("refuses a missing file, an odd length, entries out of order or past the segment", () => {
    const dir = newTempDir("sealed-invalid");
    const { indexPath, timePath, next, logBytes } = writtenIndexes(dir, 300, 9);
    expect(SealedOffsetIndex.fromFile(nativeStorage, path.join(dir, "absent.index"), next, logBytes)).toBeNull();
    expect(SealedOffsetIndex.fromFile(nativeStorage, indexPath, next - 1, logBytes)).toBeNull();
    expect(SealedOffsetIndex.fromFile(nativeStorage, indexPath, next, logBytes - 1)).toBeNull();
    const good = fs.readFileSync(indexPath);
    const swapped = Buffer.concat([good.subarray(8, 16), good.subarray(0, 8), good.subarray(16)]);
    fs.writeFileSync(indexPath, swapped);
    expect(SealedOffsetIndex.fromFile(nativeStorage, indexPath, next, logBytes)).toBeNull();
    fs.writeFileSync(indexPath, good.subarray(0, good.length - 3));
    expect(SealedOffsetIndex.fromFile(nativeStorage, indexPath, next, logBytes)).toBeNull();
    fs.appendFileSync(timePath, Buffer.alloc(5));
    expect(SealedTimeIndex.fromFile(nativeStorage, timePath, next)).toBeNull();
  });

  test("a file changed after sealing is a STORAGE_ERROR, never a wrong position", () => {
    const dir = newTempDir("sealed-changed");
    const { offsets, indexPath } = writtenIndexes(dir, 3 * BLOCK_ENTRIES, 11);
    const sealed = SealedOffsetIndex.fromIndex(offsets, nativeStorage, indexPath);
    const bytes = fs.readFileSync(indexPath);
    bytes.writeUInt32BE(bytes.readUInt32BE(BLOCK_ENTRIES * 8) + 1, BLOCK_ENTRIES * 8);
    fs.writeFileSync(indexPath, bytes);
    const probe = offsets.relativeOffsetAt(BLOCK_ENTRIES + 5);
    expect(() => sealed.floorPosition(probe)).toThrow(RunnelError);
    fs.writeFileSync(indexPath, bytes.subarray(0, 8 * BLOCK_ENTRIES));
    expect(() => sealed.floorPosition(probe)).toThrow(/changed since it was sealed/);
  });

  test("a partition's sealed segments are read through their index files and hold only block heads on the heap", async () => {
    const dir = newTempDir("sealed-partition");
    const options = { dataDir: dir, topicDefaults: { "segment.bytes": 64 * 1024 }, indexIntervalBytes: 1 };
    const batches = 6_000;
    let manager = await openLogManager(options);
    manager.createTopic("t", { partitions: 1 });
    const expected: string[] = [];
    for (let batch = 0; batch < batches; batch++) {
      manager.partition("t", 0).append(makeBatch(`b${batch}`, 2, 1_000_000 + batch * 10, 80));
      expected.push(`b${batch}:0:`, `b${batch}:1:`);
    }
    await manager.close();

    const counting = preadCountingStorage();
    manager = await openLogManager({ ...options, storage: counting.storage });
    const partition = manager.partition("t", 0);
    expect(partition.info().segmentCount).toBeGreaterThan(20);
    const fromFileBefore = blockReads.fromFile;
    const fromCacheBefore = blockReads.fromCache;
    expect(readAllValues(partition, 4096).map((value) => value.slice(0, value.indexOf(":", value.indexOf(":") + 1) + 1))).toEqual(expected);
    expect(counting.preads.get(".index") ?? 0).toBeGreaterThan(0);
    // Read in order, consecutive fetches land in the block the previous one read.
    expect(blockReads.fromCache - fromCacheBefore).toBeGreaterThan(10 * (blockReads.fromFile - fromFileBefore));
    // Every batch is indexed: the files hold ~20 bytes a batch; the heap keeps a block head per 256 entries.
    const indexFileBytes = fs.readdirSync(path.join(dir, "topics", "t", "0"))
      .filter((name) => name.endsWith("index"))
      .reduce((sum, name) => sum + fs.statSync(path.join(dir, "topics", "t", "0", name)).size, 0);
    expect(indexFileBytes).toBeGreaterThan(batches * 15);
    expect(manager.indexMemoryBytes).toBeLessThan(indexFileBytes / 8);
    const timeBefore = counting.preads.get(".timeindex") ?? 0;
    expect(partition.offsetForTimestamp(1_000_000 + 1234 * 10)).toBe(1234 * 2);
    expect(counting.preads.get(".timeindex") ?? 0).toBeGreaterThan(timeBefore);
    await manager.close();
  });
});
