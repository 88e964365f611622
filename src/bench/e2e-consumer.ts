/**
 * @module bench/e2e-consumer
 * The e2e bench's consumer side runs in its own process (`runnel bench e2e-consumer`, spawned
 * like the embedded broker): in a real deployment producer and consumer are separate
 * processes, and in one JS thread each one's work, timers and garbage collections would delay
 * the other and be counted as end-to-end latency.
 *
 * Protocol (lines; internal, both ends are this file):
 *   parent -> child stdin:  one JSON line of ConsumerJob, "measure-from T" (with a warm-up:
 *                           messages stamped before T are warm-up; until this line arrives every
 *                           message is), then "expect N" (stop once N messages have arrived) or
 *                           "stop" (stop now)
 *   child -> parent stdout: "ready" once the consumers are assigned, "progress N" every 100 ms,
 *                           and last "result {json ConsumerOutcome}"
 *
 * Clock: latency is "due send time -> the consumer sees it" across two processes, so both ends
 * use `stampClockNs()`, the epoch clock at sub-microsecond resolution (performance.timeOrigin +
 * performance.now()); Bun.nanoseconds() counts from each process's own start.
 */
import { z } from "zod";
import type { Subprocess } from "bun";
import { RunnelError } from "../errors.ts";
import { runnelCommand } from "./embedded-broker.ts";
import type { HistogramSnapshot } from "./histogram.ts";
import { type ConsumerGcReport, GcProbe, gcProbeDirectory, WindowRecorder } from "./gc-probe.ts";
import { ConsumerGroup, consumeLoop, Meter, partitionsOf, type WorkloadOptions } from "./workloads.ts";

const PROGRESS_INTERVAL_MS = 100;
const READY_TIMEOUT_MS = 20_000;

/** Nanoseconds on a clock every process on this machine shares (the epoch clock). */
export function stampClockNs(): number {
  return (performance.timeOrigin + performance.now()) * 1e6;
}

export interface ConsumerJob {
  options: WorkloadOptions;
  /** Offset each partition's consumer starts at (the end of the log before the run). */
  starts: number[];
  /** Stamps and arrival times are `stampClockNs() - clockBaseNs`. */
  clockBaseNs: number;
}

export interface ConsumerOutcome {
  completed: number;
  bytes: number;
  latency: HistogramSnapshot;
  /** With a warm-up: the latency of the messages due during it (left out of `latency`). */
  warmup?: HistogramSnapshot;
  /** The consumer's stages of the latency split, by stage name (bench/latency-split.ts). */
  stages: Record<string, HistogramSnapshot>;
  /** With RUNNEL_BENCH_GC set: this process's collections and the messages' windows (bench/gc-probe.ts). */
  gc?: ConsumerGcReport;
}

const snapshotSchema = z.object({
  buckets: z.array(z.tuple([z.number().int().min(0), z.number().min(0)])),
  total: z.number().min(0),
  sumNs: z.number(),
  maxNs: z.number(),
  minNs: z.number(),
});

const outcomeSchema = z.object({
  completed: z.number().int().min(0),
  bytes: z.number().min(0),
  latency: snapshotSchema,
  warmup: snapshotSchema.optional(),
  stages: z.record(z.string(), snapshotSchema),
  gc: z.object({ stampsNs: z.array(z.number()), windows: z.object({ tail: z.array(z.number()), sample: z.array(z.number()) }) }).optional(),
});

/** The parent's handle on the consumer process. */
export interface ConsumerProcess {
  /** Messages seen so far (updated every PROGRESS_INTERVAL_MS). */
  readonly completed: number;
  /** Tells the consumers how many messages to wait for; they stop once they have them. */
  expect(messages: number): void;
  /** With a warm-up: messages stamped (stamp clock, relative to the job's base) before this are warm-up. */
  measureFrom(stampNs: number): void;
  stop(): void;
  /** The final counts and latencies (after `expect` was met or `stop`). */
  readonly outcome: Promise<ConsumerOutcome>;
  kill(): void;
}

/** Spawns `runnel bench e2e-consumer`, sends it the job, and resolves once it is consuming. */
export async function startConsumerProcess(job: ConsumerJob): Promise<ConsumerProcess> {
  const child = Bun.spawn(runnelCommand(["bench", "e2e-consumer"]), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  child.stdin.write(`${JSON.stringify(job)}\n`);
  child.stdin.flush();
  let completed = 0;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const outcome = readChildLines(child, (line) => {
    if (line === "ready") onReady();
    else if (line.startsWith("progress ")) completed = Number(line.slice("progress ".length)) || completed;
  });
  outcome.catch(() => undefined); // read by the caller; never an unhandled rejection meanwhile
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RunnelError("TIMEOUT", "the e2e consumer process did not start in time")), READY_TIMEOUT_MS);
    outcome.then(() => reject(new RunnelError("INTERNAL", "the e2e consumer process ended before it was ready")), reject);
  });
  failed.catch(() => undefined); // only the race below reads it; it may settle after
  try {
    await Promise.race([ready, failed]);
  } catch (error) {
    child.kill();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const send = (line: string): void => {
    if (child.exitCode !== null) return;
    child.stdin.write(`${line}\n`);
    child.stdin.flush();
  };
  return {
    get completed() {
      return completed;
    },
    expect: (messages) => send(`expect ${messages}`),
    measureFrom: (stampNs) => send(`measure-from ${stampNs}`),
    stop: () => send("stop"),
    outcome,
    kill: () => child.kill(),
  };
}

/** Reads the child's stdout line by line; resolves with its "result" line. */
async function readChildLines(child: Subprocess<"pipe", "pipe", "inherit">, onLine: (line: string) => void): Promise<ConsumerOutcome> {
  let result: ConsumerOutcome | null = null;
  for await (const line of streamLines(child.stdout)) {
    if (line.startsWith("result ")) {
      result = outcomeSchema.parse(JSON.parse(line.slice("result ".length))) as ConsumerOutcome;
      void child.stdin.end(); // the child's stdin loop ends, and with it the child
    } else {
      onLine(line);
    }
  }
  const code = await child.exited;
  if (result === null) throw new RunnelError("INTERNAL", `the e2e consumer process exited (${code}) without a result`);
  return result;
}

/** The child: `runnel bench e2e-consumer`. Consumes until told how many to expect, then reports. */
export async function runConsumerProcess(): Promise<number> {
  const lines = streamLines(Bun.stdin.stream());
  const first = await lines.next();
  if (first.done === true) throw new RunnelError("INVALID_REQUEST", "e2e-consumer: no job on stdin");
  const job = parseJob(first.value);
  const { options, starts, clockBaseNs } = job;
  const clockNs = (): number => stampClockNs() - clockBaseNs;
  const meter = new Meter();
  // With a warm-up, every message is warm-up until the parent says when measuring starts.
  if ((options.warmupS ?? 0) > 0) meter.measureFromNs = Number.POSITIVE_INFINITY;
  let expected = Number.POSITIVE_INFINITY;
  const group = new ConsumerGroup(() => meter.completed >= expected);
  const probing = gcProbeDirectory() !== null;
  const probe = probing ? new GcProbe().start() : null;
  const windows = probing ? new WindowRecorder() : null;
  // Windows on the epoch clock, as the probes stamp.
  const onWindow = windows === null ? null : (dueNs: number, seenNs: number): void => windows.record(dueNs + clockBaseNs, seenNs + clockBaseNs);
  const consumers = Promise.all(
    Array.from({ length: options.consumers }, (_, index) => consumeLoop(options, partitionsOf(index, options.consumers, options.partitions), group, meter, starts, clockNs, onWindow)),
  );
  process.stdout.write("ready\n");
  const progress = setInterval(() => process.stdout.write(`progress ${meter.completed}\n`), PROGRESS_INTERVAL_MS);
  void (async () => {
    for (let line = await lines.next(); line.done !== true; line = await lines.next()) {
      if (line.value === "stop") group.stop();
      else if (line.value.startsWith("expect ")) expected = Number(line.value.slice("expect ".length));
      else if (line.value.startsWith("measure-from ")) meter.measureFromNs = Number(line.value.slice("measure-from ".length));
      group.check();
    }
    group.stop(); // the parent is gone
  })();
  await consumers;
  clearInterval(progress);
  const stages: ConsumerOutcome["stages"] = {};
  for (const [name, histogram] of meter.stages) stages[name] = histogram.toSnapshot();
  const outcome: ConsumerOutcome = { completed: meter.completed, bytes: meter.bytes, latency: meter.latency.toSnapshot(), stages };
  if (meter.warmup.count > 0) outcome.warmup = meter.warmup.toSnapshot();
  if (probe !== null && windows !== null) {
    probe.stop();
    outcome.gc = { stampsNs: probe.stampsNs, windows: windows.toJSON() };
  }
  process.stdout.write(`result ${JSON.stringify(outcome)}\n`);
  return 0;
}

/** The job line (written by startConsumerProcess; checked only for what a typo by hand would break). */
function parseJob(line: string): ConsumerJob {
  let job: unknown;
  try {
    job = JSON.parse(line);
  } catch {
    job = null;
  }
  const shaped = job as Partial<ConsumerJob> | null;
  if (shaped === null || typeof shaped !== "object" || typeof shaped.options !== "object" || !Array.isArray(shaped.starts) || typeof shaped.clockBaseNs !== "number") {
    throw new RunnelError("INVALID_REQUEST", "e2e-consumer is started by `runnel bench e2e`; its first stdin line must be the job JSON");
  }
  return shaped as ConsumerJob;
}

/**
 * Lines of a byte stream as they arrive: a child's stdout, or stdin (console's line iterator
 * waited for more than one line there). Shared with bench/latency-floor.ts's children.
 */
export async function* streamLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
}
