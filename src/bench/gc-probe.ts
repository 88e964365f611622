/**
 * @module bench/gc-probe
 * Does the e2e tail coincide with garbage collections? (issue 17.) Set RUNNEL_BENCH_GC to a
 * directory and `runnel bench e2e` records, in each of its three processes, when the engine
 * collected, and in the consumer the time window of the slow messages and of a sample of all
 * messages; it then reports how often a slow message's window held a collection of each process,
 * against the same for messages at large (the base rate): a tail caused by collections shows
 * as a much higher share for the slow ones.
 *
 * How a collection is seen: one fresh, unreachable object is registered with a
 * FinalizationRegistry; the next collection (eden or full) frees it and the engine calls back,
 * which records the time and plants the next one. So each collection is counted once (two
 * within one event-loop turn count once: a lower bound), stamped when the callback runs, just
 * after the pause ended. Checked against BUN_JSC_logGC=1, the counts matched exactly (32 of 32).
 * It costs one object per collection. The broker (`runnel serve`, a separate process) appends
 * its stamps to `<dir>/broker-<pid>.txt` every 200 ms; the producer and consumer keep theirs
 * in memory and report them with their results.
 *
 * Clock: stampClockNs (the epoch clock every process shares, bench/e2e-consumer.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The environment variable naming the directory the broker writes its stamps to; unset: no probing. */
export const GC_PROBE_ENV = "RUNNEL_BENCH_GC";
const BROKER_WRITE_INTERVAL_MS = 200;
/** Slow-message windows kept at most, and one message in SAMPLE_EVERY kept for the base rate. */
const TAIL_WINDOWS_MAX = 100_000;
const SAMPLE_WINDOWS_MAX = 100_000;
const SAMPLE_EVERY = 64;
/** Messages slower than this are kept as tail candidates; the report picks those over the run's p99. */
const TAIL_CANDIDATE_NS = 1_000_000;

function epochNs(): number {
  return (performance.timeOrigin + performance.now()) * 1e6;
}

export function gcProbeDirectory(): string | null {
  const directory = process.env[GC_PROBE_ENV];
  return directory === undefined || directory === "" ? null : directory;
}

/** Stamps (epoch ns) of this process's collections since `start`. */
export class GcProbe {
  readonly stampsNs: number[] = [];
  private running = false;
  private readonly registry = new FinalizationRegistry<number>(() => this.collected());

  start(): this {
    this.running = true;
    this.plant();
    return this;
  }

  stop(): void {
    this.running = false;
  }

  private plant(): void {
    this.registry.register({}, 0);
  }

  private collected(): void {
    if (!this.running) return;
    this.stampsNs.push(epochNs());
    this.plant();
  }
}

/** The broker's side: a probe whose stamps are appended to `<directory>/broker-<pid>.txt`. */
export function startBrokerGcProbe(directory: string): () => void {
  const probe = new GcProbe().start();
  const file = path.join(directory, `broker-${process.pid}.txt`);
  let written = 0;
  const flush = (): void => {
    if (written === probe.stampsNs.length) return;
    fs.appendFileSync(file, `${probe.stampsNs.slice(written).map((stampNs) => stampNs.toFixed(0)).join("\n")}\n`);
    written = probe.stampsNs.length;
  };
  const timer = setInterval(flush, BROKER_WRITE_INTERVAL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    flush();
    probe.stop();
  };
}

/** Every broker stamp written to `directory` at or after `sinceNs`. */
export function readBrokerStamps(directory: string, sinceNs: number): number[] {
  const stamps: number[] = [];
  for (const name of fs.readdirSync(directory)) {
    if (!name.startsWith("broker-")) continue;
    for (const line of fs.readFileSync(path.join(directory, name), "utf8").split("\n")) {
      const stampNs = Number(line);
      if (line !== "" && Number.isFinite(stampNs) && stampNs >= sinceNs) stamps.push(stampNs);
    }
  }
  return stamps.sort((a, b) => a - b);
}

/** The consumer's side: windows [due, seen] (epoch ns) of slow messages and of a sample of all. */
export class WindowRecorder {
  private readonly tail = new Float64Array(TAIL_WINDOWS_MAX * 2);
  private readonly sample = new Float64Array(SAMPLE_WINDOWS_MAX * 2);
  private tailCount = 0;
  private sampleCount = 0;
  private seen = 0;

  record(dueNs: number, seenNs: number): void {
    if (seenNs - dueNs >= TAIL_CANDIDATE_NS && this.tailCount < TAIL_WINDOWS_MAX) {
      this.tail[this.tailCount * 2] = dueNs;
      this.tail[this.tailCount * 2 + 1] = seenNs;
      this.tailCount++;
    }
    if (this.seen++ % SAMPLE_EVERY === 0 && this.sampleCount < SAMPLE_WINDOWS_MAX) {
      this.sample[this.sampleCount * 2] = dueNs;
      this.sample[this.sampleCount * 2 + 1] = seenNs;
      this.sampleCount++;
    }
  }

  /** Flat [due, seen, due, seen, ...] lists, for the consumer's outcome. */
  toJSON(): { tail: number[]; sample: number[] } {
    return { tail: Array.from(this.tail.subarray(0, this.tailCount * 2)), sample: Array.from(this.sample.subarray(0, this.sampleCount * 2)) };
  }
}

/** What the consumer process reports when probing. */
export interface ConsumerGcReport {
  stampsNs: number[];
  windows: { tail: number[]; sample: number[] };
}

/** Whether sorted `stampsNs` holds a stamp in [fromNs, toNs]. */
function holdsStamp(stampsNs: readonly number[], fromNs: number, toNs: number): boolean {
  let low = 0;
  let high = stampsNs.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (stampsNs[middle]! < fromNs) low = middle + 1;
    else high = middle;
  }
  return low < stampsNs.length && stampsNs[low]! <= toNs;
}

/**
 * Share (0..1) of the windows (flat pairs) of at least `minNs` that hold a stamp of `stampsNs`,
 * and the share chance alone would give windows of those lengths: collections at `perNs` a
 * nanosecond, at random times, fall in a window of length L with probability 1 - e^(-perNs L).
 * A long window holds a collection more often by its length alone; the tail is caused by
 * collections only where `share` is well above `chance`.
 */
function shareHolding(windows: readonly number[], minNs: number, stampsNs: readonly number[], perNs: number): { share: number; chance: number; count: number } {
  let count = 0;
  let holding = 0;
  let chance = 0;
  for (let index = 0; index + 1 < windows.length; index += 2) {
    const dueNs = windows[index]!;
    const seenNs = windows[index + 1]!;
    if (seenNs - dueNs < minNs) continue;
    count++;
    chance += 1 - Math.exp(-perNs * (seenNs - dueNs));
    if (holdsStamp(stampsNs, dueNs, seenNs)) holding++;
  }
  return { share: count === 0 ? 0 : holding / count, chance: count === 0 ? 0 : chance / count, count };
}

/** The run's span on the epoch clock: from the first sampled message's due time to the last one seen. */
function spanNs(sample: readonly number[]): number {
  return sample.length < 2 ? 0 : Math.max(0, sample[sample.length - 1]! - sample[0]!);
}

export interface GcCoincidence {
  collections: Record<string, number>;
  /**
   * Per process and "any": share of slow messages (over `tailNs`) whose window held a
   * collection, what chance alone gives windows that long, and the share of all messages.
   */
  rows: Array<{ process: string; slowShare: number; slowChance: number; allShare: number }>;
  slowMessages: number;
}

/** The report: collections per process and how often slow messages' windows held one, against all messages. */
export function gcCoincidence(stampsByProcess: Record<string, number[]>, windows: { tail: number[]; sample: number[] }, tailNs: number): GcCoincidence {
  const collections: Record<string, number> = {};
  const rows: GcCoincidence["rows"] = [];
  const all: number[] = [];
  let slowMessages = 0;
  const span = spanNs(windows.sample);
  const rowOf = (name: string, sorted: number[]): GcCoincidence["rows"][number] => {
    const inSpan = sorted.filter((stampNs) => stampNs >= windows.sample[0]! && stampNs <= windows.sample[0]! + span).length;
    const perNs = span === 0 ? 0 : inSpan / span;
    const slow = shareHolding(windows.tail, tailNs, sorted, perNs);
    slowMessages = slow.count;
    return { process: name, slowShare: slow.share, slowChance: slow.chance, allShare: shareHolding(windows.sample, 0, sorted, perNs).share };
  };
  for (const [name, stamps] of Object.entries(stampsByProcess)) {
    const sorted = [...stamps].sort((a, b) => a - b);
    all.push(...sorted);
    collections[name] = sorted.length;
    rows.push(rowOf(name, sorted));
  }
  all.sort((a, b) => a - b);
  rows.push(rowOf("any", all));
  return { collections, rows, slowMessages };
}

/** One note line for the bench's output. */
export function formatGcCoincidence(report: GcCoincidence, tailMs: number): string {
  const counts = Object.entries(report.collections).map(([name, count]) => `${name} ${count}`).join(", ");
  const percent = (share: number): string => `${(share * 100).toFixed(0)}%`;
  const shares = report.rows.map((row) => `${row.process} ${percent(row.slowShare)} (chance ${percent(row.slowChance)}, all ${percent(row.allShare)})`).join("; ");
  return `gc: collections ${counts}; of the ${report.slowMessages} messages slower than ${tailMs.toFixed(2)} ms (the p99, at least 1 ms), the share whose window held a collection (what chance gives windows that long; the share of all messages): ${shares}`;
}
