/**
 * @module broker/metrics
 * The broker's metrics registry: what the hot path bumps, and nothing else. Every counter is a
 * plain number on a plain object, found once per request or batch (a Map lookup by op or topic)
 * and incremented in place; histograms are fixed bucket arrays. Everything else (partition
 * offsets and sizes, lag, process figures) is read at scrape time by the HTTP listener
 * (listeners/http/metrics-route.ts), which also writes the Prometheus text.
 *
 * Why not prom-client: its `observe`/`inc` with labels hash the label set on every call; the
 * data path must not slow by more than 2%, and a bench of both (docs/operations.md,
 * "Observability") is where that choice is measured. A registry of plain numbers is what the
 * broker's existing `stats` counters already are (server/stats.ts).
 *
 * Cardinality is bounded: ops are a closed list (unknown ones count as "unknown"), listeners are
 * a closed list, topics are bounded by topicsMax and a deleted topic's counters are dropped at
 * the next scrape.
 */

/** Latency bucket bounds in seconds, 50 us .. 10 s (Prometheus `le` labels). */
export const LATENCY_BOUNDS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** A histogram over fixed bounds: per-bucket counts (not cumulative), a sum and a count. */
export class Histogram {
  /** counts[i] holds observations <= bounds[i] and > bounds[i-1]; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = LATENCY_BOUNDS_SECONDS) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > (bounds[index] as number)) index++;
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.sum += value;
    this.count++;
  }
}

/** One operation's figures on one listener. */
export interface OperationFigures {
  requests: number;
  errors: number;
  latency: Histogram;
}

/** A start time (or a duration) meaning "this request is not timed". */
export const NOT_TIMED = -1;

/**
 * 1 in this many requests is timed by startTimer: two clock reads (~45 ns each) were most of
 * what metrics cost a small produce (bench/metrics-overhead.bench.ts). A power of two.
 */
export const LATENCY_SAMPLE_EVERY = 16;

/** Listeners the broker has; a closed list keeps the label's cardinality fixed. */
export type ListenerName = "native" | "kafka";

/** Requests per operation on one listener. */
export class ListenerRequests {
  readonly byOperation = new Map<string, OperationFigures>();
  /** xorshift32 state: which requests are timed (never 0). */
  private sampleState = 0x9e3779b9;

  constructor(
    readonly listener: ListenerName,
    private readonly operations: ReadonlySet<string>,
  ) {}

  /**
   * performance.now() for 1 in LATENCY_SAMPLE_EVERY requests (on average), NOT_TIMED for the
   * others. Chosen by a pseudo-random draw, not a counter: requests of different ops arrive in
   * regular patterns (an end-to-end run alternates produce and fetch), and every 16th request
   * of a pattern whose period divides 16 is always the same op — a counter timed only fetches.
   */
  startTimer(): number {
    let state = this.sampleState;
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    this.sampleState = state;
    return (state & (LATENCY_SAMPLE_EVERY - 1)) === 0 ? performance.now() : NOT_TIMED;
  }

  /**
   * Records one answered request (`seconds` NOT_TIMED when it was not timed); an op outside
   * the listener's list counts as "unknown".
   */
  observe(operation: string, seconds: number, failed: boolean): void {
    const name = this.operations.has(operation) ? operation : "unknown";
    let figures = this.byOperation.get(name);
    if (figures === undefined) {
      figures = { requests: 0, errors: 0, latency: new Histogram() };
      this.byOperation.set(name, figures);
    }
    figures.requests++;
    if (failed) figures.errors++;
    if (seconds !== NOT_TIMED) figures.latency.observe(seconds);
  }
}

/** Bytes and messages in and out of one topic since the broker started. */
export interface TopicTraffic {
  bytesIn: number;
  messagesIn: number;
  /** Record bytes handed to fetches (sendfile or copy). */
  bytesOut: number;
  /**
   * Messages handed to fetches, estimated: the fetch path sends whole batches without reading
   * them, so each fetch adds its bytes times the topic's messages per byte (`messagesPerByte`).
   */
  messagesOut: number;
  /** Messages per record byte: from this run's produces, else from the log (set at scrape time). */
  messagesPerByte: number;
}

/** Per-topic traffic counters. */
export class TrafficCounters {
  readonly byTopic = new Map<string, TopicTraffic>();

  private of(topic: string): TopicTraffic {
    let traffic = this.byTopic.get(topic);
    if (traffic === undefined) {
      traffic = { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0, messagesPerByte: 0 };
      this.byTopic.set(topic, traffic);
    }
    return traffic;
  }

  /** An appended batch (never a duplicate). */
  recordIn(topic: string, bytes: number, messages: number): void {
    const traffic = this.of(topic);
    traffic.bytesIn += bytes;
    traffic.messagesIn += messages;
  }

  /** Record bytes a fetch answer carries for the topic. */
  recordOut(topic: string, bytes: number): void {
    const traffic = this.of(topic);
    traffic.bytesOut += bytes;
    const perByte = traffic.bytesIn > 0 ? traffic.messagesIn / traffic.bytesIn : traffic.messagesPerByte;
    traffic.messagesOut += bytes * perByte;
  }

  /** Drops the counters of topics that no longer exist (called at scrape time). */
  forgetMissing(exists: (topic: string) => boolean): void {
    for (const topic of this.byTopic.keys()) if (!exists(topic)) this.byTopic.delete(topic);
  }
}

/** Everything the data path feeds; `BrokerContext.metrics` is null when metrics are off. */
export interface BrokerMetrics {
  readonly native: ListenerRequests;
  /** Requests on the Kafka listener, per API (named as in its API_KEYS table). */
  readonly kafka: ListenerRequests;
  readonly traffic: TrafficCounters;
  /** fdatasync calls of the log and the offset store, synchronous and on worker threads. */
  readonly fdatasync: Histogram;
}

export function createBrokerMetrics(nativeOperations: Iterable<string>, kafkaOperations: Iterable<string> = []): BrokerMetrics {
  return {
    native: new ListenerRequests("native", new Set(nativeOperations)),
    kafka: new ListenerRequests("kafka", new Set(kafkaOperations)),
    traffic: new TrafficCounters(),
    fdatasync: new Histogram(),
  };
}
