/**
 * @module bench/workloads
 * The load `runnel bench` puts on a broker, through the real client library:
 *
 * - produce: `producers` Producers send `size`-byte messages as fast as the producer's buffer
 *   bound lets them (or at a fixed `rate`); latency is send() -> acknowledgement.
 * - consume: reads `messages` messages from the start of the topic (producing the missing ones
 *   first, untimed). Decoded through the Consumer (records handed out one by one), or `raw`:
 *   fetch requests whose batches are only counted (header read, records never decoded), several
 *   in flight at predicted offsets (bench/raw-fetch.ts).
 * - e2e: producers here and consumers in a child process (bench/e2e-consumer.ts) together;
 *   latency is the message's due send time -> the consumer seeing the message.
 *
 * Coordinated omission: with `rate`, message i is due at start + i / rate and its latency is
 * measured from that due time (stamped into the message for e2e), not from when the loop got
 * round to sending it, so a stall counts against every message it delayed.
 *
 * Producers send with `sendWithCallback` (no promise per message): the bench measures the
 * client library's fastest path; `send()` costs a promise (and a `.then`) per message more.
 */
import type { ClientTls } from "../client/link.ts";
import { Admin } from "../client/admin.ts";
import { Consumer } from "../client/consumer.ts";
import { type Durability, Producer, type SendCallback } from "../client/producer.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { type ConsumerOutcome, startConsumerProcess, stampClockNs } from "./e2e-consumer.ts";
import { formatGcCoincidence, gcCoincidence, GcProbe, gcProbeDirectory, readBrokerStamps } from "./gc-probe.ts";
import { type HistogramSnapshot, LatencyHistogram } from "./histogram.ts";
import { brokerRows, rowOfHistogram, scrapeMetrics, type StageRow } from "./latency-split.ts";
import { rawFetchesInFlight, rawFetchLoop } from "./raw-fetch.ts";

export type WorkloadName = "produce" | "consume" | "e2e";

export interface WorkloadOptions {
  broker: string;
  topic: string;
  /** Messages to send (produce, e2e) or read (consume); null: run for `durationS`. */
  messages: number | null;
  durationS: number | null;
  sizeBytes: number;
  partitions: number;
  producers: number;
  consumers: number;
  /** Producer batch bound; null: the client's default (adaptive, ProducerOptions.batchBytes). */
  batchBytes: number | null;
  lingerMs: number;
  /** Producer batches in flight per partition (ProducerOptions.maxInFlight). */
  maxInFlight: number;
  durability: Durability;
  /** Offered load in messages/s, all producers together; null: as fast as possible. */
  rate: number | null;
  seed: number;
  /** consume: count fetched batches without decoding records. */
  raw: boolean;
  /** Bytes per partition per fetch (consumers). */
  fetchBytes: number;
  /** Connect with TLS (raw consumers only, for bench/tls-fetch.ts); absent = plaintext. */
  tls?: ClientTls;
  /** The broker's HTTP listener, for e2e's broker-side split rows (bench/latency-split.ts); absent: none. */
  metricsAddress?: string | null;
  /**
   * e2e: seconds run at the offered load before the measured phase; their messages are kept out
   * of the latency figures and reported on their own (absent or 0: none).
   */
  warmupS?: number;
}

export interface WorkloadResult {
  workload: WorkloadName;
  messages: number;
  /** Bytes MB/s is computed from: payload (size x messages; consume: value bytes seen; raw: batch bytes fetched). */
  bytes: number;
  seconds: number;
  latency: LatencyHistogram;
  /** Messages completed per interval, for the throughput-over-time chart. */
  timeline: TimelinePoint[];
  failures: number;
  firstError: string | null;
  notes: string[];
  /** e2e: where the milliseconds went, stage by stage (bench/latency-split.ts); empty otherwise. */
  split?: StageRow[];
}

export interface TimelinePoint {
  seconds: number;
  messagesPerSecond: number;
}

const TIMELINE_INTERVAL_MS = 250;
/** The first second is sampled finer, so a short run (1M messages consumed in 0.2 s) still has a shape. */
const TIMELINE_FIRST_INTERVAL_MS = 50;
const TIMELINE_FIRST_PHASE_MS = 1_000;
const BURST_MESSAGES = 2_048;
/** --rate: the pause between send turns (Atomics.wait: ~0.1 ms in practice, sub-ms unlike timers). */
const PAUSE_MS = 0.05;
const PAUSE_CELL = new Int32Array(new SharedArrayBuffer(4));

/** The --rate loops' pause between turns (sendLoop's, and the latency floor's pacer, which must pace alike). */
export function pauseUntilDue(dueNs: number): void {
  if (dueNs > Bun.nanoseconds()) Atomics.wait(PAUSE_CELL, 0, 0, PAUSE_MS);
}
/** Full-speed runs time one message in 16 (power of two); --rate runs time every message. */
const LATENCY_SAMPLE_EVERY = 16;

/** Counts completions and samples the rate every TIMELINE_INTERVAL_MS (finer in the first second). */
export class Meter {
  completed = 0;
  /** Payload bytes seen, where counted (consumers); 0 means "messages x size". */
  bytes = 0;
  failures = 0;
  firstError: string | null = null;
  readonly timeline: TimelinePoint[] = [];
  readonly latency = new LatencyHistogram();
  /** e2e's per-stage histograms by stage name (bench/latency-split.ts), made on first use. */
  readonly stages = new Map<string, LatencyHistogram>();
  /**
   * e2e warm-up: messages due before this (the recording process's stamp clock) go to `warmup`,
   * not to `latency` or the stages. -Infinity: everything is measured.
   */
  measureFromNs = Number.NEGATIVE_INFINITY;
  readonly warmup = new LatencyHistogram();
  private startNs = 0;
  private lastCompleted = 0;
  private lastNs = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  onTick: ((meter: Meter) => void) | null = null;
  /** Called before each sample, to bring `completed` up to date from elsewhere (e2e's consumer process). */
  onSample: (() => void) | null = null;

  /** Called as the measured phase starts (after any untimed preload): the bench reads the broker's CPU time here. */
  onStart: (() => void) | null = null;

  start(): void {
    this.onStart?.();
    this.startNs = this.lastNs = Bun.nanoseconds();
    this.timer = setInterval(() => {
      this.sample();
      if (this.elapsedSeconds * 1000 < TIMELINE_FIRST_PHASE_MS) return;
      clearInterval(this.timer);
      this.timer = setInterval(() => this.sample(), TIMELINE_INTERVAL_MS);
    }, TIMELINE_FIRST_INTERVAL_MS);
  }

  stage(name: string): LatencyHistogram {
    let histogram = this.stages.get(name);
    if (histogram === undefined) {
      histogram = new LatencyHistogram();
      this.stages.set(name, histogram);
    }
    return histogram;
  }

  get elapsedSeconds(): number {
    return (Bun.nanoseconds() - this.startNs) / 1e9;
  }

  readonly fail = (error: unknown): void => {
    this.failures += 1;
    this.firstError ??= toRunnelError(error).message;
  };

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.elapsedSeconds;
  }

  private sample(): void {
    this.onSample?.();
    const nowNs = Bun.nanoseconds();
    const seconds = (nowNs - this.lastNs) / 1e9;
    if (seconds <= 0) return;
    this.timeline.push({ seconds: (nowNs - this.startNs) / 1e9, messagesPerSecond: (this.completed - this.lastCompleted) / seconds });
    this.lastCompleted = this.completed;
    this.lastNs = nowNs;
    this.onTick?.(this);
  }
}

/** Seeded xorshift32: the payload bytes are the same for the same --seed. */
export function payload(sizeBytes: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes);
  let state = seed >>> 0 || 0x9e3779b9;
  for (let index = 0; index < sizeBytes; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

/** Creates the topic (TOPIC_EXISTS is fine when it has enough partitions). */
export async function ensureTopic(broker: string, topic: string, partitions: number): Promise<boolean> {
  const admin = new Admin({ broker, clientId: "runnel-bench" });
  try {
    await admin.createTopic(topic, { partitions });
    return true;
  } catch (error) {
    if (!(error instanceof RunnelError) || error.code !== "TOPIC_EXISTS") throw error;
    const described = await admin.describeTopic(topic);
    if (described.partitions.length < partitions) {
      throw new RunnelError("INVALID_PARTITIONS", `topic ${topic} exists with ${described.partitions.length} partitions; the bench asks for ${partitions}`);
    }
    return false;
  } finally {
    await admin.connection.close();
  }
}

export async function deleteTopic(broker: string, topic: string): Promise<void> {
  const admin = new Admin({ broker, clientId: "runnel-bench" });
  try {
    await admin.deleteTopic(topic);
  } finally {
    await admin.connection.close();
  }
}

function newProducer(options: WorkloadOptions, index: number): Producer {
  return new Producer({
    broker: options.broker,
    clientId: `runnel-bench-producer-${index}`,
    durability: options.durability,
    ...(options.batchBytes === null ? {} : { batchBytes: options.batchBytes }),
    lingerMs: options.lingerMs,
    maxInFlight: options.maxInFlight,
  });
}

/** Shares the message budget (or the deadline) between producer loops. */
class Budget {
  private left: number;
  private deadlineNs: number;
  /** e2e warm-up: messages due before this are not counted against the budget (0: no warm-up). */
  private warmupEndNs = 0;
  constructor(messages: number | null, durationS: number | null) {
    this.left = messages ?? Number.POSITIVE_INFINITY;
    this.deadlineNs = durationS === null ? Number.POSITIVE_INFINITY : Bun.nanoseconds() + durationS * 1e9;
  }
  /** A warm-up until `endNs` comes on top: the messages and the duration count from its end. */
  warmUntil(endNs: number): void {
    const nowNs = Bun.nanoseconds();
    if (endNs <= nowNs) return;
    this.warmupEndNs = endNs;
    this.deadlineNs += endNs - nowNs;
  }
  /** `dueNs`: the message's due time, which decides whether it is a warm-up one (as the consumer decides). */
  take(dueNs = 0): boolean {
    if (dueNs < this.warmupEndNs) return true;
    if (this.left <= 0) return false;
    if ((this.left & 255) === 0 && Bun.nanoseconds() >= this.deadlineNs) {
      this.left = 0;
      return false;
    }
    this.left -= 1;
    return true;
  }
  get exhausted(): boolean {
    return this.left <= 0 || Bun.nanoseconds() >= this.deadlineNs;
  }
}

type Stamp = (value: Uint8Array, dueNs: number) => void;

/**
 * One producer's send loop. At full speed: bursts of sends until the producer's buffer is full,
 * then wait for room; the clock is read once per burst (a clock read costs ~30 ns, a tenth of a
 * message's budget) and latency is sampled on one message in LATENCY_SAMPLE_EVERY. At a fixed
 * rate: every message due by now is sent, stamped with its due time, each one's latency
 * recorded; then the loop waits until the next is due.
 *
 * Pacing (--rate): message i is due at start + i / rate; latency counts from the due time, so a
 * late loop cannot hide its lateness (no coordinated omission). A late loop catches up by sending
 * everything overdue at once (at most BURST_MESSAGES per turn); otherwise it never sends early.
 * Between due times less than 2 ms apart the loop blocks ~0.1 ms (Atomics.wait; timers have
 * 1 ms granularity) and then goes round the event loop: messages are sent up to ~0.1 ms after
 * they are due, which their latency includes. It used to spin through the event loop instead:
 * a core burnt (on 2 cores, taken from the broker and consumer) and, with a promise per turn,
 * ~300 MB/s of garbage, an eden GC (2-4 ms pause) every ~27 ms.
 */
function sendLoop(producer: Producer, options: WorkloadOptions, budget: Budget, meter: Meter, value: Uint8Array, stamp: Stamp | null, ratePerProducer: number | null): Promise<number> {
  let sent = 0;
  const topic = options.topic;
  const latency = meter.latency;
  // sendWithCallback: no promise (and no .then() promise) per message; see Producer docs.
  const onAck: SendCallback = (error) => {
    if (error === null) meter.completed += 1;
    else meter.fail(error);
  };
  const onTimedAck = (dueNs: number): SendCallback => (error) => {
    if (error !== null) return meter.fail(error);
    meter.completed += 1;
    latency.record(Bun.nanoseconds() - dueNs);
  };
  // e2e: the producer's part of the split (bench/latency-split.ts), from the batch being settled.
  const queueStage = meter.stage(STAGE_CLIENT_QUEUE);
  const ackStage = meter.stage(STAGE_PRODUCE_ACK);
  const onSplitAck = (dueNs: number): SendCallback => (error) => {
    if (error !== null) return meter.fail(error);
    meter.completed += 1;
    const { writtenNs, settledNs } = producer.settling;
    if (writtenNs === 0 || dueNs < meter.measureFromNs) return;
    queueStage.record(writtenNs - dueNs);
    ackStage.record(settledNs - writtenNs);
  };
  const unstamped = { value };
  // e2e: one stamped message reused while the producer copies each record as it is sent
  // (sendWithCallback returned true); a fresh one after it kept one to read later.
  let stamped = { value: value.slice() };
  const intervalNs = ratePerProducer === null ? 0 : 1e9 / ratePerProducer;
  let dueNs = Bun.nanoseconds();
  const burst = (): void => {
    const nowNs = Bun.nanoseconds();
    if (ratePerProducer === null) dueNs = nowNs;
    let count = 0;
    while (count < BURST_MESSAGES && (ratePerProducer === null ? !producer.saturated : dueNs <= nowNs) && budget.take(dueNs)) {
      let message = unstamped;
      if (stamp !== null) {
        message = stamped;
        stamp(message.value, dueNs);
      }
      // e2e: the consumer records latency; the producer only counts acknowledgements.
      const timed = stamp === null && (ratePerProducer !== null || (sent & (LATENCY_SAMPLE_EVERY - 1)) === 0);
      // The split's producer stages are sampled like a saturation run's latency (1 in 16): a
      // closure per message would be garbage the producer process pauses for, in the tail it measures.
      const split = stamp !== null && options.durability !== "none" && (sent & (LATENCY_SAMPLE_EVERY - 1)) === 0;
      const callback = split ? onSplitAck(dueNs) : timed ? onTimedAck(dueNs) : onAck;
      if (!producer.sendWithCallback(topic, message, callback) && message === stamped) stamped = { value: value.slice() };
      sent += 1;
      count += 1;
      dueNs += intervalNs;
    }
  };
  return new Promise<number>((resolve, reject) => {
    // After the sends' own immediates (lingerMs 0 seals there) and before the next turn: block
    // ~0.1 ms instead of spinning. A spinning load generator takes a whole core from the
    // broker and the consumer on a small machine, and each spin turn allocates (more GC).
    const pause = (): void => {
      pauseUntilDue(dueNs);
      setImmediate(turn);
    };
    const turn = (): void => {
      try {
        if (budget.exhausted) return void producer.flush().then(() => resolve(sent), reject);
        burst();
        if (ratePerProducer === null) {
          if (producer.saturated) producer.ready().then(turn, reject);
          else setImmediate(turn);
          return;
        }
        // Timers overshoot by up to a millisecond: sleep to 1 ms before the due time; closer
        // than that, pause (below) and go round the event loop, so I/O runs between sends.
        const waitMs = (dueNs - Bun.nanoseconds()) / 1e6;
        if (waitMs >= 2) setTimeout(turn, Math.floor(waitMs) - 1);
        else setImmediate(pause);
      } catch (error) {
        reject(error);
      }
    };
    turn();
  });
}

export async function runProduce(options: WorkloadOptions, meter: Meter): Promise<WorkloadResult> {
  const producers = Array.from({ length: options.producers }, (_, index) => newProducer(options, index));
  try {
    await Promise.all(producers.map((producer) => producer.connection.connect()));
    const value = payload(options.sizeBytes, options.seed);
    const budget = new Budget(options.messages, options.durationS);
    const ratePerProducer = options.rate === null ? null : options.rate / options.producers;
    meter.start();
    const sent = await Promise.all(producers.map((producer) => sendLoop(producer, options, budget, meter, value, null, ratePerProducer)));
    const seconds = meter.stop();
    const messages = sent.reduce((sum, count) => sum + count, 0) - meter.failures;
    const notes = options.rate === null ? [`latency sampled on 1 message in ${LATENCY_SAMPLE_EVERY}, from the start of its send burst (a saturation run: it includes queueing in the producer)`] : [];
    notes.push("sent with Producer.sendWithCallback (no promise per message)");
    if (options.durability === "none") notes.push("durability none: latency is send() -> bytes handed to the kernel");
    return result("produce", options, meter, messages, seconds, notes);
  } finally {
    await Promise.all(producers.map((producer) => producer.close().catch(() => undefined)));
  }
}

function result(workload: WorkloadName, options: WorkloadOptions, meter: Meter, messages: number, seconds: number, notes: string[], split: StageRow[] = []): WorkloadResult {
  return { workload, messages, bytes: meter.bytes > 0 ? meter.bytes : messages * options.sizeBytes, seconds, latency: meter.latency, timeline: meter.timeline, failures: meter.failures, firstError: meter.firstError, notes, split };
}

/** Stage names of the e2e split (bench/latency-split.ts). */
export const STAGE_CLIENT_QUEUE = "client queue";
export const STAGE_PRODUCE_ACK = "produce ack";
export const STAGE_TO_FETCH_ANSWER = "to fetch answer";
export const STAGE_CONSUMER = "consumer";

/** Partitions consumer `index` of `count` reads: every count-th one. */
export function partitionsOf(index: number, count: number, partitions: number): number[] {
  const mine: number[] = [];
  for (let partition = index; partition < partitions; partition += count) mine.push(partition);
  return mine;
}

/** How many messages the topic holds (sum of nextOffset - logStartOffset). */
async function topicMessages(broker: string, topic: string): Promise<number> {
  const admin = new Admin({ broker, clientId: "runnel-bench" });
  try {
    const described = await admin.describeTopic(topic);
    return described.partitions.reduce((sum, partition) => sum + partition.nextOffset - partition.logStartOffset, 0);
  } finally {
    await admin.connection.close();
  }
}

export async function runConsume(options: WorkloadOptions, meter: Meter): Promise<WorkloadResult> {
  const wanted = options.messages ?? 1_000_000;
  const notes: string[] = [];
  const have = await topicMessages(options.broker, options.topic);
  if (have < wanted) {
    const preload = await runProduce({ ...options, messages: wanted - have, durationS: null, rate: null }, new Meter());
    notes.push(`preloaded ${preload.messages.toLocaleString("en-US")} messages first (${(preload.messages / preload.seconds).toFixed(0)} msgs/s, untimed)`);
    // A preload that failed would otherwise show only as a short (or empty) consume.
    if (preload.failures > 0) notes.push(`preload: ${preload.failures.toLocaleString("en-US")} sends failed (first: ${preload.firstError ?? "?"})`);
  }
  const deadlineNs = options.durationS === null ? Number.POSITIVE_INFINITY : Bun.nanoseconds() + options.durationS * 1e9;
  const group = new ConsumerGroup(() => meter.completed >= wanted || ((meter.completed & 1023) === 0 && Bun.nanoseconds() >= deadlineNs));
  meter.start();
  await Promise.all(
    Array.from({ length: options.consumers }, (_, index) => {
      const partitions = partitionsOf(index, options.consumers, options.partitions);
      return options.raw ? rawFetchLoop(options, partitions, group, meter) : consumeLoop(options, partitions, group, meter, null);
    }),
  );
  const seconds = meter.stop();
  if (meter.completed < wanted && options.durationS === null) notes.push(`only ${meter.completed.toLocaleString("en-US")} of ${wanted.toLocaleString("en-US")} messages were there to read`);
  notes.push(options.raw ? `raw: fetched batches counted from their headers, records not decoded; ${rawFetchesInFlight(options.consumers)} fetch(es) in flight per consumer, the later ones at predicted offsets (overlaps counted once)` : "decoded by the Consumer (nextBatch, reuseFetchBuffers), one Message object per record");
  return result("consume", options, meter, meter.completed, seconds, notes);
}

/**
 * The consumers of one run: they stop together once `finished()` holds. A Consumer waiting for
 * messages that will never come only returns when closed, so the first to see the end closes all.
 */
export class ConsumerGroup {
  private readonly consumers = new Set<Consumer>();
  stopped = false;
  constructor(private readonly finished: () => boolean) {}
  add(consumer: Consumer): void {
    this.consumers.add(consumer);
    if (this.stopped) void consumer.close();
  }
  check(): boolean {
    if (!this.stopped && this.finished()) this.stop();
    return this.stopped;
  }
  stop(): void {
    this.stopped = true;
    for (const consumer of this.consumers) void consumer.close().catch(() => undefined);
  }
}

/**
 * Reads through a Consumer until the group stops; with `starts` (e2e), records each message's
 * latency: `clockNs()` when the batch arrives minus the stamp the message carries.
 */
export async function consumeLoop(
  options: WorkloadOptions,
  partitions: number[],
  group: ConsumerGroup,
  meter: Meter,
  starts: number[] | null,
  clockNs: () => number = Bun.nanoseconds,
  onWindow: ((dueNs: number, seenNs: number) => void) | null = null,
): Promise<void> {
  if (partitions.length === 0) return;
  // reuseFetchBuffers: every value is read before the next nextBatch() call (Consumer docs).
  const consumer = new Consumer({ broker: options.broker, clientId: "runnel-bench-consumer", partitionMaxBytes: options.fetchBytes, maxWaitMs: 100, reuseFetchBuffers: true });
  consumer.assign(partitions.map((partition) => ({ topic: options.topic, partition, from: { offset: starts?.[partition] ?? 0 } })));
  group.add(consumer);
  const toAnswer = meter.stage(STAGE_TO_FETCH_ANSWER);
  const held = meter.stage(STAGE_CONSUMER);
  try {
    while (!group.check()) {
      // nextBatch: every fetched message at once, no promise per message (Consumer docs).
      const batch = await consumer.nextBatch();
      if (batch.length === 0) break;
      meter.completed += batch.length;
      for (const message of batch) meter.bytes += message.value?.length ?? 0;
      if (starts === null) continue;
      const seenNs = clockNs(); // the whole batch reaches the application at once
      // The split: how long the batch sat in the consumer since its fetch answer arrived.
      const heldNs = consumer.fetchAnsweredNs === 0 ? 0 : Bun.nanoseconds() - consumer.fetchAnsweredNs;
      const answeredNs = seenNs - heldNs;
      for (const message of batch) {
        const value = message.value;
        if (value === null || value.length < 8) continue;
        const stampNs = readStamp(value);
        if (stampNs < meter.measureFromNs) {
          meter.warmup.record(seenNs - stampNs);
          continue;
        }
        meter.latency.record(seenNs - stampNs);
        if (onWindow !== null) onWindow(stampNs, seenNs);
        toAnswer.record(answeredNs - stampNs);
        held.record(heldNs);
      }
    }
  } finally {
    await consumer.close().catch(() => undefined);
  }
}

/** e2e messages carry their due time (ns on the consumer process's clock, see e2e-consumer.ts) in the first 8 bytes. */
/**
 * Stamps go through one 8-byte scratch (little-endian float64) copied in and out. A DataView
 * per message would allocate, and `value.buffer` on a fresh small array makes the engine
 * materialise an ArrayBuffer for it: at 100,000 messages/s, garbage the bench itself would
 * add to the latency it measures.
 */
const STAMP_SCRATCH = new Float64Array(1);
const STAMP_BYTES = new Uint8Array(STAMP_SCRATCH.buffer);
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function writeStamp(value: Uint8Array, stampNs: number): void {
  STAMP_SCRATCH[0] = stampNs;
  for (let index = 0; index < 8; index++) value[index] = STAMP_BYTES[LITTLE_ENDIAN_HOST ? index : 7 - index]!;
}

function readStamp(value: Uint8Array): number {
  for (let index = 0; index < 8; index++) STAMP_BYTES[LITTLE_ENDIAN_HOST ? index : 7 - index] = value[index]!;
  return STAMP_SCRATCH[0]!;
}

/**
 * Producers here, consumers in a child process (bench/e2e-consumer.ts: separate processes, as
 * deployed). Stamps are the due time on a clock both processes share, relative to a base taken
 * now (so a float64 keeps sub-microsecond resolution).
 */
export async function runEndToEnd(options: WorkloadOptions, meter: Meter): Promise<WorkloadResult> {
  if (options.sizeBytes < 8) throw new RunnelError("INVALID_CONFIG", "e2e needs --size of at least 8 bytes (the send time travels in the message)");
  const starts = await latestOffsets(options);
  const clockBaseNs = stampClockNs();
  const consumers = await startConsumerProcess({ options, starts, clockBaseNs });
  const gcDirectory = gcProbeDirectory();
  const gcProbe = gcDirectory === null ? null : new GcProbe().start();
  const warmupS = options.warmupS ?? 0;
  let gcSinceNs = stampClockNs();
  const producers = Array.from({ length: options.producers }, (_, index) => newProducer(options, index));
  const value = payload(options.sizeBytes, options.seed);
  const budget = new Budget(options.messages, options.durationS);
  const sendMeter = new Meter();
  // dueNs is Bun.nanoseconds() here; the consumer reads stampClockNs() - clockBaseNs.
  const shiftNs = stampClockNs() - clockBaseNs - Bun.nanoseconds();
  const stamp: Stamp = (bytes, dueNs) => writeStamp(bytes, dueNs + shiftNs);
  try {
    await Promise.all(producers.map((producer) => producer.connection.connect()));
    let metricsBefore = await scrapeMetrics(options.metricsAddress ?? null);
    meter.onSample = () => (meter.completed = consumers.completed);
    meter.start();
    // Warm-up: the producers' clock decides what is measured here, the stamp clock in the consumer.
    sendMeter.measureFromNs = Bun.nanoseconds() + warmupS * 1e9;
    budget.warmUntil(sendMeter.measureFromNs);
    consumers.measureFrom(sendMeter.measureFromNs + shiftNs);
    const warmupTimer = warmupS === 0 ? undefined : setTimeout(() => {
      gcSinceNs = stampClockNs();
      void scrapeMetrics(options.metricsAddress ?? null).then((text) => (metricsBefore = text));
    }, warmupS * 1000);
    const ratePerProducer = options.rate === null ? null : options.rate / options.producers;
    const sent = await Promise.all(producers.map((producer) => sendLoop(producer, options, budget, sendMeter, value, stamp, ratePerProducer)));
    clearTimeout(warmupTimer);
    const expected = sent.reduce((sum, count) => sum + count, 0) - sendMeter.failures;
    consumers.expect(expected);
    // Every acknowledged message should arrive; give the tail a bounded time to.
    const timer = setTimeout(() => consumers.stop(), E2E_TAIL_TIMEOUT_MS);
    const outcome = await consumers.outcome;
    clearTimeout(timer);
    meter.onSample = null;
    meter.completed = outcome.completed;
    meter.bytes = outcome.bytes;
    meter.latency.addSnapshot(outcome.latency);
    const seconds = meter.stop();
    const split = await splitRows(options, sendMeter, outcome.stages, metricsBefore, meter.latency);
    const notes = [
      `latency: due send time -> the consumer seeing the message${options.rate === null ? " (no --rate: a saturation run, latency includes queueing)" : ""}`,
      "consumers run in a child process (as deployed: producer and consumer do not share a JS thread); stamps use the shared epoch clock",
    ];
    if (warmupS > 0) notes.push(warmupNote(warmupS, outcome.warmup));
    if (gcDirectory !== null && gcProbe !== null && outcome.gc !== undefined) {
      gcProbe.stop();
      const tailNs = meter.latency.valueAt(99);
      const stamps = { producer: gcProbe.stampsNs, broker: readBrokerStamps(gcDirectory, gcSinceNs), consumer: outcome.gc.stampsNs };
      notes.push(formatGcCoincidence(gcCoincidence(stamps, outcome.gc.windows, tailNs), tailNs / 1e6));
    }
    if (meter.completed < expected) notes.push(`only ${meter.completed} of ${expected} messages arrived within ${E2E_TAIL_TIMEOUT_MS / 1000} s of the last send`);
    meter.failures += sendMeter.failures + Math.max(0, expected - meter.completed);
    meter.firstError ??= sendMeter.firstError ?? (meter.completed < expected ? "messages did not arrive" : null);
    // The figures are the measured phase's: the warm-up's messages and seconds come off.
    const warmupMessages = outcome.warmup?.total ?? 0;
    meter.completed -= warmupMessages;
    meter.bytes = Math.max(0, meter.bytes - warmupMessages * options.sizeBytes);
    return result("e2e", options, meter, meter.completed, Math.max(seconds - warmupS, 1e-3), notes, split);
  } finally {
    consumers.kill();
    await Promise.all(producers.map((producer) => producer.close().catch(() => undefined)));
  }
}

const E2E_TAIL_TIMEOUT_MS = 30_000;

/** What the warm-up's messages saw, so what the figures leave out is in the report too. */
function warmupNote(warmupS: number, snapshot: HistogramSnapshot | undefined): string {
  const histogram = new LatencyHistogram();
  if (snapshot !== undefined) histogram.addSnapshot(snapshot);
  const ms = (percentile: number): string => (histogram.valueAt(percentile) / 1e6).toFixed(2);
  const seen = histogram.count === 0 ? "no messages" : `${histogram.count.toLocaleString("en-US")} messages: p50 ${ms(50)}, p99 ${ms(99)}, p99.99 ${ms(99.99)}, max ${(histogram.max / 1e6).toFixed(2)} ms`;
  return `warm-up: the first ${warmupS} s at the offered load (connections, JIT compilation) are not in the figures above (${seen}); --warmup 0 counts them`;
}

/** The e2e split's rows in data-flow order: producer stages, broker stages, consumer stages, total. */
async function splitRows(options: WorkloadOptions, sendMeter: Meter, consumerStages: ConsumerOutcome["stages"], metricsBefore: string | null, total: LatencyHistogram): Promise<StageRow[]> {
  const rows: StageRow[] = [];
  const own = (name: string, source: string, histogram: LatencyHistogram | undefined): void => {
    if (histogram !== undefined && histogram.count > 0) rows.push(rowOfHistogram(name, source, histogram));
  };
  own(STAGE_CLIENT_QUEUE, "producer: due -> request handed to the connection", sendMeter.stages.get(STAGE_CLIENT_QUEUE));
  own(STAGE_PRODUCE_ACK, "producer: request handed over -> ack (wire + broker)", sendMeter.stages.get(STAGE_PRODUCE_ACK));
  rows.push(...brokerRows(metricsBefore, await scrapeMetrics(options.metricsAddress ?? null)));
  for (const [name, source] of [
    [STAGE_TO_FETCH_ANSWER, "consumer process: due -> fetch answer arrived (epoch clock)"],
    [STAGE_CONSUMER, "consumer: fetch answer arrived -> nextBatch() handed it out"],
  ] as const) {
    const snapshot = consumerStages[name];
    if (snapshot === undefined) continue;
    const histogram = new LatencyHistogram();
    histogram.addSnapshot(snapshot);
    own(name, source, histogram);
  }
  own("total", "due -> the consumer sees it (the table above)", total);
  return rows;
}

async function latestOffsets(options: WorkloadOptions): Promise<number[]> {
  const admin = new Admin({ broker: options.broker, clientId: "runnel-bench" });
  try {
    const partitions = Array.from({ length: options.partitions }, (_, partition) => partition);
    return await admin.listOffsets(partitions.map((partition) => ({ topic: options.topic, partition, at: "latest" as const })));
  } finally {
    await admin.connection.close();
  }
}
