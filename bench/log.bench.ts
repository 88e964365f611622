/**
 * @module bench/log.bench
 * Storage engine micro-benchmarks (mitata), each against a baseline in the same run:
 *
 * - append: Partition.append of 16 KiB and 1 MiB batches vs plain fs.writeSync of the same
 *   bytes to one file; reported as a throughput ratio (target >= 0.9).
 * - lookup: Partition.read at random offsets in a partition of 10,000 segments (fd cache
 *   misses included), and OffsetIndex floor lookups in one index of a full 1 GiB segment.
 * - preallocation: Partition.append with segment preallocation (16 MiB steps, the default) vs
 *   without (preallocateBytesMax 0), interleaved; the ratios of wall time and of the process's
 *   system CPU time (pwrite's kernel cost is what preallocation cuts).
 *
 * The bodies are exported so test/log/bench-smoke.test.ts runs each at a tiny size.
 * Full size: `bun bench/log.bench.ts` (set BENCH_DIR to pick the disk; default os.tmpdir());
 * `bun bench/log.bench.ts preallocate` runs only the preallocation comparison.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bench, do_not_optimize, group, run } from "mitata";
import { encodeBatch } from "../src/format/record-batch.ts";
import type { LogManager, Partition } from "../src/log/api.ts";
import { openLogManager } from "../src/log/log-manager.ts";
import { OffsetIndex } from "../src/log/offset-index.ts";
import { PREALLOCATE_BYTES_MAX_DEFAULT } from "../src/log/preallocation.ts";
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
export async function partitionAppender(
  directory: string,
  batch: Uint8Array,
  keepBytes: number,
  options: { preallocateBytesMax?: number; segmentBytes?: number } = {},
): Promise<Appender & { partition: Partition; manager: LogManager }> {
  const segmentBytes = options.segmentBytes ?? segmentBytesFor(keepBytes);
  const preallocateBytesMax = options.preallocateBytesMax ?? PREALLOCATE_BYTES_MAX_DEFAULT;
  const manager = await openLogManager({ dataDir: directory, preallocateBytesMax, topicDefaults: { "segment.bytes": segmentBytes, "retention.bytes": keepBytes } });
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

/** A monotonic counter read before and after a run of steps: wall time by default. */
export type Meter = () => number;
const wallNs: Meter = () => Bun.nanoseconds();
/** System CPU time of this process in µs: where a pwrite's kernel work is charged. */
export const systemCpuUs: Meter = () => process.cpuUsage().system;

/**
 * Throughput ratio candidate/baseline from interleaved rounds: each round measures `steps` of
 * one then `steps` of the other (the order alternates), so page-cache writeback and other
 * load fall on both alike. Returns the median of the per-round ratios (baseline cost /
 * candidate cost, by `meter`), with the spread, and each side's total cost.
 */
export function interleavedRatio(
  candidate: Appender,
  baseline: Appender,
  rounds: number,
  steps: number,
  meter: Meter = wallNs,
): { median: number; min: number; max: number; candidateTotal: number; baselineTotal: number } {
  const time = (appender: Appender) => {
    const started = meter();
    for (let i = 0; i < steps; i++) appender.step();
    // A counter that did not move (coarse CPU accounting) would divide by zero.
    return Math.max(meter() - started, 1);
  };
  const ratios: number[] = [];
  let candidateTotal = 0;
  let baselineTotal = 0;
  for (let round = 0; round < rounds; round++) {
    const baselineFirst = round % 2 === 0;
    const baselineNs = baselineFirst ? time(baseline) : 0;
    const candidateNs = time(candidate);
    const laterBaselineNs = baselineFirst ? baselineNs : time(baseline);
    ratios.push(laterBaselineNs / candidateNs);
    candidateTotal += candidateNs;
    baselineTotal += laterBaselineNs;
  }
  ratios.sort((a, b) => a - b);
  return { median: ratios[Math.floor(ratios.length / 2)]!, min: ratios[0]!, max: ratios[ratios.length - 1]!, candidateTotal, baselineTotal };
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

/**
 * Append with preallocation (`preallocateBytesMax`) vs without, interleaved: the wall-time and
 * system-CPU ratios (without / with: above 1 means preallocation is cheaper). Segments are
 * `segmentBytes` (1 GiB, the default, in the full run: big enough that nothing rolls, so no
 * background fdatasync of a rolled segment lands on either side's CPU time).
 */
export async function preallocationComparison(root: string, batchBytes: number, segmentBytes: number, rounds: number, steps: number, preallocateBytesMax = PREALLOCATE_BYTES_MAX_DEFAULT) {
  const batch = batchOfSize(batchBytes);
  const keepBytes = 4 * segmentBytes;
  const withPreallocation = await partitionAppender(path.join(root, `pre-on-${batchBytes}`), batch, keepBytes, { preallocateBytesMax, segmentBytes });
  const without = await partitionAppender(path.join(root, `pre-off-${batchBytes}`), batch.slice(), keepBytes, { preallocateBytesMax: 0, segmentBytes });
  try {
    // Half the rounds measure wall time, half system CPU, alternating, so both see the same load.
    const half = Math.max(1, Math.floor(rounds / 2));
    const wall = interleavedRatio(withPreallocation, without, half, steps);
    const systemCpu = interleavedRatio(withPreallocation, without, half, steps, systemCpuUs);
    return { wall, systemCpu, bytesEach: withPreallocation.bytesWritten, partition: withPreallocation.partition };
  } finally {
    await withPreallocation.close();
    await without.close();
  }
}

async function comparePreallocation(root: string): Promise<void> {
  for (const batchBytes of [64 * KiB, MiB]) {
    // 20 rounds of 32 MiB: 640 MiB per side, inside one 1 GiB segment.
    const steps = Math.floor((32 * MiB) / batchBytes);
    const rounds = 20;
    const { wall, systemCpu } = await preallocationComparison(root, batchBytes, 1024 * MiB, rounds, steps);
    const label = `append ${batchBytes / KiB} KiB batches, with vs without preallocation`;
    const gibEach = ((rounds / 2) * steps * batchBytes) / (1024 * MiB);
    const perGib = (totalUs: number) => (totalUs / 1e6 / gibEach).toFixed(3);
    console.log(`${label}: system CPU per GiB appended: with ${perGib(systemCpu.candidateTotal)} s, without ${perGib(systemCpu.baselineTotal)} s`);
    console.log(`${label}: wall ratio median of ${rounds / 2} rounds of ${steps} = ${wall.median.toFixed(3)} (spread ${wall.min.toFixed(2)}..${wall.max.toFixed(2)})`);
    console.log(`${label}: system-CPU ratio median of ${rounds / 2} rounds = ${systemCpu.median.toFixed(3)} (spread ${systemCpu.min.toFixed(2)}..${systemCpu.max.toFixed(2)}; > 1 = preallocation cheaper)`);
  }
}

function meanNs(result: Awaited<ReturnType<typeof run>>, name: string): number {
  const trial = result.benchmarks.find((item) => item.alias === name);
  const stats = trial?.runs[0]?.stats;
  if (!stats) throw new Error(`no result for ${name}`);
  return stats.avg;
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "runnel-bench-"));
  if (process.argv[2] === "preallocate") {
    try {
      await comparePreallocation(root);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
    return;
  }
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
    await comparePreallocation(root);
  } finally {
    for (const close of closers) await close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
