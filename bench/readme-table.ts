/**
 * Re-measures the README's performance table (README.md, "Performance"): runs each row's
 * `runnel bench ...` command `--rounds` times (default 3), rows interleaved round by round so a
 * burst of load from elsewhere spreads over every row rather than sinking one, and prints a
 * markdown table of each figure's median with the min–max spread, ready to paste.
 *
 *   bun bench/readme-table.ts                       full size (tens of minutes on 2 cores)
 *   bun bench/readme-table.ts --scale 0.02 --rounds 1      a quick check that every row runs
 *   bun bench/readme-table.ts --only e2e            rows whose name contains "e2e"
 *   bun bench/readme-table.ts --with-rss            also the 10 GB peak-RSS row (long)
 *
 * `--scale F` multiplies each row's --messages and --duration (at least 1 s), for smoke runs;
 * the README's figures are taken at scale 1. Each run writes `--json` to a temp file, read back
 * here; a run that fails is reported in the table's cell, not hidden. The Kafka row has its own
 * rounds and medians (`runnel bench kafka --embedded`) and is not repeated here.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runnelCommand } from "../src/bench/embedded-broker.ts";

/** The fields of `runnel bench --json` a row reads (src/cli/bench.ts writeOutputs). */
export interface BenchDocument {
  messagesPerSecond: number;
  megabytesPerSecond: number;
  latencyMs: { p50: number; p99: number; p99_99: number } | null;
  /** e2e: the same pace through a bare relay, same run (src/bench/latency-floor.ts). */
  latencyFloorMs?: { p50: number; p99: number; p99_99: number } | null;
  /** The ceiling measured in the same run and the run's ratio to it (src/bench/report.ts). */
  ceiling: { name: string; ratio: number } | null;
  broker: { peakRssBytes: number } | null;
  failures: number;
}

/** One figure of a row: its label and how it is read from a run's document. */
interface Figure {
  label: string;
  read: (document: BenchDocument) => number;
  format: (value: number) => string;
}

export interface Row {
  name: string;
  args: string[];
  figures: Figure[];
  /** Left out unless asked for (--with-rss): minutes of disk traffic. */
  optional?: boolean;
}

const millions = (value: number): string => `${(value / 1e6).toFixed(2)}M`;
const megabytes = (value: number): string => value.toFixed(0);
const gigabytes = (value: number): string => (value / 1000).toFixed(2);
const milliseconds = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(0));

const MSGS: Figure = { label: "msgs/s", read: (document) => document.messagesPerSecond, format: millions };
const MBS: Figure = { label: "MB/s", read: (document) => document.megabytesPerSecond, format: megabytes };
const GBS: Figure = { label: "GB/s", read: (document) => document.megabytesPerSecond, format: gigabytes };
const latency = (label: "p50" | "p99" | "p99_99"): Figure => ({
  label: `${label.replace("_", ".")} ms`,
  read: (document) => document.latencyMs?.[label] ?? Number.NaN,
  format: milliseconds,
});
/** The machine's own floor at the row's pace, and the row's p99 over it, per run. */
const floor = (label: "p99" | "p99_99"): Figure => ({
  label: `floor ${label.replace("_", ".")} ms`,
  read: (document) => document.latencyFloorMs?.[label] ?? Number.NaN,
  format: milliseconds,
});
const OVER_FLOOR: Figure = {
  label: "p99 / floor p99",
  read: (document) => (document.latencyMs?.p99 ?? Number.NaN) / (document.latencyFloorMs?.p99 ?? Number.NaN),
  format: (value) => `${value.toFixed(1)}x`,
};
const OF_SENDFILE: Figure = {
  label: "% of the ceiling in the same run (loopback sendfile)",
  read: (document) => (document.ceiling === null ? Number.NaN : 100 * document.ceiling.ratio),
  format: (value) => value.toFixed(0),
};
const PEAK_RSS: Figure = { label: "broker peak RSS MB", read: (document) => (document.broker?.peakRssBytes ?? Number.NaN) / 1e6, format: megabytes };

/** The README table's rows and the commands that produced them (README.md, "Performance"). */
export const ROWS: readonly Row[] = [
  { name: "produce 100 B, written, 1 producer, 1 partition", args: ["produce", "--messages", "5000000", "--size", "100", "--no-ceiling"], figures: [MSGS] },
  {
    name: "produce 1 KiB, 4 partitions, 2 producers, 1 MiB batches",
    args: ["produce", "--messages", "2000000", "--size", "1024", "--partitions", "4", "--producers", "2", "--batch-bytes", "1048576", "--no-ceiling"],
    figures: [GBS],
  },
  { name: "produce 1 KiB, 4 partitions, defaults", args: ["produce", "--messages", "1000000", "--size", "1024", "--partitions", "4", "--no-ceiling"], figures: [MBS] },
  {
    name: "produce 100 B, synced, 4 producers, 4 partitions",
    args: ["produce", "--messages", "3000000", "--size", "100", "--producers", "4", "--partitions", "4", "--durability", "synced", "--no-ceiling"],
    figures: [MSGS],
  },
  { name: "consume 100 B, decoded by the client", args: ["consume", "--messages", "5000000", "--size", "100", "--no-ceiling"], figures: [MSGS] },
  { name: "raw fetch, 1 MiB fetches", args: ["consume", "--raw", "--size", "1024", "--fetch-bytes", "1048576", "--messages", "4000000"], figures: [GBS, OF_SENDFILE] },
  {
    name: "e2e 100 B at 100,000 msgs/s, linger 0",
    args: ["e2e", "--rate", "100000", "--duration", "10", "--linger-ms", "0", "--no-ceiling"],
    figures: [latency("p50"), latency("p99"), latency("p99_99"), floor("p99"), floor("p99_99"), OVER_FLOOR],
  },
  {
    name: "e2e 1 KiB at 20,000 msgs/s, linger 0",
    args: ["e2e", "--rate", "20000", "--size", "1024", "--duration", "10", "--linger-ms", "0", "--no-ceiling"],
    figures: [latency("p50"), latency("p99"), latency("p99_99"), floor("p99"), floor("p99_99"), OVER_FLOOR],
  },
  {
    name: "broker peak RSS, 10 GB produced then consumed",
    args: ["consume", "--partitions", "4", "--size", "1024", "--messages", "10000000", "--no-ceiling"],
    figures: [PEAK_RSS],
    optional: true,
  },
];

/** `args` with --messages and --duration multiplied by `scale` (messages >= 1000, duration >= 1 s). */
export function scaledArgs(args: readonly string[], scale: number): string[] {
  const scaled = [...args];
  for (let index = 0; index < scaled.length - 1; index++) {
    const value = Number(scaled[index + 1]);
    if (scaled[index] === "--messages") scaled[index + 1] = String(Math.max(1000, Math.round(value * scale)));
    if (scaled[index] === "--duration") scaled[index + 1] = String(Math.max(1, Math.round(value * scale)));
  }
  return scaled;
}

/** "median (min–max)" of the finite values, formatted; the failures named when there are none. */
export function summarize(values: readonly number[], format: (value: number) => string): string {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (finite.length === 0) return "no result";
  const median = finite[Math.floor((finite.length - 1) / 2)]!;
  const spread = finite.length > 1 ? ` (${format(finite[0]!)}–${format(finite[finite.length - 1]!)})` : "";
  const missing = values.length - finite.length;
  return `${format(median)}${spread}${missing > 0 ? `, ${missing} of ${values.length} runs failed` : ""}`;
}

/** Runs `runnel bench <args> --embedded --json <temp>` once; null when it failed (its stderr tail is printed). */
function runOnce(args: readonly string[]): BenchDocument | null {
  const jsonPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "runnel-readme-")), "result.json");
  try {
    const child = Bun.spawnSync(runnelCommand(["bench", ...args, "--embedded", "--json", jsonPath]), { stdout: "ignore", stderr: "pipe" });
    if (child.exitCode !== 0 || !fs.existsSync(jsonPath)) {
      process.stderr.write(`readme-table: runnel bench ${args.join(" ")} exited with ${child.exitCode}: ${child.stderr.toString().slice(-400)}\n`);
      return null;
    }
    const document = JSON.parse(fs.readFileSync(jsonPath, "utf8")) as BenchDocument;
    return document.failures > 0 ? null : document;
  } finally {
    fs.rmSync(path.dirname(jsonPath), { recursive: true, force: true });
  }
}

export interface TableOptions {
  rounds: number;
  scale: number;
  rows: readonly Row[];
  /** Called after each run, for progress on stderr. */
  onRun?: (row: Row, round: number, document: BenchDocument | null) => void;
}

/** Every row `rounds` times, interleaved; returns the markdown table. */
export function measureTable(options: TableOptions): string {
  const documents = new Map<Row, Array<BenchDocument | null>>(options.rows.map((row) => [row, []]));
  for (let round = 0; round < options.rounds; round++) {
    for (const row of options.rows) {
      const document = runOnce(scaledArgs(row.args, options.scale));
      documents.get(row)!.push(document);
      options.onRun?.(row, round, document);
    }
  }
  const lines = [
    `| workload | figure | median (min–max) of ${options.rounds} | command |`,
    "|---|---|---|---|",
  ];
  for (const row of options.rows) {
    const runs = documents.get(row)!;
    const command = `\`runnel bench ${scaledArgs(row.args, options.scale).join(" ")} --embedded\``;
    for (const figure of row.figures) {
      const values = runs.map((document) => (document === null ? Number.NaN : figure.read(document)));
      lines.push(`| ${row.name} | ${figure.label} | ${summarize(values, figure.format)} | ${command} |`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function flagValue(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const rounds = Number(flagValue(argv, "--rounds") ?? 3);
  const scale = Number(flagValue(argv, "--scale") ?? 1);
  const only = flagValue(argv, "--only");
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20 || !(scale > 0 && scale <= 10)) {
    process.stderr.write("usage: bun bench/readme-table.ts [--rounds 1..20] [--scale 0..10] [--only TEXT] [--with-rss]\n");
    process.exit(2);
  }
  const rows = ROWS.filter((row) => (argv.includes("--with-rss") || row.optional !== true) && (only === undefined || row.name.includes(only)));
  const startedMs = Date.now();
  const table = measureTable({
    rounds,
    scale,
    rows,
    onRun: (row, round, document) => process.stderr.write(`round ${round + 1}/${rounds}: ${row.name}: ${document === null ? "failed" : "done"} (${((Date.now() - startedMs) / 1000).toFixed(0)} s)\n`),
  });
  const load = os.loadavg().map((value) => value.toFixed(1)).join(" ");
  process.stdout.write(`\nMeasured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} cores, load average ${load} at the end, scale ${scale}, ${rounds} rounds:\n\n${table}`);
}
