/**
 * @module bench/log.bench
 * Storage engine micro-benchmarks (mitata), each against a baseline in the same run:
 *
 * - append: Partition.append of 16 KiB and 1 MiB batches vs plain fs.writeSync of the same
 *   bytes to one file; reported as a throughput ratio (target >= 0.9).
 * - lookup: Partition.read at random offsets in a partition of 10,000 segments (fd cache
 *   misses included), and OffsetIndex floor lookups in one index of a full 1 GiB segment.
 *
 * The bodies are exported so test/log/bench-smoke.test.ts runs each at a tiny size.
 * Full size: `bun bench/log.bench.ts` (set BENCH_DIR to pick the disk; default os.tmpdir()).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bench, do_not_optimize, group, run } from "mitata";
import { encodeBatch } from "../src/format/record-batch.ts";
import type { LogManager, Partition } from "../src/log/api.ts";
import { openLogManager } from "../src/log/log-manager.ts";
import { OffsetIndex } from "../src/log/offset-index.ts";
import { KiB, MiB } from "../src/limits.ts";

/** A batch of ~`bytes` made of 100-byte messages. */
export function batchOfSize(bytes: number): Uint8Array {
  const records = [];
  const value = new Uint8Array(100).fill(120);
  for (let size = 61; size + 108 <= bytes; size += 108) records.push({ value });
  return encodeBatch(records.length > 0 ? records : [{ value }], { nowMs: Date.now() });
}

export interface Appender {
  step(): void;
  /** Bytes appended so far. */
  readonly bytesWritten: number;
  close(): Promise<void>;
}

/** Appends `batch` through a Partition; keeps the disk use bounded with size retention. */
export async function partitionAppender(directory: string, batch: Uint8Array, keepBytes: number): Promise<Appender & { partition: Partition; manager: LogManager }> {
  const segmentBytes = Math.max(4 * KiB, Math.min(64 * MiB, Math.floor(keepBytes / 4)));
  const manager = await openLogManager({ dataDir: directory, topicDefaults: { "segment.bytes": segmentBytes, "retention.bytes": keepBytes } });
  manager.createTopic("bench", { partitions: 1 });
  const partition = manager.partition("bench", 0);
  let bytesWritten = 0;
  let sinceRetention = 0;
  return {
    manager,
    partition,
    get bytesWritten() {
      return bytesWritten;
    },
    step() {
      partition.append(batch);
      bytesWritten += batch.length;
      sinceRetention += batch.length;
      if (sinceRetention >= keepBytes) {
        sinceRetention = 0;
        manager.runRetention();
      }
    },
    close: () => manager.close(),
  };
}

/** The baseline: fs.writeSync of the same bytes at the end of one file, wrapped at keepBytes. */
export function writeSyncAppender(file: string, batch: Uint8Array, keepBytes: number): Appender {
  const fd = fs.openSync(file, "w+");
  let position = 0;
  let bytesWritten = 0;
  return {
    get bytesWritten() {
      return bytesWritten;
    },
    step() {
      if (position >= keepBytes) {
        fs.ftruncateSync(fd, 0);
        position = 0;
      }
      fs.writeSync(fd, batch, 0, batch.length, position);
      position += batch.length;
      bytesWritten += batch.length;
    },
    close: async () => fs.closeSync(fd),
  };
}

/** A partition of `segments` small segments; step() reads at a random offset. */
export async function lookupBench(directory: string, segments: number, openSegmentsMax = 256) {
  const batch = batchOfSize(1000);
  const manager = await openLogManager({ dataDir: directory, openSegmentsMax, topicDefaults: { "segment.bytes": 4 * KiB } });
  manager.createTopic("lookup", { partitions: 1 });
  const partition = manager.partition("lookup", 0);
  while (partition.info().segmentCount < segments) partition.append(batch);
  const nextOffset = partition.nextOffset;
  let seed = 12345;
  return {
    partition,
    step(): number {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const slice = partition.read(seed % nextOffset, 4096)!;
      const firstOffset = slice.firstOffset;
      slice.release();
      return firstOffset;
    },
    close: () => manager.close(),
  };
}

/** One in-memory offset index with `entries` entries (262,144 = a full 1 GiB segment at 4 KiB). */
export function indexLookupBench(entries: number) {
  const index = new OffsetIndex();
  for (let i = 0; i < entries; i++) index.append(i * 40, i * 4096);
  let seed = 99;
  return {
    index,
    step(): number {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return index.floorPosition(seed % (entries * 40));
    },
  };
}

function meanNs(result: Awaited<ReturnType<typeof run>>, name: string): number {
  const trial = result.benchmarks.find((item) => item.alias === name);
  const stats = trial?.runs[0]?.stats;
  if (!stats) throw new Error(`no result for ${name}`);
  return stats.avg;
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "runnel-bench-"));
  const keepBytes = 512 * MiB;
  const sizes = [{ label: "16 KiB", bytes: 16 * KiB }, { label: "1 MiB", bytes: MiB }];
  const closers: Array<() => Promise<void>> = [];
  try {
    for (const { label, bytes } of sizes) {
      const batch = batchOfSize(bytes);
      const viaPartition = await partitionAppender(path.join(root, `p-${bytes}`), batch, keepBytes);
      const viaWriteSync = writeSyncAppender(path.join(root, `w-${bytes}`), batch.slice(), keepBytes);
      closers.push(() => viaPartition.close(), () => viaWriteSync.close());
      group(`append ${label} batches`, () => {
        bench(`Partition.append ${label}`, () => viaPartition.step());
        bench(`fs.writeSync ${label}`, () => viaWriteSync.step()).baseline(true);
      });
    }
    const lookup = await lookupBench(path.join(root, "lookup"), 10_000);
    closers.push(() => lookup.close());
    const index = indexLookupBench(262_144);
    group("offset lookup", () => {
      bench("Partition.read random offset, 10,000 segments", () => do_not_optimize(lookup.step()));
      bench("OffsetIndex.floorPosition, 262,144 entries", () => do_not_optimize(index.step()));
    });
    const result = await run();
    for (const { label } of sizes) {
      const ratio = meanNs(result, `fs.writeSync ${label}`) / meanNs(result, `Partition.append ${label}`);
      console.log(`append ${label}: Partition.append / fs.writeSync throughput ratio = ${ratio.toFixed(3)} (target >= 0.9)`);
    }
  } finally {
    for (const close of closers) await close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
