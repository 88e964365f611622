/**
 * @module bench/defaults-ratio
 * Issue 17 part 2: "defaults within 80% of the best tuned figure in the same run". Produces
 * 1 KiB messages to 4 partitions with the producer's defaults (1 producer) and tuned (2
 * producers, 1 MiB batches), interleaved round by round, each run in a fresh process with its
 * own embedded broker, and prints per run:
 *
 * - MB/s (noisy on a shared machine: read the per-round ratio defaults / tuned);
 * - producer CPU-seconds per GB: this process's CPU time (`process.cpuUsage`, the producers
 *   run here) over the measured phase only (start-up and the broker's data-dir removal are
 *   outside it) — a figure that survives load;
 * - broker CPU-seconds per GB over the same phase, broker peak RSS, producer peak RSS.
 *
 *   bun bench/defaults-ratio.ts [--rounds 3] [--messages 1000000]
 *   bun bench/defaults-ratio.ts --source /path/to/base-checkout --source .   (base and new, interleaved too)
 *   bun bench/defaults-ratio.ts --setup defaults --setup one-1m               (other setups, see SETUPS)
 *   perf stat -e instructions,page-faults bun bench/defaults-ratio.ts --child SOURCE defaults 2000000 --broker HOST:PORT
 *                                                   (one run against a running broker: counts that survive load)
 *
 * Each `--source` is a checkout whose src/bench code (and so whose client and broker) is run;
 * default: this checkout.
 */
import * as os from "node:os";
import * as path from "node:path";

/** One configuration's flags, as `runnel bench produce` would take them. */
interface Setup {
  name: string;
  producers: number;
  /** null: the client's default (adaptive). */
  batchBytes: number | null;
}

const SETUPS: readonly Setup[] = [
  { name: "defaults", producers: 1, batchBytes: null },
  { name: "tuned", producers: 2, batchBytes: 1024 * 1024 },
  // For finding what bounds the defaults (--setup NAME): one producer with a fixed bound.
  { name: "one-256k", producers: 1, batchBytes: 256 * 1024 },
  { name: "one-1m", producers: 1, batchBytes: 1024 * 1024 },
];
/** Run unless --setup names others. */
const SETUPS_DEFAULT = ["defaults", "tuned"];

interface RunFigures {
  megabytesPerSecond: number;
  producerCpuSecondsPerGb: number;
  brokerCpuSecondsPerGb: number;
  brokerPeakRssMb: number;
  producerPeakRssMb: number;
  failures: number;
}

/**
 * The child's part: one run of `setup` with the code of `source`, figures as JSON on stdout.
 * `broker`: produce to that running broker instead of an embedded one (so `perf stat` on the
 * child counts the producer alone); its figures are then NaN.
 */
async function runChild(source: string, setup: Setup, messages: number, broker: string | undefined): Promise<RunFigures> {
  const workloads = (await import(path.join(source, "src/bench/workloads.ts"))) as typeof import("../src/bench/workloads.ts");
  const embeddedModule = (await import(path.join(source, "src/bench/embedded-broker.ts"))) as typeof import("../src/bench/embedded-broker.ts");
  const embedded = broker === undefined ? await embeddedModule.startEmbeddedBroker() : { address: broker, usage: () => null, stop: async () => null };
  try {
    const topic = `defaults-ratio-${Date.now().toString(36)}`;
    await workloads.ensureTopic(embedded.address, topic, 4);
    const meter = new workloads.Meter();
    let cpuStart: NodeJS.CpuUsage | null = null;
    let brokerStart = 0;
    meter.onStart = () => {
      cpuStart = process.cpuUsage();
      brokerStart = embedded.usage()?.cpuSeconds ?? Number.NaN;
    };
    const result = await workloads.runProduce(
      {
        broker: embedded.address, topic, messages, durationS: null, sizeBytes: 1024, partitions: 4, producers: setup.producers, consumers: 1,
        batchBytes: setup.batchBytes, lingerMs: 5, maxInFlight: 5, durability: "written", rate: null, seed: 1, raw: false, fetchBytes: 1024 * 1024,
      },
      meter,
    );
    const cpu = process.cpuUsage(cpuStart ?? undefined);
    const broker = embedded.usage();
    const gigabytes = result.bytes / 1e9;
    return {
      megabytesPerSecond: result.bytes / 1e6 / result.seconds,
      producerCpuSecondsPerGb: (cpu.user + cpu.system) / 1e6 / gigabytes,
      brokerCpuSecondsPerGb: ((broker?.cpuSeconds ?? Number.NaN) - brokerStart) / gigabytes,
      brokerPeakRssMb: (broker?.peakRssBytes ?? Number.NaN) / 1e6,
      producerPeakRssMb: process.resourceUsage().maxRSS / 1024,
      failures: result.failures,
    };
  } finally {
    await embedded.stop();
  }
}

function flagValues(argv: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let index = 0; index < argv.length - 1; index++) if (argv[index] === name) values.push(argv[index + 1]!);
  return values;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function summary(values: readonly number[], digits: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `${median(sorted).toFixed(digits)} (${sorted[0]!.toFixed(digits)}-${sorted[sorted.length - 1]!.toFixed(digits)})`;
}

function spawnRun(source: string, setup: Setup, messages: number): RunFigures | null {
  const child = Bun.spawnSync([process.execPath, import.meta.path, "--child", source, setup.name, String(messages)], { stdout: "pipe", stderr: "pipe" });
  if (child.exitCode !== 0) {
    process.stderr.write(`defaults-ratio: ${setup.name} (${source}) exited with ${child.exitCode}: ${child.stderr.toString().slice(-400)}\n`);
    return null;
  }
  return JSON.parse(child.stdout.toString()) as RunFigures;
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === "--child") {
    const setup = SETUPS.find((candidate) => candidate.name === argv[2])!;
    process.stdout.write(JSON.stringify(await runChild(path.resolve(argv[1]!), setup, Number(argv[3]), flagValues(argv, "--broker")[0])));
    return;
  }
  const rounds = Number(flagValues(argv, "--rounds")[0] ?? 3);
  const messages = Number(flagValues(argv, "--messages")[0] ?? 1_000_000);
  const sources = flagValues(argv, "--source").map((source) => path.resolve(source));
  const named = flagValues(argv, "--setup");
  const setups = SETUPS.filter((setup) => (named.length > 0 ? named : SETUPS_DEFAULT).includes(setup.name));
  if (sources.length === 0) sources.push(path.resolve(import.meta.dir, ".."));
  const runs = new Map<string, RunFigures[]>();
  const ratios = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const source of sources) {
      const figures: Record<string, RunFigures | null> = {};
      for (const setup of setups) {
        const run = spawnRun(source, setup, messages);
        figures[setup.name] = run;
        if (run === null) continue;
        const key = `${source} ${setup.name}`;
        runs.set(key, [...(runs.get(key) ?? []), run]);
        process.stderr.write(`round ${round + 1} ${key}: ${run.megabytesPerSecond.toFixed(0)} MB/s, producer ${run.producerCpuSecondsPerGb.toFixed(2)} CPU-s/GB, broker ${run.brokerCpuSecondsPerGb.toFixed(2)} CPU-s/GB, broker peak RSS ${run.brokerPeakRssMb.toFixed(0)} MB\n`);
      }
      if (figures.defaults && figures.tuned) ratios.set(source, [...(ratios.get(source) ?? []), figures.defaults.megabytesPerSecond / figures.tuned.megabytesPerSecond]);
    }
  }
  const load = os.loadavg().map((value) => value.toFixed(1)).join(" ");
  const lines = [`\n${rounds} rounds, ${messages} x 1 KiB, 4 partitions; load average ${load} at the end; medians (min-max)\n`];
  lines.push("| source | setup | MB/s | producer CPU-s/GB | broker CPU-s/GB | broker peak RSS MB | producer peak RSS MB |", "|---|---|---|---|---|---|---|");
  for (const [key, list] of runs) {
    const [source, setup] = key.split(" ");
    lines.push(`| ${source} | ${setup} | ${summary(list.map((run) => run.megabytesPerSecond), 0)} | ${summary(list.map((run) => run.producerCpuSecondsPerGb), 2)} | ${summary(list.map((run) => run.brokerCpuSecondsPerGb), 2)} | ${summary(list.map((run) => run.brokerPeakRssMb), 0)} | ${summary(list.map((run) => run.producerPeakRssMb), 0)} |`);
  }
  for (const [source, list] of ratios) lines.push(`\nratio defaults / tuned per round, ${source}: ${list.map((ratio) => ratio.toFixed(2)).join(", ")}; median ${summary(list, 2)}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main(process.argv.slice(2));
