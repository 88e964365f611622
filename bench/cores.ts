/**
 * @module bench/cores
 * Does the broker's throughput grow with cores? (docs/architecture.md "Using every core".)
 * A broker child process per run, 4 producer and 4 consumer processes against it (raw protocol
 * clients: a producer resends one pre-encoded produce frame, a 256 KiB batch of 1 KiB records, 4 in flight; a
 * consumer follows its partition with 1 MiB fetches, counting record bytes from the answer
 * head), all for the same number of seconds. Each run reports total MB/s (produced + consumed)
 * and the broker's CPU-seconds per GB moved (utime + stime of every broker thread, from
 * /proc/<pid>/stat, over the measured window).
 *
 * Runs, in rounds (each round runs every configuration once, so drift hits all alike):
 *   w1-pinned   --network-workers 1, broker pinned to core 0 (taskset -a -p)
 *   w1          --network-workers 1, both cores
 *   w2-pinned   --network-workers 2, pinned to core 0
 *   w2          --network-workers 2, both cores
 * then the single-connection runs (1 producer + 1 consumer), w1 against w2, for CPU per GB.
 * Prints medians of the rounds with their spread (min..max), and the ratios.
 *
 *   npx bun bench/cores.ts                       3 rounds of 6 s
 *   BASE_ROOT=/path/to/old/checkout npx bun bench/cores.ts   adds that checkout's broker (w1-pinned-base, 1conn-base)
 *   ROUNDS=1 SECONDS=2 npx bun bench/cores.ts    a smoke run
 *
 * The clients are never pinned: on a 2-core machine they share the cores with the broker, which
 * is what the measurement has to live with (the ratio says how much of the second core the
 * broker can use while its clients use the rest).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { decode, encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import { RawClient } from "../src/bench/stall.ts";
import { readProcessUsage } from "../src/bench/embedded-broker.ts";
import { encodeBatch, readBatchHeader } from "../src/format/record-batch.ts";
import { encodeFrame, FrameDecoder } from "../src/protocol/frame.ts";

const root = path.resolve(import.meta.dir, "..");
const TOPIC = "cores";
const RECORD_BYTES = 1024;
const RECORDS_PER_BATCH = 256;
const PRODUCES_IN_FLIGHT = 4;
const FETCH_BYTES_MAX = 1 << 20;

export interface RunConfig {
  name: string;
  workers: number;
  pinned: boolean;
  producers: number;
  consumers: number;
  /** The checkout whose broker runs (BASE_ROOT: the code before this work, for a same-run baseline); default this one. */
  root?: string;
}

export interface RunResult {
  name: string;
  /** CPU-seconds per broker thread over the window, by thread name (summed over same-named threads). */
  threads: Record<string, number>;
  producedBytes: number;
  consumedBytes: number;
  seconds: number;
  brokerCpuSeconds: number;
}

interface ClientOutcome {
  bytes: number;
}

// ---- client roles (children of the driver) ----

/**
 * Sends one pre-encoded produce frame over and over (the broker stamps offsets into its own copy
 * of the bytes), PRODUCES_IN_FLIGHT at a time, so the producer's own CPU per byte is little more
 * than the socket write: the figure is about the broker, not the client.
 */
async function runProducer(port: number, partition: number, seconds: number): Promise<ClientOutcome> {
  const value = new Uint8Array(RECORD_BYTES).fill(0x61 + partition);
  const batch = encodeBatch(Array.from({ length: RECORDS_PER_BATCH }, () => ({ value })));
  const frame = encodeFrame(encode({ id: 1, op: "produce", durability: "written", batches: [{ topic: TOPIC, partition, batch }] }));
  const endMs = Date.now() + seconds * 1000;
  const decoder = new FrameDecoder(1 << 20);
  const pending: Uint8Array[] = [];
  let inFlight = 0;
  let bytes = 0;
  const done = Promise.withResolvers<void>();
  const flush = (socket: Socket<undefined>): void => {
    while (pending.length > 0) {
      const head = pending[0] as Uint8Array;
      const written = socket.write(head);
      if (written < head.length) {
        if (written > 0) pending[0] = head.subarray(written);
        return;
      }
      pending.shift();
    }
  };
  const send = (socket: Socket<undefined>): void => {
    inFlight++;
    pending.push(frame);
    flush(socket);
  };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      binaryType: "uint8array",
      drain: (socket) => flush(socket),
      close: () => done.resolve(),
      data: (socket, chunk) => {
        decoder.push(chunk);
        for (let body = decoder.next(); body !== null; body = decoder.next()) {
          const answer = decode(body) as { error?: unknown; results?: Array<{ error?: unknown }> };
          const failure = answer.error ?? answer.results?.[0]?.error;
          if (failure !== undefined) throw new Error(`produce failed: ${JSON.stringify(failure)}`);
          inFlight--;
          bytes += batch.length;
          if (Date.now() < endMs) send(socket);
          else if (inFlight === 0) socket.end();
        }
      },
    },
  });
  for (let lane = 0; lane < PRODUCES_IN_FLIGHT; lane++) send(socket);
  await done.promise;
  return { bytes };
}

/** The offset after the last batch in `records` (a whole number of batches), or `from` when empty. */
function nextOffsetAfter(records: Uint8Array, from: number): number {
  let next = from;
  for (let position = 0; position < records.length; ) {
    const header = readBatchHeader(records, position);
    next = header.baseOffset + header.lastOffsetDelta + 1;
    position += header.batchLength + 12;
  }
  return next;
}

async function runConsumer(port: number, partition: number, seconds: number): Promise<ClientOutcome> {
  const client = await RawClient.connect("127.0.0.1", port);
  const endMs = Date.now() + seconds * 1000;
  let offset = 0;
  let bytes = 0;
  while (Date.now() < endMs) {
    const answer = await client.request({ op: "fetch", maxWaitMs: 200, minBytes: 1, maxBytes: FETCH_BYTES_MAX, partitions: [{ topic: TOPIC, partition, offset }] });
    const records = answer.records;
    if (!(records instanceof Uint8Array)) throw new Error(`fetch failed: ${JSON.stringify(answer.error ?? answer.partitions)}`);
    bytes += records.length;
    offset = nextOffsetAfter(records, offset);
  }
  client.close();
  return { bytes };
}

// ---- the driver ----

/** utime + stime of each thread of `pid` (/proc/<pid>/task/<tid>/stat), summed by thread name. */
function threadCpuSeconds(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const label = tid === String(pid) ? "main" : name;
      byName[label] = (byName[label] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    }
  } catch {
    // the broker is gone
  }
  return byName;
}

async function portFrom(stdout: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the broker exited before listening: ${text}`);
    text += decoder.decode(value, { stream: true });
    const match = /"port":(\d+)[^\n]*runnel listening/.exec(text);
    if (match !== null) {
      void (async () => {
        while (!(await reader.read()).done);
      })();
      return Number(match[1]);
    }
  }
}

function spawnClient(role: "producer" | "consumer", port: number, partition: number, seconds: number): Promise<ClientOutcome> {
  const child = Bun.spawn([process.execPath, import.meta.path, "--role", role, String(port), String(partition), String(seconds)], { cwd: root, stdout: "pipe", stderr: "inherit" });
  return new Response(child.stdout).text().then(async (text) => {
    if ((await child.exited) !== 0) throw new Error(`${role} ${partition} failed`);
    return JSON.parse(text) as ClientOutcome;
  });
}

async function runOnce(config: RunConfig, seconds: number): Promise<RunResult> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-cores-"));
  const args = ["serve", "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--kafka-port", "-1", "--data-dir", dataDir, "--log-format", "json"];
  // The flag only when it is not the default, so a BASE_ROOT checkout without it runs too.
  if (config.workers !== 1) args.push("--network-workers", String(config.workers));
  const brokerRoot = config.root ?? root;
  const broker = Bun.spawn([process.execPath, path.join(brokerRoot, "src/main.ts"), ...args], { cwd: brokerRoot, stdout: "pipe", stderr: "inherit" });
  try {
    const port = await portFrom(broker.stdout);
    if (config.pinned) Bun.spawnSync(["taskset", "-a", "-p", "-c", "0", String(broker.pid)], { stdout: "ignore" });
    const admin = await RawClient.connect("127.0.0.1", port);
    await admin.request({ op: "createTopic", topic: TOPIC, partitions: Math.max(config.producers, config.consumers) });
    admin.close();
    const before = readProcessUsage(broker.pid);
    const threadsBefore = threadCpuSeconds(broker.pid);
    const startedMs = Date.now();
    const producers = Array.from({ length: config.producers }, (_, index) => spawnClient("producer", port, index, seconds));
    const consumers = Array.from({ length: config.consumers }, (_, index) => spawnClient("consumer", port, index, seconds));
    const produced = await Promise.all(producers);
    const consumed = await Promise.all(consumers);
    const after = readProcessUsage(broker.pid);
    const threads = threadCpuSeconds(broker.pid);
    for (const [thread, cpuSeconds] of Object.entries(threadsBefore)) threads[thread] = (threads[thread] ?? 0) - cpuSeconds;
    const elapsed = (Date.now() - startedMs) / 1000;
    return {
      name: config.name,
      threads,
      producedBytes: produced.reduce((sum, outcome) => sum + outcome.bytes, 0),
      consumedBytes: consumed.reduce((sum, outcome) => sum + outcome.bytes, 0),
      seconds: Math.max(seconds, elapsed - 0.5), // clients spend ~0.5 s starting (bun + connect) before their clock runs
      brokerCpuSeconds: (after?.cpuSeconds ?? 0) - (before?.cpuSeconds ?? 0),
    };
  } finally {
    broker.kill("SIGTERM");
    await broker.exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export const totalMBps = (run: RunResult): number => (run.producedBytes + run.consumedBytes) / run.seconds / 1e6;
const cpuPerGB = (run: RunResult): number => run.brokerCpuSeconds / ((run.producedBytes + run.consumedBytes) / 1e9);

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function summary(name: string, runs: RunResult[], measure: (run: RunResult) => number, digits: number): string {
  const values = runs.filter((run) => run.name === name).map(measure);
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}..${Math.max(...values).toFixed(digits)})`;
}

const MANY: RunConfig[] = [
  { name: "w1-pinned", workers: 1, pinned: true, producers: 4, consumers: 4 },
  { name: "w1", workers: 1, pinned: false, producers: 4, consumers: 4 },
  { name: "w2-pinned", workers: 2, pinned: true, producers: 4, consumers: 4 },
  { name: "w2", workers: 2, pinned: false, producers: 4, consumers: 4 },
];
const SINGLE: RunConfig[] = [
  { name: "1conn-w1", workers: 1, pinned: false, producers: 1, consumers: 1 },
  { name: "1conn-w2", workers: 2, pinned: false, producers: 1, consumers: 1 },
];

export async function runCoresBench(rounds: number, seconds: number, configs: RunConfig[] = [...MANY, ...SINGLE]): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const config of configs) {
      const run = await runOnce(config, seconds);
      runs.push(run);
      const busy = Object.entries(run.threads).filter(([, cpuSeconds]) => cpuSeconds >= 0.05).map(([thread, cpuSeconds]) => `${thread} ${cpuSeconds.toFixed(2)}`);
      process.stderr.write(`round ${round + 1} ${config.name}: ${totalMBps(run).toFixed(0)} MB/s (in ${(run.producedBytes / run.seconds / 1e6).toFixed(0)}, out ${(run.consumedBytes / run.seconds / 1e6).toFixed(0)}), broker ${cpuPerGB(run).toFixed(2)} CPU-s/GB; thread CPU-s: ${busy.join(", ")}\n`);
    }
  }
  return runs;
}

function report(runs: RunResult[], configs: RunConfig[]): void {
  const rounds = runs.length / configs.length;
  console.log(`\n${os.cpus().length} cores, ${rounds} round(s); median (min..max)`);
  console.log("run          total MB/s          broker CPU-s/GB");
  for (const config of configs) console.log(`${config.name.padEnd(12)} ${summary(config.name, runs, totalMBps, 0).padEnd(19)} ${summary(config.name, runs, cpuPerGB, 2)}`);
  const medianOf = (name: string): number => median(runs.filter((run) => run.name === name).map(totalMBps));
  const ratios: Array<[string, string, string]> = [
    ["w2", "w1-pinned", "w2 (both cores) / w1-pinned (one core), the target >= 1.3x"],
    ["w2", "w1", "w2 / w1 (both cores each)"],
    ["w1", "w1-pinned", "w1 / w1-pinned"],
    ["w2", "w2-pinned", "w2 / w2-pinned"],
    ["w1-pinned", "w1-pinned-base", "w1-pinned / the base checkout's"],
  ];
  console.log("");
  for (const [top, bottom, label] of ratios) {
    const value = medianOf(top) / medianOf(bottom);
    if (Number.isFinite(value)) console.log(`${label}: ${value.toFixed(2)}x`);
  }
}

async function main(): Promise<void> {
  const roleAt = process.argv.indexOf("--role");
  if (roleAt >= 0) {
    const [role, port, partition, seconds] = process.argv.slice(roleAt + 1);
    const run = role === "producer" ? runProducer : runConsumer;
    console.log(JSON.stringify(await run(Number(port), Number(partition), Number(seconds))));
    return;
  }
  const rounds = Number(process.env.ROUNDS ?? 3);
  const seconds = Number(process.env.SECONDS ?? 6);
  const only = process.env.ONLY;
  const base = process.env.BASE_ROOT;
  const baseline: RunConfig[] =
    base === undefined
      ? []
      : [
          { name: "w1-pinned-base", workers: 1, pinned: true, producers: 4, consumers: 4, root: base },
          { name: "1conn-base", workers: 1, pinned: false, producers: 1, consumers: 1, root: base },
        ];
  const configs = [...MANY, ...SINGLE, ...baseline].filter((config) => only === undefined || only.split(",").includes(config.name));
  const runs = await runCoresBench(rounds, seconds, configs);
  report(runs, configs);
}

if (import.meta.main) await main();
