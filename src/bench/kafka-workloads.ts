/**
 * @module bench/kafka-workloads
 * `runnel bench kafka`: the Kafka listener measured against the native protocol in one run, per
 * message size, on one partition each (fresh topics):
 *
 *   native produce      the client library's Producer (64 KiB batches, 5 in flight), durability written
 *   kafka produce raw   bench/kafka-wire.ts: Kafka batches built in-process (format/kafka-batch.ts,
 *                       CRC-32C by the addon or the JS loop, format/crc32c.ts) into recycled
 *                       buffers, Produce v9 acks=1 written around each batch and sent as one chunk
 *                       (kafka-produce-frame.ts), 5 in flight — our own minimal path, not a client library
 *   kafka produce kafkajs  kafkajs 2.2.4's producer (a real client library, JS), acks=1, 5 sends in flight
 *   native raw fetch    bench/raw-fetch.ts over the native topic (batches counted, not decoded)
 *   kafka raw fetch     Fetch v12 over the Kafka-produced topic, same speculation (2 in flight),
 *                       batches counted from their headers: the broker sends them with sendfile
 *   kcat -P / kcat -C   kcat (librdkafka) producing N lines from a file and reading them back (-e)
 *
 * Each size runs `rounds` rounds on fresh topics (deleted after), the order alternated; each
 * path's median round is reported with the range over the rounds. Ratios: Kafka produce / native
 * produce, Kafka raw fetch / native raw fetch (issue 11's targets: >= 70% and >= 80%), as the
 * median of the per-round ratios (both paths of a round ran back to back, so they share its
 * load), each round's ratio listed too. On a shared machine figures move by 2x from run to run.
 */
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import { RunnelError } from "../errors.ts";
import { CRC32C_IMPLEMENTATION } from "../format/crc32c.ts";
import { encodeKafkaBatch, type KafkaRecordInput } from "../format/kafka-batch.ts";
import { API_KEYS } from "../listeners/kafka/definitions.ts";
import type { KafkaStruct } from "../listeners/kafka/codec.ts";
import { CLIENT_ID, KafkaWire } from "./kafka-wire.ts";
import { encodeProduceFrame, PRODUCE_FRAME_VERSION, PRODUCE_HEADROOM_BYTES, PRODUCE_TAILROOM_BYTES } from "./kafka-produce-frame.ts";
import { BATCH_HEADER_BYTES } from "../format/record-batch.ts";
import { countNew, predictOffset, type Track } from "./raw-fetch.ts";
import { deleteTopic, ensureTopic, Meter, payload, runConsume, runProduce, type WorkloadOptions } from "./workloads.ts";

export interface KafkaBenchOptions {
  /** Native listener HOST:PORT. */
  broker: string;
  /** Kafka listener HOST:PORT. */
  kafkaBroker: string;
  sizesBytes: number[];
  messages: number;
  /** Messages for kafkajs (slow; 0 skips it). */
  kafkajsMessages: number;
  /** Lines for kcat (0 skips it; also skipped when kcat is not on the PATH). */
  kcatLines: number;
  batchBytes: number;
  fetchBytes: number;
  seed: number;
  /** Rounds per size (each path's median round is reported, with the range). */
  rounds: number;
}

export interface KafkaBenchRow {
  sizeBytes: number;
  path: string;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  /** This row against its native baseline (produce or raw fetch): the median of the per-round ratios; null for the baselines. */
  ratioToNative: number | null;
  /** Each round's ratio to its native baseline in that round (empty for the baselines and single runs). */
  roundRatios: number[];
  /** Slowest and fastest round, MB/s (equal for a single run). */
  megabytesPerSecondRange: [number, number];
  note: string;
}

const PRODUCE_IN_FLIGHT = 5;
const FETCH_VERSION = 12;
const FETCH_IN_FLIGHT = 2;
/** Kafka's per-record overhead for a small record (length, attributes, deltas, key/value lengths, header count). */
const KAFKA_RECORD_OVERHEAD_BYTES = 10;
/** encodeKafkaBatch's room per record besides key and value (its buffer estimate): a recycled buffer this large always fits. */
const KAFKA_RECORD_ESTIMATE_BYTES = 24;
const MB = 1_000_000;

interface Measured {
  messages: number;
  seconds: number;
  bytes: number;
}

function byteRate(measured: Measured): number {
  return measured.seconds > 0 ? measured.bytes / measured.seconds : 0;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The round of median byte rate (the lower middle one for an even count). */
function medianRound(rounds: readonly Measured[]): Measured {
  const sorted = [...rounds].sort((a, b) => byteRate(a) - byteRate(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NOTHING;
}

/** One path's row: its median round, the range over its rounds, and (against `baselines`, round by round) its ratios. */
function row(sizeBytes: number, pathName: string, rounds: readonly Measured[], baselines: readonly Measured[] | null, note: string): KafkaBenchRow {
  const measured = medianRound(rounds);
  const rate = (value: number) => (measured.seconds > 0 ? value / measured.seconds : 0);
  const rates = rounds.map((round) => byteRate(round) / MB);
  const roundRatios = baselines === null ? [] : rounds.flatMap((round, index) => (byteRate(baselines[index] ?? NOTHING) > 0 ? [byteRate(round) / byteRate(baselines[index] ?? NOTHING)] : []));
  return {
    sizeBytes,
    path: pathName,
    messages: measured.messages,
    seconds: measured.seconds,
    messagesPerSecond: rate(measured.messages),
    megabytesPerSecond: rate(measured.bytes) / MB,
    ratioToNative: roundRatios.length === 0 ? null : median(roundRatios),
    roundRatios: roundRatios.length > 1 ? roundRatios : [],
    megabytesPerSecondRange: [Math.min(...rates), Math.max(...rates)],
    note,
  };
}

/** Runs every path for every size; returns the rows in order. */
export async function runKafkaBench(options: KafkaBenchOptions, onRow: (row: KafkaBenchRow) => void = () => undefined): Promise<KafkaBenchRow[]> {
  const rows: KafkaBenchRow[] = [];
  const add = (next: KafkaBenchRow) => {
    rows.push(next);
    onRow(next);
  };
  const stamp = Date.now().toString(36);
  for (const sizeBytes of options.sizesBytes) {
    const measured = await measureRounds(options, sizeBytes, stamp);
    const rounds = `median of ${options.rounds} round${options.rounds === 1 ? "" : "s"}`;
    add(row(sizeBytes, "native produce (client library)", measured.nativeProduce, null, `baseline for produce; ${rounds}`));
    add(row(sizeBytes, "kafka produce, raw (in-process, our codec)", measured.kafkaProduce, measured.nativeProduce, `Produce v9 acks=1, ${PRODUCE_IN_FLIGHT} in flight, recycled batch buffers, CRC-32C: ${CRC32C_IMPLEMENTATION}; ${rounds}`));
    if (options.kafkajsMessages > 0) add(await kafkajsRow(options, sizeBytes, stamp, medianRound(measured.nativeProduce)));
    add(row(sizeBytes, "native raw fetch (sendfile)", measured.nativeFetch, null, `baseline for consume; ${rounds}`));
    add(row(sizeBytes, "kafka raw fetch of kafka-produced data (sendfile)", measured.kafkaFetch, measured.nativeFetch, `Fetch v12, batches counted; ${rounds}`));
  }
  if (options.kcatLines > 0) await kcatRows(options, stamp, add);
  return rows;
}

/** Each path's measurement in each round, in round order. */
interface Paths {
  nativeProduce: Measured[];
  kafkaProduce: Measured[];
  nativeFetch: Measured[];
  kafkaFetch: Measured[];
}

const NOTHING: Measured = { messages: 0, seconds: 0, bytes: 0 };

/**
 * `rounds` rounds, each on fresh topics deleted afterwards (so no round reads or writes behind
 * another's dirty pages), native first in even rounds and Kafka first in odd ones; every round
 * is kept (the caller reports medians and ranges: the box is shared, one round proves little).
 */
async function measureRounds(options: KafkaBenchOptions, sizeBytes: number, stamp: string): Promise<Paths> {
  const all: Paths = { nativeProduce: [], kafkaProduce: [], nativeFetch: [], kafkaFetch: [] };
  for (let round = 0; round < options.rounds; round++) {
    const nativeTopic = `bench-kafka-native-${sizeBytes}-${stamp}-${round}`;
    const kafkaTopic = `bench-kafka-raw-${sizeBytes}-${stamp}-${round}`;
    const workload = workloadOptions(options, nativeTopic, sizeBytes);
    await ensureTopic(options.broker, nativeTopic, 1);
    await ensureTopic(options.broker, kafkaTopic, 1);
    const nativeProduce = async () => {
      const produced = await runProduce(workload, new Meter());
      return { messages: produced.messages, seconds: produced.seconds, bytes: produced.messages * sizeBytes };
    };
    const nativeFetch = async () => {
      const fetched = await runConsume({ ...workload, raw: true }, new Meter());
      return { messages: fetched.messages, seconds: fetched.seconds, bytes: fetched.bytes };
    };
    const kafkaFirst = round % 2 === 1;
    const [produceA, produceB] = kafkaFirst ? [() => rawKafkaProduce(options, kafkaTopic, sizeBytes), nativeProduce] : [nativeProduce, () => rawKafkaProduce(options, kafkaTopic, sizeBytes)];
    const producedA = await produceA();
    const producedB = await produceB();
    const [fetchA, fetchB] = kafkaFirst ? [() => rawKafkaFetch(options, kafkaTopic, options.messages), nativeFetch] : [nativeFetch, () => rawKafkaFetch(options, kafkaTopic, options.messages)];
    const fetchedA = await fetchA();
    const fetchedB = await fetchB();
    const [kafkaProduced, nativeProduced] = kafkaFirst ? [producedA, producedB] : [producedB, producedA];
    const [kafkaFetched, nativeFetched] = kafkaFirst ? [fetchedA, fetchedB] : [fetchedB, fetchedA];
    all.nativeProduce.push(nativeProduced);
    all.kafkaProduce.push(kafkaProduced);
    all.nativeFetch.push(nativeFetched);
    all.kafkaFetch.push(kafkaFetched);
    await deleteTopic(options.broker, nativeTopic);
    await deleteTopic(options.broker, kafkaTopic);
  }
  return all;
}

function workloadOptions(options: KafkaBenchOptions, topic: string, sizeBytes: number): WorkloadOptions {
  return {
    broker: options.broker,
    topic,
    messages: options.messages,
    durationS: null,
    sizeBytes,
    partitions: 1,
    producers: 1,
    consumers: 1,
    batchBytes: options.batchBytes,
    lingerMs: 5,
    maxInFlight: PRODUCE_IN_FLIGHT,
    durability: "written",
    rate: null,
    seed: options.seed,
    raw: false,
    fetchBytes: options.fetchBytes,
  };
}

/**
 * Kafka batches of ~batchBytes built here and sent as Produce v9 (acks=1), 5 in flight: each
 * batch encoded (records, CRC-32C) into a recycled buffer, the request written around it by hand
 * and sent as one chunk (kafka-produce-frame.ts). What a Kafka client library adds on top —
 * metadata, partitioner, retries, per-message futures — is not here; kafkajs is that figure.
 */
export async function rawKafkaProduce(options: KafkaBenchOptions, topic: string, sizeBytes: number): Promise<Measured> {
  const wire = await KafkaWire.connect(options.kafkaBroker);
  const value = payload(sizeBytes, options.seed);
  const perBatch = Math.max(1, Math.floor(options.batchBytes / (sizeBytes + KAFKA_RECORD_OVERHEAD_BYTES)));
  const records: KafkaRecordInput[] = Array.from({ length: perBatch }, () => ({ value, timestamp: 0 }));
  let sent = 0;
  let acknowledged = 0;
  // Batch buffers are recycled once their request is answered (the broker has read every byte),
  // with room around the batch for the request written by hand (kafka-produce-frame.ts).
  const spare: Uint8Array[] = [];
  const batchBytesMax = BATCH_HEADER_BYTES + perBatch * (KAFKA_RECORD_ESTIMATE_BYTES + sizeBytes);
  const frameFields = { clientId: CLIENT_ID, topic, partition: 0, acks: 1, timeoutMs: 30_000 };
  const startNs = Bun.nanoseconds();
  try {
    const inFlight = new Set<Promise<void>>();
    while (sent < options.messages) {
      const count = Math.min(perBatch, options.messages - sent);
      const nowMs = Date.now();
      for (let index = 0; index < count; index++) (records[index] as KafkaRecordInput).timestamp = nowMs;
      const buffer = spare.pop() ?? new Uint8Array(PRODUCE_HEADROOM_BYTES + batchBytesMax + PRODUCE_TAILROOM_BYTES);
      const batch = encodeKafkaBatch(count === perBatch ? records : records.slice(0, count), undefined, buffer.subarray(PRODUCE_HEADROOM_BYTES, PRODUCE_HEADROOM_BYTES + batchBytesMax));
      sent += count;
      const request = wire.requestFramed(API_KEYS.produce, PRODUCE_FRAME_VERSION, (correlationId) => encodeProduceFrame(correlationId, frameFields, batch)).then((answer) => {
        checkProduceAnswer(answer);
        acknowledged += count;
        if (batch.buffer === buffer.buffer) spare.push(buffer);
      });
      const tracked = request.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= PRODUCE_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    wire.close();
  }
  const seconds = (Bun.nanoseconds() - startNs) / 1e9;
  return { messages: acknowledged, seconds, bytes: acknowledged * sizeBytes };
}

function checkProduceAnswer(answer: KafkaStruct): void {
  const topics = answer.responses as Array<{ partitionResponses: Array<{ errorCode: number; errorMessage?: string | null }> }>;
  const partition = topics[0]?.partitionResponses[0];
  if (partition === undefined || partition.errorCode !== 0) throw new RunnelError("INTERNAL", `Kafka produce answered error ${partition?.errorCode ?? "?"}: ${partition?.errorMessage ?? ""}`);
}

/** Fetch v12 from offset 0 until `expected` records are counted; 2 fetches in flight, the second at a predicted offset. */
export async function rawKafkaFetch(options: KafkaBenchOptions, topic: string, expected: number): Promise<Measured> {
  const wire = await KafkaWire.connect(options.kafkaBroker);
  const track: Track = { partition: 0, expected: 0, stride: 0, highWatermark: -1 };
  let counted = 0;
  let bytes = 0;
  const startNs = Bun.nanoseconds();
  try {
    const inFlight: Array<{ asked: number; answer: Promise<KafkaStruct> }> = [];
    while (counted < expected) {
      while (inFlight.length < FETCH_IN_FLIGHT && (inFlight.length === 0 || (track.stride > 0 && track.expected < track.highWatermark))) {
        const asked = predictOffset(track, inFlight.length);
        inFlight.push({ asked, answer: wire.request(API_KEYS.fetch, FETCH_VERSION, fetchBody(topic, asked, options.fetchBytes, inFlight.length === 0 ? 100 : 0)) });
      }
      const next = inFlight.shift() as { asked: number; answer: Promise<KafkaStruct> };
      const partition = (await next.answer).responses as Array<{ partitions: Array<{ errorCode: number; highWatermark: number; records: Uint8Array | null }> }>;
      const entry = partition[0]?.partitions[0];
      if (entry === undefined || entry.errorCode !== 0) throw new RunnelError("INTERNAL", `Kafka fetch answered error ${entry?.errorCode ?? "?"}`);
      if (entry.highWatermark > track.highWatermark) track.highWatermark = entry.highWatermark;
      const records = entry.records ?? new Uint8Array(0);
      const seen = countNew(records, 0, records.length, track.expected);
      if (seen.endOffset < 0 || seen.firstOffset > track.expected) {
        if (next.asked > track.expected) track.stride = 0;
        if (next.asked === track.expected && track.expected >= track.highWatermark) break; // caught up: nothing more to read
        continue;
      }
      counted += seen.records;
      bytes += seen.bytes;
      if (seen.endOffset > track.expected) {
        track.stride = seen.endOffset - Math.max(next.asked, seen.firstOffset);
        track.expected = seen.endOffset;
      }
    }
    for (const pending of inFlight) pending.answer.catch(() => undefined);
  } finally {
    wire.close();
  }
  return { messages: counted, seconds: (Bun.nanoseconds() - startNs) / 1e9, bytes };
}

function fetchBody(topic: string, fetchOffset: number, fetchBytes: number, maxWaitMs: number): KafkaStruct {
  return {
    clusterId: null,
    replicaId: -1,
    maxWaitMs,
    minBytes: 1,
    maxBytes: fetchBytes,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: fetchBytes }] }],
    forgottenTopicsData: [],
    rackId: "",
  };
}

// ---- kafkajs ------------------------------------------------------------------------------

interface KafkajsProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(record: { topic: string; acks: number; messages: Array<{ value: Buffer }> }): Promise<unknown>;
}

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number }) => { producer(config: { allowAutoTopicCreation: boolean }): KafkajsProducer };
}

/** kafkajs, when installed (a devDependency: present in a checkout, not in the compiled binary). */
async function loadKafkajs(): Promise<KafkajsModule | null> {
  const name = "kafkajs";
  try {
    return (await import(name)) as KafkajsModule;
  } catch {
    return null;
  }
}

async function kafkajsRow(options: KafkaBenchOptions, sizeBytes: number, stamp: string, baseline: Measured): Promise<KafkaBenchRow> {
  const kafkajs = await loadKafkajs();
  const pathName = "kafka produce, kafkajs 2.2.4";
  if (kafkajs === null) return skippedRow(sizeBytes, pathName, "skipped: kafkajs is not installed (npm install)");
  const topic = `bench-kafkajs-${sizeBytes}-${stamp}`;
  await ensureTopic(options.broker, topic, 1);
  const producer = new kafkajs.Kafka({ clientId: "runnel-bench-kafkajs", brokers: [options.kafkaBroker], logLevel: kafkajs.logLevel.NOTHING }).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const value = Buffer.from(payload(sizeBytes, options.seed));
  const perSend = Math.max(1, Math.floor(options.batchBytes / (sizeBytes + KAFKA_RECORD_OVERHEAD_BYTES)));
  let sent = 0;
  let acknowledged = 0;
  const startNs = Bun.nanoseconds();
  try {
    const inFlight = new Set<Promise<void>>();
    while (sent < options.kafkajsMessages) {
      const count = Math.min(perSend, options.kafkajsMessages - sent);
      sent += count;
      const messages = Array.from({ length: count }, () => ({ value }));
      const tracked: Promise<void> = producer
        .send({ topic, acks: 1, messages })
        .then(() => {
          acknowledged += count;
        })
        .finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= PRODUCE_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect().catch(() => undefined);
    await deleteTopic(options.broker, topic).catch(() => undefined);
  }
  const measured = { messages: acknowledged, seconds: (Bun.nanoseconds() - startNs) / 1e9, bytes: acknowledged * sizeBytes };
  return row(sizeBytes, pathName, [measured], [baseline], `${perSend} messages per send(), acks=1, ${PRODUCE_IN_FLIGHT} sends in flight; one run, against the median native round`);
}

function skippedRow(sizeBytes: number, pathName: string, note: string): KafkaBenchRow {
  return { sizeBytes, path: pathName, messages: 0, seconds: 0, messagesPerSecond: 0, megabytesPerSecond: 0, ratioToNative: null, roundRatios: [], megabytesPerSecondRange: [0, 0], note };
}

// ---- kcat ---------------------------------------------------------------------------------

/** kcat -P of `kcatLines` lines (~100 bytes each) from a file, then kcat -C -e of them; skipped without kcat. */
async function kcatRows(options: KafkaBenchOptions, stamp: string, add: (row: KafkaBenchRow) => void): Promise<void> {
  const kcat = Bun.which("kcat");
  const lineBytes = 100;
  if (kcat === null) {
    add(skippedRow(lineBytes, "kcat -P / -C", "skipped: kcat is not on the PATH"));
    return;
  }
  const topic = `bench-kcat-${stamp}`;
  await ensureTopic(options.broker, topic, 1);
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-bench-kcat-"));
  try {
    const file = path.join(directory, "lines");
    writeLines(file, options.kcatLines, lineBytes);
    const produceStartNs = Bun.nanoseconds();
    await runKcat([kcat, "-b", options.kafkaBroker, "-P", "-t", topic, "-X", "linger.ms=5", "-l", file], false);
    const produced = { messages: options.kcatLines, seconds: (Bun.nanoseconds() - produceStartNs) / 1e9, bytes: options.kcatLines * (lineBytes - 1) };
    add(row(lineBytes, "kcat -P (librdkafka, lines from a file)", [produced], null, `${options.kcatLines.toLocaleString("en-US")} lines of ${lineBytes} bytes`));
    const consumeStartNs = Bun.nanoseconds();
    const lines = await runKcat([kcat, "-b", options.kafkaBroker, "-C", "-t", topic, "-o", "beginning", "-e", "-q"], true);
    const consumed = { messages: lines, seconds: (Bun.nanoseconds() - consumeStartNs) / 1e9, bytes: lines * (lineBytes - 1) };
    add(row(lineBytes, "kcat -C -e (librdkafka, printed to a pipe)", [consumed], null, lines === options.kcatLines ? "every line read back" : `read ${lines} of ${options.kcatLines} lines`));
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
    await deleteTopic(options.broker, topic).catch(() => undefined);
  }
}

function writeLines(file: string, count: number, lineBytes: number): void {
  const filler = "x".repeat(lineBytes);
  const chunkLines = 10_000;
  const descriptor = fs.openSync(file, "w");
  try {
    for (let first = 0; first < count; first += chunkLines) {
      let text = "";
      for (let index = first; index < Math.min(count, first + chunkLines); index++) {
        const head = `line ${index} `;
        text += `${head}${filler.slice(0, lineBytes - 1 - head.length)}\n`;
      }
      fs.writeSync(descriptor, text);
    }
  } finally {
    fs.closeSync(descriptor);
  }
}

/** Runs kcat to its end; with `countLines`, returns the lines it printed. */
async function runKcat(command: string[], countLines: boolean): Promise<number> {
  const child = Bun.spawn(command, { stdin: "ignore", stdout: countLines ? "pipe" : "ignore", stderr: "pipe" });
  let lines = 0;
  if (countLines && child.stdout instanceof ReadableStream) {
    for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
      for (let index = chunk.indexOf(10); index >= 0; index = chunk.indexOf(10, index + 1)) lines += 1;
    }
  }
  const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
  if (code !== 0) throw new RunnelError("INTERNAL", `${path.basename(command[0] ?? "kcat")} exited with ${code}: ${stderr.trim()}`);
  return lines;
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(0)}%`;
}

export function formatKafkaRows(rows: KafkaBenchRow[]): string {
  const header = ["size", "path", "messages", "seconds", "msgs/s", "MB/s", "MB/s range", "vs native", "per round", "note"];
  const cells = rows.map((entry) => [
    `${entry.sizeBytes} B`,
    entry.path,
    entry.messages.toLocaleString("en-US"),
    entry.seconds.toFixed(2),
    Math.round(entry.messagesPerSecond).toLocaleString("en-US"),
    entry.megabytesPerSecond.toFixed(1),
    entry.megabytesPerSecondRange[0] === entry.megabytesPerSecondRange[1] ? "" : `${entry.megabytesPerSecondRange[0].toFixed(0)}-${entry.megabytesPerSecondRange[1].toFixed(0)}`,
    entry.ratioToNative === null ? "" : percent(entry.ratioToNative),
    entry.roundRatios.map(percent).join(" "),
    entry.note,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => (line[column] ?? "").length)));
  const render = (line: string[]) => `  ${line.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd()}`;
  return `${[render(header), ...cells.map(render)].join("\n")}\n`;
}
