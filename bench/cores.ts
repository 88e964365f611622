/**
 * @module bench/cores
 * Does the broker's throughput grow with cores? (docs/architecture.md "Using every core".)
 * A broker child process per run, driven by two light client processes for the same number of
 * seconds: one holds the producer connections (each resends one pre-encoded produce frame, a
 * ~1 MiB batch of 1,000 1 KiB records, 2 in flight) and one the consumer connections (each
 * follows its partition with 4 MiB fetches through src/bench/follow-fetch.ts, which counts the
 * records as they stream past instead of assembling the answer). Two processes instead of eight
 * and large batches keep the clients' CPU per GB at about half the broker's, so the clients are
 * not what a 2-core figure measures. Each run reports total MB/s (produced + consumed), the
 * broker's CPU-seconds per GB moved and its CPU in % of one core (utime + stime of every broker
 * thread, from /proc/<pid>/stat; per thread from /proc/<pid>/task), the clients' CPU per GB, and
 * the load average when it started.
 *
 * Runs, in rounds (each round runs every configuration once, so drift hits all alike):
 *   w1-pinned   one thread (the default), broker pinned to core 0 (taskset -a -p, broker only)
 *   w1          one thread, both cores
 *   w2-pinned   --network-workers 2, pinned to core 0
 *   w2          --network-workers 2, both cores
 * then the single-connection runs (1 producer + 1 consumer), w1 against w2, for CPU per GB.
 * Prints medians of the rounds with their spread (min..max), and the ratios.
 *
 *   npx bun bench/cores.ts                       3 rounds of 6 s
 *   BASE_ROOT=/path/to/old/checkout npx bun bench/cores.ts   adds that checkout's broker (w1-pinned-base, w2-base, 1conn-base)
 *   ONLY=w1-pinned,w2 npx bun bench/cores.ts     only those configurations
 *   PERF_STAT=1 ...                              adds the broker's context switches, migrations and syscalls per GB (perf stat)
 *   DATA_DIR=/dev/shm ...                        the log on tmpfs instead of os.tmpdir()
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
import { followPartition } from "../src/bench/follow-fetch.ts";
import { RawClient } from "../src/bench/stall.ts";
import { readProcessUsage } from "../src/bench/embedded-broker.ts";
import { encodeBatch } from "../src/format/record-batch.ts";
import { encodeFrame, FrameDecoder } from "../src/protocol/frame.ts";

const root = path.resolve(import.meta.dir, "..");
const TOPIC = "cores";
const RECORD_BYTES = 1024;
/** ~1 MiB batches: the client's CPU per GB falls with the batch, the broker's per-request work too. */
const RECORDS_PER_BATCH = 1000;
/** Per producer connection: one being written while the broker appends the other. */
const PRODUCES_IN_FLIGHT = 2;
/** Up to 4 batches per fetch answer. */
const FETCH_BYTES_MAX = 4 << 20;

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
  pinned: boolean;
  /** CPU-seconds per broker thread over the window, by thread name (summed over same-named threads). */
  threads: Record<string, number>;
  producedBytes: number;
  consumedBytes: number;
  /** Each client process's own measuring window. */
  producedSeconds: number;
  consumedSeconds: number;
  wallSeconds: number;
  brokerCpuSeconds: number;
  clientCpuSeconds: number;
  /** The producers' process alone (the rest of clientCpuSeconds is the consumers'). */
  producerCpuSeconds: number;
  /** perf stat counts of the broker over the clients' run, by event (PERF_STAT=1; empty otherwise). */
  counts: Record<string, number>;
  /** The 1-minute load average when the run started. */
  loadAverage: number;
}

interface ClientOutcome {
  bytes: number;
  /** The client's own clock, first request to last answer. */
  seconds: number;
}

// ---- client roles (children of the driver) ----

/**
 * One client process drives every connection of its role: a Bun process costs ~40 MB and a JIT
 * of its own, and eight of them took the second core the broker was meant to show it can use.
 * Each reports the bytes it moved and the seconds it measured over (from its first request).
 */
interface RoleArgs {
  port: number;
  connections: number;
  seconds: number;
}

/**
 * Resends one pre-encoded produce frame over and over (the broker stamps offsets into its own copy
 * of the bytes), PRODUCES_IN_FLIGHT at a time per connection, so the producer's own CPU per byte is
 * little more than the socket write: the figure is about the broker, not the client.
 */
function produceOn(port: number, partition: number, endMs: number): Promise<number> {
  const value = new Uint8Array(RECORD_BYTES).fill(0x61 + (partition % 26));
  const batch = encodeBatch(Array.from({ length: RECORDS_PER_BATCH }, () => ({ value })));
  const frame = encodeFrame(encode({ id: 1, op: "produce", durability: "written", batches: [{ topic: TOPIC, partition, batch }] }));
  const decoder = new FrameDecoder(1 << 20);
  const pending: Uint8Array[] = [];
  let inFlight = 0;
  let bytes = 0;
  const done = Promise.withResolvers<number>();
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
  const onAnswer = (socket: Socket<undefined>, body: Uint8Array): void => {
    const answer = decode(body) as { error?: unknown; results?: Array<{ error?: unknown }> };
    const failure = answer.error ?? answer.results?.[0]?.error;
    if (failure !== undefined) throw new Error(`produce failed: ${JSON.stringify(failure)}`);
    inFlight--;
    bytes += batch.length;
    if (Date.now() < endMs) send(socket);
    else if (inFlight === 0) socket.end();
  };
  void Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      binaryType: "uint8array",
      open: (socket) => {
        for (let lane = 0; lane < PRODUCES_IN_FLIGHT; lane++) send(socket);
      },
      drain: (socket) => flush(socket),
      close: () => done.resolve(bytes),
      data: (socket, chunk) => {
        decoder.push(chunk);
        for (let body = decoder.next(); body !== null; body = decoder.next()) onAnswer(socket, body);
      },
    },
  });
  return done.promise;
}

async function runProducers({ port, connections, seconds }: RoleArgs): Promise<ClientOutcome> {
  const startedMs = Date.now();
  const endMs = startedMs + seconds * 1000;
  const bytes = await Promise.all(Array.from({ length: connections }, (_, partition) => produceOn(port, partition, endMs)));
  return { bytes: bytes.reduce((sum, value) => sum + value, 0), seconds: (Date.now() - startedMs) / 1000 };
}

async function runConsumers({ port, connections, seconds }: RoleArgs): Promise<ClientOutcome> {
  const startedMs = Date.now();
  const endMs = startedMs + seconds * 1000;
  const batchBytes = encodeBatch(Array.from({ length: RECORDS_PER_BATCH }, () => ({ value: new Uint8Array(RECORD_BYTES) }))).length;
  const bytes = await Promise.all(Array.from({ length: connections }, (_, partition) => followPartition(port, TOPIC, partition, { batchBytes, recordsPerBatch: RECORDS_PER_BATCH, fetchBytesMax: FETCH_BYTES_MAX, endMs })));
  return { bytes: bytes.reduce((sum, value) => sum + value, 0), seconds: (Date.now() - startedMs) / 1000 };
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

interface ClientRun extends ClientOutcome {
  /** utime + stime of the client process, from its resource usage at exit. */
  cpuSeconds: number;
}

function spawnClients(role: "producers" | "consumers", port: number, connections: number, seconds: number): Promise<ClientRun> {
  const child = Bun.spawn([process.execPath, import.meta.path, "--role", role, String(port), String(connections), String(seconds)], { cwd: root, stdout: "pipe", stderr: "inherit" });
  return new Response(child.stdout).text().then(async (text) => {
    if ((await child.exited) !== 0) throw new Error(`the ${role} failed`);
    const usage = child.resourceUsage();
    const cpuSeconds = usage === undefined ? 0 : Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6;
    return { ...(JSON.parse(text) as ClientOutcome), cpuSeconds };
  });
}

/** Counts perf stat takes of the broker when PERF_STAT=1: they survive a loaded machine where wall-clock figures do not. */
const PERF_EVENTS = ["context-switches", "cpu-migrations", "raw_syscalls:sys_enter"];

/** Starts `perf stat` on every thread of `pid`; the returned function stops it and gives the counts by event. */
function perfStat(pid: number): () => Promise<Record<string, number>> {
  const perf = Bun.spawn(["perf", "stat", "-x", ",", "-e", PERF_EVENTS.join(","), "-p", String(pid)], { stdout: "ignore", stderr: "pipe" });
  return async () => {
    perf.kill("SIGINT");
    const text = await new Response(perf.stderr).text();
    await perf.exited;
    const counts: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const [value, , event] = line.split(",");
      if (event !== undefined && PERF_EVENTS.includes(event)) counts[event] = Number(value);
    }
    return counts;
  };
}

function dataDirectory(): string {
  // DATA_DIR=/dev/shm takes the disk (ext4's page-cache work and writeback) out of the figure.
  return fs.mkdtempSync(path.join(process.env.DATA_DIR ?? os.tmpdir(), "runnel-cores-"));
}

async function runOnce(config: RunConfig, seconds: number): Promise<RunResult> {
  const dataDir = dataDirectory();
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
    const loadAverage = os.loadavg()[0] ?? 0;
    const stopPerf = process.env.PERF_STAT === "1" ? perfStat(broker.pid) : null;
    const before = readProcessUsage(broker.pid);
    const threadsBefore = threadCpuSeconds(broker.pid);
    const startedMs = Date.now();
    const producers = spawnClients("producers", port, config.producers, seconds);
    const consumers = spawnClients("consumers", port, config.consumers, seconds);
    const [produced, consumed] = await Promise.all([producers, consumers]);
    const counts = stopPerf === null ? {} : await stopPerf();
    const after = readProcessUsage(broker.pid);
    const threads = threadCpuSeconds(broker.pid);
    for (const [thread, cpuSeconds] of Object.entries(threadsBefore)) threads[thread] = (threads[thread] ?? 0) - cpuSeconds;
    return {
      name: config.name,
      pinned: config.pinned,
      threads,
      producedBytes: produced.bytes,
      consumedBytes: consumed.bytes,
      producedSeconds: produced.seconds,
      consumedSeconds: consumed.seconds,
      // The broker's CPU is counted from the clients' spawn to their exit, but it idles while they
      // start (~0.3 s): its share of a core is taken over the clients' own (longer) window.
      wallSeconds: Math.min((Date.now() - startedMs) / 1000, Math.max(produced.seconds, consumed.seconds)),
      brokerCpuSeconds: (after?.cpuSeconds ?? 0) - (before?.cpuSeconds ?? 0),
      clientCpuSeconds: produced.cpuSeconds + consumed.cpuSeconds,
      producerCpuSeconds: produced.cpuSeconds,
      counts,
      loadAverage,
    };
  } finally {
    broker.kill("SIGTERM");
    await broker.exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const producedMBps = (run: RunResult): number => run.producedBytes / run.producedSeconds / 1e6;
const consumedMBps = (run: RunResult): number => run.consumedBytes / run.consumedSeconds / 1e6;
export const totalMBps = (run: RunResult): number => producedMBps(run) + consumedMBps(run);
const movedGB = (run: RunResult): number => (run.producedBytes + run.consumedBytes) / 1e9;
const cpuPerGB = (run: RunResult): number => run.brokerCpuSeconds / movedGB(run);
const clientCpuPerGB = (run: RunResult): number => run.clientCpuSeconds / movedGB(run);
/** CPU-seconds per GB of the broker's main thread: the log thread, which every append passes through. */
const logThreadCpuPerGB = (run: RunResult): number => (run.threads.main ?? 0) / movedGB(run);
/**
 * The two bounds a run's own CPU figures put on it, in MB/s. The broker: its log thread can do
 * at most one core's work (1 / its CPU per GB), and a pinned broker all of its threads together
 * can. The machine: its cores must carry broker and clients together (cores / their CPU per
 * GB). The lower one is what this box allows that configuration, however quiet it is.
 */
const brokerBoundMBps = (run: RunResult): number => 1000 / (run.pinned ? cpuPerGB(run) : logThreadCpuPerGB(run));
const machineBoundMBps = (run: RunResult): number => (1000 * os.cpus().length) / (cpuPerGB(run) + clientCpuPerGB(run));
/** The broker's CPU use in % of one core (200 = both cores of this machine). */
const brokerCpuPercent = (run: RunResult): number => (100 * run.brokerCpuSeconds) / run.wallSeconds;

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
      process.stderr.write(`round ${round + 1} ${describe(run)}\n`);
    }
  }
  return runs;
}

function describe(run: RunResult): string {
  const busy = Object.entries(run.threads).filter(([, cpuSeconds]) => cpuSeconds >= 0.05).map(([thread, cpuSeconds]) => `${thread} ${cpuSeconds.toFixed(2)}`);
  return (
    `${run.name}: ${totalMBps(run).toFixed(0)} MB/s (in ${producedMBps(run).toFixed(0)}, out ${consumedMBps(run).toFixed(0)}), ` +
    `broker ${cpuPerGB(run).toFixed(2)} CPU-s/GB at ${brokerCpuPercent(run).toFixed(0)}% of a core (log thread ${logThreadCpuPerGB(run).toFixed(2)}), clients ${clientCpuPerGB(run).toFixed(2)} CPU-s/GB (producers ${(run.producerCpuSeconds / (run.producedBytes / 1e9)).toFixed(2)} per GB in, consumers ${((run.clientCpuSeconds - run.producerCpuSeconds) / (run.consumedBytes / 1e9)).toFixed(2)} per GB out), ` +
    `load ${run.loadAverage.toFixed(1)}; broker thread CPU-s: ${busy.join(", ")}` +
    Object.entries(run.counts).map(([event, count]) => `; ${event} ${(count / movedGB(run)).toFixed(0)}/GB`).join("")
  );
}

function report(runs: RunResult[], configs: RunConfig[]): void {
  const rounds = runs.length / configs.length;
  const loads = runs.map((run) => run.loadAverage);
  console.log(`\n${os.cpus().length} cores, ${rounds} round(s), load average ${Math.min(...loads).toFixed(1)}..${Math.max(...loads).toFixed(1)}; median (min..max)`);
  const columns: Array<[string, (run: RunResult) => number, number]> = [
    ["total MB/s", totalMBps, 0],
    ["broker CPU-s/GB", cpuPerGB, 2],
    ["broker CPU %", brokerCpuPercent, 0],
    ["log thread CPU-s/GB", logThreadCpuPerGB, 2],
    ["client CPU-s/GB", clientCpuPerGB, 2],
    ["bound: broker", brokerBoundMBps, 0],
    ["bound: cores", machineBoundMBps, 0],
  ];
  console.log(`${"run".padEnd(14)} ${columns.map(([title]) => title.padEnd(19)).join(" ")}`);
  for (const config of configs) {
    const cells = columns.map(([, measure, digits]) => summary(config.name, runs, measure, digits));
    console.log(`${config.name.padEnd(14)} ${cells.map((cell) => cell.padEnd(19)).join(" ")}`);
  }
  const medianOf = (name: string): number => median(runs.filter((run) => run.name === name).map(totalMBps));
  const ratios: Array<[string, string, string]> = [
    ["w2", "w1-pinned", "w2 (both cores) / w1-pinned (one core), the target >= 1.3x"],
    ["w2", "w2-pinned", "w2 / w2-pinned (the same broker on 2 cores vs 1)"],
    ["w1", "w1-pinned", "w1 / w1-pinned"],
    ["w2", "w1", "w2 / w1 (both cores each)"],
    ["w1-pinned", "w1-pinned-base", "w1-pinned / the base checkout's"],
    ["w2", "w2-base", "w2 / the base checkout's"],
    ["1conn-w1", "1conn-base", "1conn-w1 / the base checkout's"],
    ["1conn-w2", "1conn-w2-base", "1conn-w2 / the base checkout's"],
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
    const [role, port, connections, seconds] = process.argv.slice(roleAt + 1).map(String);
    const args: RoleArgs = { port: Number(port), connections: Number(connections), seconds: Number(seconds) };
    const outcome = role === "producers" ? await runProducers(args) : await runConsumers(args);
    console.log(JSON.stringify(outcome));
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
          { name: "w2-base", workers: 2, pinned: false, producers: 4, consumers: 4, root: base },
          { name: "1conn-base", workers: 1, pinned: false, producers: 1, consumers: 1, root: base },
          { name: "1conn-w2-base", workers: 2, pinned: false, producers: 1, consumers: 1, root: base },
        ];
  const configs = [...MANY, ...SINGLE, ...baseline].filter((config) => only === undefined || only.split(",").includes(config.name));
  const runs = await runCoresBench(rounds, seconds, configs);
  report(runs, configs);
}

if (import.meta.main) await main();
