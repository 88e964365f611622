/**
 * @module bench/memory
 * Issue 17 part 3: the broker's memory while it takes a tuned produce of N GB and serves it back.
 * Starts a broker child (`runnel serve`, temp data dir), produces N GB through `--producers 2
 * --batch-bytes 1048576` (the tuned run of `runnel bench produce`), then consumes it all (raw
 * fetches), sampling the child every 250 ms: RSS split into anonymous and file-backed pages
 * (/proc/PID/status), and from its /metrics the JS heap, the bytes held by ArrayBuffers and the
 * segment-index bytes in memory. Prints peak and end figures per phase and the log's index file
 * bytes (what an index held whole in memory per segment would cost).
 *
 *   bun bench/memory.ts [GB=2] [message bytes=100] [batch bytes=1048576] [-- extra `runnel serve` flags]
 *   bun bench/memory.ts 1 100 4096   small batches: one index entry per batch, the most there can be
 *   bun bench/memory.ts 2 --smol     the broker under `bun --smol` (a smaller, more often collected heap)
 *   bun bench/memory.ts 0.2          the same run at a tenth: RSS must not grow with the log
 *   bun bench/memory.ts 2 --compare /work/wt/memory-base [--rounds 3]
 *                                    same-run baseline: runs this bench of that checkout (its broker, its
 *                                    code) and of this one in turn, round by round, and prints the medians
 *                                    (min-max) of peak RSS, end RSS, produce MB/s and broker CPU-s per GB
 */
import fs from "node:fs";
import path from "node:path";
import { type EmbeddedBroker, startEmbeddedBroker } from "../src/bench/embedded-broker.ts";
import { Admin } from "../src/client/admin.ts";
import { ensureTopic, Meter, runConsume, runProduce, type WorkloadOptions } from "../src/bench/workloads.ts";
import { MiB } from "../src/limits.ts";

const SAMPLE_INTERVAL_MS = 250;
const SETTLE_MS = 3_000;
const MB = 1e6;

interface Sample {
  rssBytes: number;
  anonBytes: number;
  fileBytes: number;
  heapUsedBytes: number;
  heapSizeBytes: number;
  arrayBuffersBytes: number;
  indexBytes: number;
}

const FIELDS: (keyof Sample)[] = ["rssBytes", "anonBytes", "fileBytes", "heapUsedBytes", "heapSizeBytes", "arrayBuffersBytes", "indexBytes"];
const LABELS: Record<keyof Sample, string> = {
  rssBytes: "RSS",
  anonBytes: "  anonymous (heap, mimalloc, JIT)",
  fileBytes: "  file-backed (bun executable)",
  heapUsedBytes: "JS heap in use",
  heapSizeBytes: "JS heap size",
  arrayBuffersBytes: "ArrayBuffer bytes",
  indexBytes: "segment indexes in memory (KB)",
};

function statusKib(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

function metric(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return match === null ? 0 : Number(match[1]);
}

async function sample(broker: EmbeddedBroker): Promise<Sample | null> {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${broker.pid}/status`, "utf8");
  } catch {
    return null;
  }
  const metrics = broker.httpAddress === null ? "" : await fetch(`http://${broker.httpAddress}/metrics`).then((response) => response.text()).catch(() => "");
  return {
    rssBytes: statusKib(status, "VmRSS"),
    anonBytes: statusKib(status, "RssAnon"),
    fileBytes: statusKib(status, "RssFile"),
    heapUsedBytes: metric(metrics, "runnel_heap_used_bytes"),
    heapSizeBytes: metric(metrics, "runnel_heap_size_bytes"),
    arrayBuffersBytes: metric(metrics, "runnel_array_buffers_bytes"),
    indexBytes: metric(metrics, "runnel_log_index_memory_bytes"),
  };
}

/** Samples the broker until stopped; keeps each field's peak and the last sample. */
class Sampler {
  peak: Sample | null = null;
  last: Sample | null = null;
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly broker: EmbeddedBroker) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const current = await sample(this.broker);
      if (current !== null) {
        this.last = current;
        const peak = this.peak ?? { ...current };
        for (const field of FIELDS) peak[field] = Math.max(peak[field], current[field]);
        this.peak = peak;
      }
      await Bun.sleep(SAMPLE_INTERVAL_MS);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

function indexFileBytes(dataDir: string): number {
  let total = 0;
  const walk = (directory: string): void => {
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".index") || entry.name.endsWith(".timeindex")) total += fs.statSync(full).size;
    }
  };
  walk(dataDir);
  return total;
}

async function brokerStats(address: string): Promise<Record<string, number | string>> {
  const admin = new Admin({ broker: address, clientId: "bench-memory" });
  try {
    return await admin.stats();
  } finally {
    await admin.connection.close();
  }
}

function row(label: string, values: (number | string)[], unit = MB): string {
  return `${label.padEnd(36)}${values.map((value) => (typeof value === "number" ? (value / unit).toFixed(1) : value).padStart(14)).join("")}\n`;
}

interface RunFigures {
  peakRssMb: number;
  endRssMb: number;
  produceMbPerSecond: number;
  cpuSecondsPerGb: number;
}

/** Reads the figures a run of this bench printed (any version that prints these rows). */
function parseRun(text: string, gigabytes: number): RunFigures {
  const lastNumber = (prefix: string): number => {
    const line = text.split("\n").find((candidate) => candidate.startsWith(prefix));
    const numbers = line?.slice(prefix.length).match(/[\d.]+/g) ?? [];
    return Number(numbers.at(-1) ?? Number.NaN);
  };
  const throughput = text.split("\n").find((line) => line.startsWith("throughput MB/s"))?.match(/[\d.]+/g) ?? [];
  const cpu = /broker CPU ([\d.]+) s/.exec(text);
  // Both phases' bytes went through the broker: CPU per GB produced and consumed.
  return {
    peakRssMb: lastNumber("VmHWM"),
    endRssMb: lastNumber("RSS"),
    produceMbPerSecond: Number(throughput[0] ?? Number.NaN),
    cpuSecondsPerGb: Number(cpu?.[1] ?? Number.NaN) / (2 * gigabytes),
  };
}

function spread(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  const digits = median < 10 ? 2 : 1;
  return `${median.toFixed(digits)} (${(sorted[0] ?? 0).toFixed(digits)}-${(sorted.at(-1) ?? 0).toFixed(digits)})`;
}

/** `--compare DIR`: this bench of DIR's checkout and of this one, in turn, round by round. */
async function compare(otherCheckout: string, rounds: number, args: string[], serveArgs: string[]): Promise<void> {
  const sources = [{ name: `base (${otherCheckout})`, dir: path.resolve(otherCheckout) }, { name: "this checkout", dir: path.resolve(import.meta.dir, "..") }];
  const gigabytes = Number(args[0] ?? 2);
  const runs = new Map<string, RunFigures[]>(sources.map((source) => [source.name, []]));
  for (let round = 0; round < rounds; round++) {
    // Alternate who goes first, so neither always runs on a machine the other just warmed.
    for (const source of round % 2 === 0 ? sources : [...sources].reverse()) {
      const child = Bun.spawnSync([process.execPath, path.join(source.dir, "bench/memory.ts"), ...args, ...(serveArgs.length > 0 ? ["--", ...serveArgs] : [])], { stdout: "pipe", stderr: "inherit" });
      const text = child.stdout.toString();
      if (child.exitCode !== 0) throw new Error(`${source.name}: bench exited with ${child.exitCode}\n${text}`);
      const figures = parseRun(text, gigabytes);
      runs.get(source.name)?.push(figures);
      process.stdout.write(`round ${round + 1} ${source.name}: peak ${figures.peakRssMb} MB, end ${figures.endRssMb} MB, produce ${figures.produceMbPerSecond} MB/s, ${figures.cpuSecondsPerGb.toFixed(2)} CPU-s/GB\n`);
    }
  }
  process.stdout.write(`\nmedians of ${rounds} (min-max), ${gigabytes} GB produced and consumed\n`);
  process.stdout.write(`${"".padEnd(44)}${"peak RSS MB".padStart(20)}${"end RSS MB".padStart(20)}${"produce MB/s".padStart(22)}${"broker CPU-s/GB".padStart(20)}\n`);
  for (const [name, figures] of runs) {
    const columns = [
      spread(figures.map((run) => run.peakRssMb)).padStart(20),
      spread(figures.map((run) => run.endRssMb)).padStart(20),
      spread(figures.map((run) => run.produceMbPerSecond)).padStart(22),
      spread(figures.map((run) => run.cpuSecondsPerGb)).padStart(20),
    ];
    process.stdout.write(`${name.padEnd(44)}${columns.join("")}\n`);
  }
}

async function main(): Promise<void> {
  const separator = process.argv.indexOf("--");
  const given = separator < 0 ? process.argv.slice(2) : process.argv.slice(2, separator);
  // --smol: the broker child runs under `bun --smol` (BUN_OPTIONS reaches the child, not this process).
  const smol = given.includes("--smol");
  if (smol) process.env.BUN_OPTIONS = `${process.env.BUN_OPTIONS ?? ""} --smol`.trim();
  const serveArgs = separator < 0 ? [] : process.argv.slice(separator + 1);
  const compareAt = given.indexOf("--compare");
  if (compareAt >= 0) {
    const roundsAt = given.indexOf("--rounds");
    const rounds = roundsAt < 0 ? 3 : Number(given[roundsAt + 1]);
    const rest = given.filter((_, index) => index !== compareAt && index !== compareAt + 1 && (roundsAt < 0 || (index !== roundsAt && index !== roundsAt + 1)));
    await compare(given[compareAt + 1] ?? "", rounds, rest, serveArgs);
    return;
  }
  const args = given.filter((arg) => arg !== "--smol");
  const gigabytes = Number(args[0] ?? 2);
  const sizeBytes = Number(args[1] ?? 100);
  const batchBytes = Number(args[2] ?? 1 * MiB);
  const messages = Math.ceil((gigabytes * 1e9) / sizeBytes);
  const broker = await startEmbeddedBroker(serveArgs);
  try {
    const options: WorkloadOptions = {
      broker: broker.address, topic: "memory", messages, durationS: null, sizeBytes, partitions: 1, producers: 2, consumers: 1,
      batchBytes, lingerMs: 5, maxInFlight: 5, durability: "written", rate: null, seed: 1, raw: true, fetchBytes: 1 * MiB,
    };
    await ensureTopic(options.broker, options.topic, options.partitions);
    await Bun.sleep(SETTLE_MS);
    const idle = await sample(broker);
    const phases: { name: string; sampler: Sampler; mbPerSecond: number }[] = [];
    for (const name of ["produce", "consume"] as const) {
      const sampler = new Sampler(broker);
      const result = name === "produce" ? await runProduce(options, new Meter()) : await runConsume(options, new Meter());
      await sampler.stop();
      if (result.failures > 0) throw new Error(`${name}: ${result.failures} failures, first: ${result.firstError}`);
      phases.push({ name, sampler, mbPerSecond: result.bytes / result.seconds / MB });
    }
    await Bun.sleep(SETTLE_MS);
    const end = await sample(broker);
    const usage = broker.usage();
    const stats = await brokerStats(broker.address);
    const out: string[] = [`broker memory, ${gigabytes} GB produced (${messages.toLocaleString("en-US")} x ${sizeBytes} B, 2 producers, ${batchBytes} B batches) and consumed${smol ? "; broker under bun --smol" : ""}${serveArgs.length > 0 ? `; serve ${serveArgs.join(" ")}` : ""}\n`];
    out.push(row("MB", ["idle", ...phases.map((phase) => `${phase.name} peak`), "end"]));
    for (const field of FIELDS) out.push(row(LABELS[field], [idle?.[field] ?? 0, ...phases.map((phase) => phase.sampler.peak?.[field] ?? 0), end?.[field] ?? 0], field === "indexBytes" ? 1e3 : MB));
    out.push(row("throughput MB/s", ["", ...phases.map((phase) => phase.mbPerSecond.toFixed(1)), ""]));
    out.push(row("VmHWM (peak RSS, whole run)", ["", "", "", usage?.peakRssBytes ?? 0]));
    out.push(row("index files on disk (KB)", ["", "", "", indexFileBytes(broker.dataDir)], 1e3));
    out.push(`collections the memory budget ran: ${stats.memoryCollections}, longest ${stats.memoryCollectionMsMax} ms; broker CPU ${usage?.cpuSeconds.toFixed(1) ?? "?"} s\n`);
    process.stdout.write(out.join(""));
  } finally {
    await broker.stop();
  }
}

await main();
