/**
 * @module bench/log-recovery
 * Recovery time against log size: a partition with 1 GiB of flushed log plus a 64 MiB
 * unflushed tail, against 2 GiB flushed plus the same tail. The two should be within 20%:
 * recovery reads only what follows the recovery point.
 *
 * A child process writes each log and exits without closing (an unclean stop). Before
 * timing, every file is fsync'd and its pages dropped (posix_fadvise DONTNEED), so both
 * runs read from disk rather than the page cache.
 *
 * usage: bun bench/log-recovery.ts [--scale 1]      (--scale 0.001 for a smoke run)
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { libc, FADVISE } from "../src/native/libc.ts";
import { openLogManager } from "../src/log/log-manager.ts";
import { GiB, MiB } from "../src/limits.ts";
import { batchOfSize } from "./log.bench.ts";

export interface RecoveryRun {
  flushedBytes: number;
  tailBytes: number;
  recoveryMs: number;
  bytesScanned: number;
  nextOffset: number;
}

/** Child mode: writes `flushedBytes`, flushes, writes `tailBytes`, exits without closing. */
async function writeUncleanLog(directory: string, flushedBytes: number, tailBytes: number): Promise<never> {
  const manager = await openLogManager({ dataDir: directory, topicDefaults: { "segment.bytes": 256 * MiB } });
  manager.createTopic("recovery", { partitions: 1 });
  const partition = manager.partition("recovery", 0);
  const batch = batchOfSize(Math.min(16 * 1024, Math.max(256, Math.floor(tailBytes / 4))));
  let written = 0;
  while (written < flushedBytes) {
    partition.append(batch);
    written += batch.length;
  }
  partition.flush();
  let tail = 0;
  while (tail < tailBytes) {
    partition.append(batch);
    tail += batch.length;
  }
  process.exit(0); // no close(): the stop is unclean and the tail stays unflushed
}

/** fsyncs every file under `directory` and drops its pages from the page cache. */
function dropCaches(directory: string): void {
  for (const entry of fs.readdirSync(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const fd = fs.openSync(path.join(entry.parentPath, entry.name), "r");
    try {
      fs.fsyncSync(fd);
      libc.fadvise(fd, 0, 0, FADVISE.DONTNEED);
    } finally {
      fs.closeSync(fd);
    }
  }
}

export async function measureRecovery(directory: string, flushedBytes: number, tailBytes: number): Promise<RecoveryRun> {
  const child = Bun.spawnSync([process.execPath, import.meta.path, "--write", directory, String(flushedBytes), String(tailBytes)], { stderr: "pipe" });
  if (child.exitCode !== 0) throw new Error(`writer failed: ${child.stderr.toString()}`);
  dropCaches(directory);
  const started = performance.now();
  const manager = await openLogManager({ dataDir: directory });
  const recoveryMs = performance.now() - started;
  if (manager.recovery.clean) throw new Error("expected an unclean stop");
  const bytesScanned = manager.recovery.bytesScanned;
  const nextOffset = manager.partition("recovery", 0).nextOffset;
  await manager.close();
  return { flushedBytes, tailBytes, recoveryMs, bytesScanned, nextOffset };
}

export async function compareRecovery(root: string, scale: number): Promise<{ small: RecoveryRun; large: RecoveryRun; ratio: number }> {
  const tail = Math.round(64 * MiB * scale);
  // Warm-up: the first open in a process pays for module loading and JIT; measure after it.
  await measureRecovery(path.join(root, "warmup"), 64 * 1024, 64 * 1024);
  fs.rmSync(path.join(root, "warmup"), { recursive: true, force: true });
  const small = await measureRecovery(path.join(root, "small"), Math.round(GiB * scale), tail);
  fs.rmSync(path.join(root, "small"), { recursive: true, force: true });
  const large = await measureRecovery(path.join(root, "large"), Math.round(2 * GiB * scale), tail);
  fs.rmSync(path.join(root, "large"), { recursive: true, force: true });
  return { small, large, ratio: large.recoveryMs / small.recoveryMs };
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--write") {
    await writeUncleanLog(argv[1]!, Number(argv[2]), Number(argv[3]));
    return;
  }
  const scaleAt = argv.indexOf("--scale");
  const scale = scaleAt >= 0 ? Number(argv[scaleAt + 1]) : 1;
  if (!(scale > 0 && scale <= 4)) throw new Error("--scale must be in (0, 4]");
  const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "runnel-recovery-"));
  try {
    const { small, large, ratio } = await compareRecovery(root, scale);
    for (const item of [small, large]) {
      console.log(`flushed ${(item.flushedBytes / MiB).toFixed(1)} MiB + tail ${(item.tailBytes / MiB).toFixed(1)} MiB: recovery ${item.recoveryMs.toFixed(1)} ms, scanned ${(item.bytesScanned / MiB).toFixed(1)} MiB`);
    }
    console.log(`ratio (2x log / 1x log) = ${ratio.toFixed(3)} (target within 20%: 0.8 .. 1.2)`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) await main(process.argv.slice(2));
