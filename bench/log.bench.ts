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
  const segmentBytes = segmentBytesFor(keepBytes);
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

/**
 * The baseline: fs.writeSync of the same bytes, with the same file lifecycle as the partition
 * (a new file every `segmentBytes`, the oldest unlinked beyond `keepBytes`), so the ratio
 * measures the engine's own overhead and not a difference in how files are reused.
 */
export function writeSyncAppender(directory: string, batch: Uint8Array, keepBytes: number): Appender {
  const segmentBytes = segmentBytesFor(keepBytes);
  fs.mkdirSync(directory, { recursive: true });
  const files: string[] = [];
  let fd = -1;
  let position = segmentBytes;
  let bytesWritten = 0;
  const roll = () => {
    if (fd >= 0) fs.closeSync(fd);
    const file = path.join(directory, `${String(bytesWritten).padStart(20, "0")}.log`);
    fd = fs.openSync(file, "w+");
    files.push(file);
    position = 0;
    while (files.length * segmentBytes > keepBytes + segmentBytes) fs.rmSync(files.shift()!, { force: true });
  };
  return {
    get bytesWritten() {
      return bytesWritten;
    },
    step() {
      if (position + batch.length > segmentBytes) roll();
      fs.writeSync(fd, batch, 0, batch.length, position);
      position += batch.length;
      bytesWritten += batch.length;
    },
    close: async () => {
      if (fd >= 0) fs.closeSync(fd);
    },
  };
}

function segmentBytesFor(keepBytes: number): number {
  return Math.max(4 * KiB, Math.min(64 * MiB, Math.floor(keepBytes / 4)));
}

/**
 * Throughput ratio candidate/baseline from interleaved rounds: each round times `steps` of
 * one then `steps` of the other (the order alternates), so page-cache writeback and other
 * load fall on both alike. Returns the median of the per-round ratios, with the spread.
 */
export function interleavedRatio(candidate: Appender, baseline: Appender, rounds: number, steps: number): { median: number; min: number; max: number } {
  const time = (appender: Appender) => {
    const started = Bun.nanoseconds();
    for (let i = 0; i < steps; i++) appender.step();
    return Bun.nanoseconds() - started;
  };
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const baselineFirst = round % 2 === 0;
    const baselineNs = baselineFirst ? time(baseline) : 0;
    const candidateNs = time(candidate);
    const laterBaselineNs = baselineFirst ? baselineNs : time(baseline);
    ratios.push(laterBaselineNs / candidateNs);
  }
  ratios.sort((a, b) => a - b);
  return { median: ratios[Math.floor(ratios.length / 2)]!, min: ratios[0]!, max: ratios[ratios.length - 1]! };
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
      console.log(`append ${label}: Partition.append / fs.writeSync throughput ratio (mitata means) = ${ratio.toFixed(3)} (target >= 0.9)`);
    }
    for (const { label, bytes } of sizes) {
      const batch = batchOfSize(bytes);
      const viaPartition = await partitionAppender(path.join(root, `ip-${bytes}`), batch, keepBytes);
      const viaWriteSync = writeSyncAppender(path.join(root, `iw-${bytes}`), batch.slice(), keepBytes);
      closers.push(() => viaPartition.close(), () => viaWriteSync.close());
      const steps = Math.max(8, Math.floor((32 * MiB) / bytes));
      const { median, min, max } = interleavedRatio(viaPartition, viaWriteSync, 21, steps);
      console.log(`append ${label}: interleaved ratio, median of 21 rounds of ${steps} batches = ${median.toFixed(3)} (spread ${min.toFixed(2)}..${max.toFixed(2)}; target >= 0.9)`);
    }
  } finally {
    for (const close of closers) await close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
