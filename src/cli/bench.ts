/**
 * @module cli/bench
 * `runnel bench produce|consume|e2e|ceiling`: drives a broker through the real client library
 * and prints messages/s, MB/s and latency percentiles (log-linear histogram), each throughput
 * also as a ratio to its ceiling measured in the same run (loopback sendfile, raw pwrite).
 * `--embedded` starts a broker child with a temp data dir and adds its CPU time and peak RSS.
 * The live progress line goes to stderr only when it is a terminal; results go to stdout,
 * `--json FILE` and `--html FILE`.
 *
 * `runnel bench sendfile-server --file F [--mode sendfile|copy]` is the ceiling's minimal file
 * server; the bench spawns it as a child (like the broker) so client and server get a core each.
 * `runnel bench e2e-consumer` is e2e's consumer side, also a child (bench/e2e-consumer.ts).
 */
import fs from "node:fs";
import type { Durability } from "../client/producer.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { type Ceiling, measureCeiling, serveFile, type SendMode } from "../bench/ceiling.ts";
import { runConsumerProcess } from "../bench/e2e-consumer.ts";
import { type FloorOptions, measureLatencyFloor, runFloorReceiver, runFloorRelay } from "../bench/latency-floor.ts";
import { type EmbeddedBroker, type ProcessUsage, startEmbeddedBroker, stopEmbeddedBrokers } from "../bench/embedded-broker.ts";
import { formatKafkaRows, type KafkaBenchRow, runKafkaBench } from "../bench/kafka-workloads.ts";
import { formatCeiling, formatTable, renderHtml, type ResultDocument, toDocument, withLatencyFloor } from "../bench/report.ts";
import { deleteTopic, ensureTopic, Meter, runConsume, runEndToEnd, runProduce, type WorkloadName, type WorkloadOptions, type WorkloadResult } from "../bench/workloads.ts";
import { KiB, MiB } from "../limits.ts";
import { UsageError, choiceFlag, intFlag, parseArgs } from "./args.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel bench produce|consume|e2e|ceiling|kafka [options]

Measures a broker: messages/s, MB/s and latency p50/p90/p99/p99.9/p99.99/max, each throughput
also as a ratio to the machine's ceiling measured in the same run.

workloads:
  produce    send messages as fast as possible (or at --rate); latency = send() -> ack
  consume    read --messages from the start of the topic (missing ones are produced first)
  e2e        produce and consume together; latency = send() -> consumer sees it (the
             consumers run in a child process, as they would in a deployment)
  ceiling    only measure the ceilings: loopback TCP with sendfile (and read+write), raw pwrite
  kafka      the Kafka listener against the native protocol, per size (100 B and 1 KiB unless
             --size): produce native / Kafka raw (our codec, in-process) / kafkajs, raw fetch
             native / Kafka (sendfile), then kcat -P and -C of --kcat-lines lines; ratios to native

options:
  -b, --broker HOST:PORT   broker to measure (default ${DEFAULT_BROKER})
  --embedded               start a broker child (temp data dir); report its CPU and peak RSS
  --topic NAME             topic to use (default: a fresh one, deleted afterwards)
  --messages N             messages to send or read (default 1,000,000; e2e: --duration 10)
  --duration S             run for S seconds instead (produce, e2e; caps consume)
  --size BYTES             message value size (default 100)
  --partitions N           partitions of the topic (default 1)
  --producers N            producer clients, one connection each (default 1)
  --consumers N            consumer clients; partitions are dealt round-robin (default 1)
  --batch-bytes BYTES      producer batch bound (default: the client's, adaptive 64..256 KiB)
  --linger-ms MS           producer linger (default 5; 0: next turn of the event loop)
  --max-in-flight N        producer batches in flight per partition, 1..5 (default 5)
  --durability LEVEL       none, written (default) or synced
  --rate N                 offered load, messages/s over all producers (fixed-rate latency run):
                           message i is due at start + i/N and its latency counts from then (no
                           coordinated omission); overdue messages go at once, none goes early;
                           between sends the loop blocks ~0.1 ms rather than spin a core
  --warmup S               e2e: run S seconds at the offered load first and leave their messages
                           out of the figures (connections, JIT compilation); they are reported
                           on their own line (default 2; 0 counts everything)
  --seed N                 payload seed (default 1)
  --raw                    consume: fetch only, records counted from batch headers, not decoded
  --fetch-bytes BYTES      bytes per partition per fetch (default 1048576)
  --no-ceiling             skip the ceiling measurement
  --no-floor               e2e: skip the latency floor (the same pace through a bare relay of
                           three processes, measured after the run; on by default with --rate)
  --kafka-broker HOST:PORT kafka: the Kafka listener (with --broker; --embedded finds its own)
  --kafkajs-messages N     kafka: messages for the kafkajs producer (default 200,000; 0 skips)
  --kcat-lines N           kafka: lines for kcat (default 1,000,000; 0 skips; skipped without kcat)
  --rounds N               kafka: rounds per size, order alternated, topics deleted after each;
                           each path's median round is reported, with the range (default 3)
  --json FILE              write the results as JSON
  --html FILE              write one self-contained HTML page (latency curve, throughput over time)
  -h, --help               this text

examples:
  runnel bench produce --embedded --messages 5000000 --size 100
  runnel bench consume --embedded --messages 5000000 --raw
  runnel bench e2e --embedded --rate 100000 --duration 30 --html e2e.html
  runnel bench ceiling
  runnel bench kafka --embedded
`;

const FLAGS = {
  broker: { type: "string", short: "b" },
  embedded: { type: "boolean" },
  topic: { type: "string" },
  messages: { type: "string" },
  duration: { type: "string" },
  size: { type: "string" },
  partitions: { type: "string" },
  producers: { type: "string" },
  consumers: { type: "string" },
  "batch-bytes": { type: "string" },
  "linger-ms": { type: "string" },
  "max-in-flight": { type: "string" },
  durability: { type: "string" },
  rate: { type: "string" },
  seed: { type: "string" },
  warmup: { type: "string" },
  raw: { type: "boolean" },
  "fetch-bytes": { type: "string" },
  "no-ceiling": { type: "boolean" },
  "no-floor": { type: "boolean" },
  json: { type: "string" },
  html: { type: "string" },
  file: { type: "string" },
  mode: { type: "string" },
  "kafka-broker": { type: "string" },
  "kafkajs-messages": { type: "string" },
  "kcat-lines": { type: "string" },
  rounds: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Flags = ReturnType<typeof parseArgs<typeof FLAGS>>["flags"];
/** What a user may name; the other two are children the bench spawns itself. */
const USER_WORKLOADS = ["produce", "consume", "e2e", "ceiling", "kafka"] as const;
const WORKLOADS = [...USER_WORKLOADS, "sendfile-server", "e2e-consumer", "floor-relay", "floor-receiver"] as const;
type Workload = (typeof WORKLOADS)[number];

/** The positional workload; an unknown one is a usage error naming only the user-facing ones. */
function workloadOf(name: string | undefined): Workload {
  const found = WORKLOADS.find((workload) => workload === name);
  if (found !== undefined) return found;
  throw new UsageError(`unknown workload '${name}': choose ${USER_WORKLOADS.join(", ")} (e.g. 'runnel bench produce --embedded --messages 100000')`);
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (flags.help) {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "name a workload: produce, consume, e2e or ceiling" : `unexpected argument '${positionals[1]}'`);
    const workload = workloadOf(positionals[0]);
    if (workload === "sendfile-server") return await runFileServer(flags);
    if (workload === "e2e-consumer") return await runConsumerProcess();
    if (workload === "floor-relay") return await runFloorRelay();
    if (workload === "floor-receiver") return await runFloorReceiver();
    if (workload === "ceiling") return await runCeilingOnly(flags);
    if (workload === "kafka") return await runKafka(flags);
    return await runWorkload(workload, flags);
  } catch (error) {
    return reportFailure("bench", error);
  }
}

function readOptions(workload: WorkloadName, flags: Flags, broker: string): WorkloadOptions {
  const durationS = flags.duration === undefined ? null : intFlag(flags.duration, "duration", 10, 1, 24 * 3600);
  let messages = flags.messages === undefined ? null : intFlag(flags.messages, "messages", 1_000_000, 1);
  if (messages === null && (durationS === null || workload === "consume")) messages = workload === "e2e" ? null : 1_000_000;
  const rate = flags.rate === undefined ? null : intFlag(flags.rate, "rate", 0, 1, 100_000_000);
  if (rate !== null && workload === "consume") throw new UsageError("--rate applies to produce and e2e");
  return {
    broker,
    topic: flags.topic ?? `bench-${workload}-${Date.now().toString(36)}`,
    messages,
    durationS: workload === "e2e" && messages === null && durationS === null ? 10 : durationS,
    sizeBytes: intFlag(flags.size, "size", 100, 0, 16 * MiB),
    partitions: intFlag(flags.partitions, "partitions", 1, 1, 10_000),
    producers: intFlag(flags.producers, "producers", 1, 1, 1_000),
    consumers: intFlag(flags.consumers, "consumers", 1, 1, 1_000),
    batchBytes: flags["batch-bytes"] === undefined ? null : intFlag(flags["batch-bytes"], "batch-bytes", 64 * KiB, 1, 64 * MiB),
    lingerMs: intFlag(flags["linger-ms"], "linger-ms", 5, 0, 60_000),
    maxInFlight: intFlag(flags["max-in-flight"], "max-in-flight", 5, 1, 5),
    durability: choiceFlag(flags.durability, "durability", ["none", "written", "synced"] as Durability[], "written"),
    rate,
    seed: intFlag(flags.seed, "seed", 1, 0, 2 ** 32 - 1),
    raw: flags.raw === true,
    fetchBytes: intFlag(flags["fetch-bytes"], "fetch-bytes", 1 * MiB, 1, 64 * MiB),
    warmupS: workload === "e2e" ? intFlag(flags.warmup, "warmup", E2E_WARMUP_S, 0, 3600) : 0,
  };
}

/**
 * e2e's default warm-up. The first second of a run at 100,000 msgs/s holds most of its tail
 * (p99 ~15 ms in that second, ~3 ms after): the three processes' JIT compiles the hot paths and
 * their heaps grow. Load-test harnesses leave a warm-up out (OpenMessaging Benchmark's
 * warmupDurationMinutes) and so do we; the note under the table says what it saw.
 */
const E2E_WARMUP_S = 2;

async function runWorkload(workload: WorkloadName, flags: Flags): Promise<number> {
  if (flags.embedded && flags.broker !== undefined) throw new UsageError("use --broker or --embedded, not both");
  let embedded: EmbeddedBroker | null = null;
  let document: ResultDocument;
  try {
    if (flags.embedded) {
      stopOnSignal();
      embedded = await startEmbeddedBroker();
    }
    const options = { ...readOptions(workload, flags, embedded?.address ?? flags.broker ?? DEFAULT_BROKER), metricsAddress: embedded?.httpAddress ?? null };
    const created = await ensureTopic(options.broker, options.topic, options.partitions);
    let startUsage: ProcessUsage | null = null;
    const result = await measure(workload, options, () => (startUsage = embedded?.usage() ?? null));
    const usage = embedded === null ? null : await embedded.stop();
    if (created && embedded === null && flags.topic === undefined) await deleteTopic(options.broker, options.topic).catch(() => undefined);
    const ceiling = flags["no-ceiling"] ? null : await ceilingFor(options, result);
    const measuredCpuSeconds = usage === null || startUsage === null ? null : usage.cpuSeconds - (startUsage as ProcessUsage).cpuSeconds;
    document = toDocument(result, parametersOf(workload, options, flags), ceiling, usage === null || embedded === null ? null : { ...usage, address: embedded.address, measuredCpuSeconds });
    if (workload === "e2e" && options.rate !== null && !flags["no-floor"]) document = withLatencyFloor(document, await measureLatencyFloor(floorOptions(options)));
  } finally {
    await embedded?.stop();
  }
  process.stdout.write(formatTable(document));
  writeOutputs(flags, [document], null);
  return document.failures > 0 && document.messages === 0 ? 1 : EXIT_OK;
}

/** The floor runs at e2e's rate, size and warm-up, for as long as e2e's measured phase (at most 10 s). */
function floorOptions(options: WorkloadOptions): FloorOptions {
  const rate = options.rate ?? 1;
  const measuredS = options.durationS ?? (options.messages ?? rate) / rate;
  return { rate, sizeBytes: Math.max(8, options.sizeBytes), durationS: Math.min(LATENCY_FLOOR_S_MAX, measuredS), warmupS: options.warmupS ?? 0 };
}

const LATENCY_FLOOR_S_MAX = 10;

/** Ctrl-C or a kill of the bench must not leave the embedded broker (and its temp dir) behind. */
function stopOnSignal(): void {
  const stop = (signal: NodeJS.Signals) => {
    void stopEmbeddedBrokers().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

async function measure(workload: WorkloadName, options: WorkloadOptions, onStart: () => void): Promise<WorkloadResult> {
  const meter = new Meter();
  meter.onStart = onStart;
  if (process.stderr.isTTY) meter.onTick = drawProgress(workload, options);
  try {
    if (workload === "produce") return await runProduce(options, meter);
    if (workload === "consume") return await runConsume(options, meter);
    return await runEndToEnd(options, meter);
  } finally {
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[2K");
  }
}

/** A live "[#####.....] 1,234,567 messages  2,345,678/s" line on stderr. */
function drawProgress(workload: WorkloadName, options: WorkloadOptions): (meter: Meter) => void {
  return (meter) => {
    const elapsed = meter.elapsedSeconds;
    const fraction = options.messages !== null ? meter.completed / options.messages : options.durationS !== null ? elapsed / options.durationS : 0;
    const filled = Math.max(0, Math.min(30, Math.round(fraction * 30)));
    const rate = elapsed > 0 ? meter.completed / elapsed : 0;
    const bar = `[${"#".repeat(filled)}${".".repeat(30 - filled)}]`;
    process.stderr.write(`\r\x1b[2K${workload} ${bar} ${meter.completed.toLocaleString("en-US")} messages  ${Math.round(rate).toLocaleString("en-US")}/s`);
  };
}

async function ceilingFor(options: WorkloadOptions, result: WorkloadResult): Promise<{ name: string; bytesPerSecond: number }> {
  const fileBytes = Math.min(512 * MiB, Math.max(64 * MiB, Math.ceil(result.bytes / MiB) * MiB));
  const ceiling = await measureCeiling({ fileBytes, chunkBytes: Math.max(options.batchBytes ?? 64 * KiB, 4 * KiB), rounds: 2 });
  if (result.workload === "consume") return { name: "loopback sendfile", bytesPerSecond: ceiling.tcpSendfileBytesPerSecond };
  if (result.workload === "produce" && options.durability === "synced") return { name: "pwrite + fdatasync per MiB", bytesPerSecond: ceiling.pwriteSyncedBytesPerSecond };
  const tcpBound = ceiling.tcpSendfileBytesPerSecond <= ceiling.pwriteBytesPerSecond;
  return { name: tcpBound ? "loopback sendfile (< pwrite)" : "pwrite (< loopback sendfile)", bytesPerSecond: Math.min(ceiling.tcpSendfileBytesPerSecond, ceiling.pwriteBytesPerSecond) };
}

function parametersOf(workload: WorkloadName, options: WorkloadOptions, flags: Flags): ResultDocument["parameters"] {
  return {
    workload,
    broker: flags.embedded ? "embedded" : options.broker,
    topic: options.topic,
    messages: options.messages,
    durationS: options.durationS,
    sizeBytes: options.sizeBytes,
    partitions: options.partitions,
    producers: options.producers,
    consumers: options.consumers,
    batchBytes: options.batchBytes,
    lingerMs: options.lingerMs,
    maxInFlight: options.maxInFlight,
    durability: options.durability,
    rate: options.rate,
    seed: options.seed,
    raw: options.raw,
    fetchBytes: options.fetchBytes,
    warmupS: options.warmupS ?? 0,
  };
}

/** `runnel bench kafka`: prints each row as it is measured, then the table; --json writes the rows. */
async function runKafka(flags: Flags): Promise<number> {
  if (flags.embedded && flags.broker !== undefined) throw new UsageError("use --broker (with --kafka-broker) or --embedded, not both");
  if (!flags.embedded && (flags.broker === undefined) !== (flags["kafka-broker"] === undefined)) throw new UsageError("--broker and --kafka-broker go together (or use --embedded)");
  let embedded: EmbeddedBroker | null = null;
  let rows: KafkaBenchRow[];
  try {
    if (flags.embedded) {
      stopOnSignal();
      embedded = await startEmbeddedBroker();
      if (embedded.kafkaAddress === null) throw new UsageError("the embedded broker started without its Kafka listener");
    }
    const size = flags.size === undefined ? null : intFlag(flags.size, "size", 100, 0, 16 * MiB);
    rows = await runKafkaBench(
      {
        broker: embedded?.address ?? flags.broker ?? DEFAULT_BROKER,
        kafkaBroker: embedded?.kafkaAddress ?? flags["kafka-broker"] ?? "127.0.0.1:9092",
        sizesBytes: size === null ? [100, 1024] : [size],
        messages: intFlag(flags.messages, "messages", 1_000_000, 1),
        kafkajsMessages: intFlag(flags["kafkajs-messages"], "kafkajs-messages", 200_000, 0),
        kcatLines: intFlag(flags["kcat-lines"], "kcat-lines", 1_000_000, 0),
        batchBytes: intFlag(flags["batch-bytes"], "batch-bytes", 64 * KiB, 1, 64 * MiB),
        fetchBytes: intFlag(flags["fetch-bytes"], "fetch-bytes", 1 * MiB, 1, 64 * MiB),
        seed: intFlag(flags.seed, "seed", 1, 0, 2 ** 32 - 1),
        rounds: intFlag(flags.rounds, "rounds", 3, 1, 100),
      },
      (row) => {
        if (process.stderr.isTTY) process.stderr.write(`  ${row.sizeBytes} B  ${row.path}: ${Math.round(row.messagesPerSecond).toLocaleString("en-US")} msgs/s\n`);
      },
    );
  } finally {
    await embedded?.stop();
  }
  process.stdout.write(formatKafkaRows(rows));
  if (flags.json !== undefined) fs.writeFileSync(flags.json, `${JSON.stringify({ workload: "kafka", rows }, null, 2)}\n`);
  return EXIT_OK;
}

async function runCeilingOnly(flags: Flags): Promise<number> {
  const fileBytes = intFlag(flags.size, "size", 256 * MiB, 1 * MiB, 16 * 1024 * MiB);
  const ceiling = await measureCeiling({ fileBytes, chunkBytes: intFlag(flags["batch-bytes"], "batch-bytes", 64 * KiB, 4 * KiB, 64 * MiB), rounds: 3 });
  process.stdout.write(formatCeiling(ceiling));
  writeOutputs(flags, [], ceiling);
  return EXIT_OK;
}

function writeOutputs(flags: Flags, documents: ResultDocument[], ceiling: Ceiling | null): void {
  if (flags.json !== undefined) {
    const body = ceiling === null ? (documents.length === 1 ? documents[0] : documents) : { ceiling };
    fs.writeFileSync(flags.json, `${JSON.stringify(body, null, 2)}\n`);
  }
  if (flags.html !== undefined) {
    if (documents.length === 0) throw new UsageError("--html needs a workload (produce, consume or e2e)");
    fs.writeFileSync(flags.html, renderHtml(documents));
  }
}

/** The ceiling's file server: prints {"port": N} and serves until SIGTERM. */
async function runFileServer(flags: Flags): Promise<number> {
  if (flags.file === undefined) throw new UsageError("--file is required");
  const mode = choiceFlag(flags.mode, "mode", ["sendfile", "copy"] as SendMode[], "sendfile");
  const server = serveFile(flags.file, mode);
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  server.stop();
  return EXIT_OK;
}
