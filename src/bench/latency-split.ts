/**
 * @module bench/latency-split
 * Where each millisecond of an e2e message goes: `runnel bench e2e` prints, beside the total
 * (due send time -> the consumer sees it), one row per stage, each measured where one clock
 * serves both ends of it:
 *
 *   client queue     due send time -> its produce request handed to the connection (producer
 *                    process, Bun.nanoseconds; ProducerBatch.writtenNs via Producer.settling;
 *                    this row and the next sample 1 message in 16)
 *   produce ack      request handed to the connection -> acknowledgement settled (producer
 *                    process): wire both ways + broker + fsync when durability asks
 *   broker produce   request decoded -> answer ready, in the broker (its metrics registry, 1 in
 *                    16 requests, per request; fixed buckets, so reported as "<= bucket bound")
 *   fdatasync        the broker's fdatasync calls (same registry; only when durability or a
 *                    flush policy makes the broker sync)
 *   to fetch answer  due send time -> the fetch answer carrying it arrived at the consumer
 *                    (epoch clock shared by the two processes, like the total)
 *   consumer         fetch answer arrived -> handed to the application by nextBatch()
 *                    (consumer process, Bun.nanoseconds)
 *
 * Percentiles do not add up: each row is its own distribution. The broker's part of the fetch
 * leg is "to fetch answer" minus the client queue and the produce leg; with a long poll parked
 * for data, a fetch's own duration would be mostly waiting, so it is not shown.
 */
import type { LatencyHistogram, HistogramSnapshot } from "./histogram.ts";

/** One stage's distribution, in ms (percentiles as in the main table). */
export interface StageRow {
  name: string;
  /** Where it was measured, in a few words. */
  source: string;
  count: number;
  /** p50, p90, p99, p99.9, p99.99, max (ms). */
  percentilesMs: number[];
  /** True when values are bucket upper bounds (the broker's fixed-bucket histograms). */
  upperBounds: boolean;
}

export const SPLIT_PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;

export function rowOfHistogram(name: string, source: string, histogram: LatencyHistogram): StageRow {
  const percentilesMs = SPLIT_PERCENTILES.map((percentile) => histogram.valueAt(percentile) / 1e6);
  percentilesMs.push(histogram.max / 1e6);
  return { name, source, count: histogram.count, percentilesMs, upperBounds: false };
}

/** The stage histograms the consumer process sends back (snapshots, keyed by stage). */
export type StageSnapshots = Record<string, HistogramSnapshot>;

/** Cumulative bucket counts of one Prometheus histogram: [upper bound in s, count]. */
export type PromBuckets = Array<[number, number]>;

/**
 * The `_bucket` lines of one histogram family with the given label text inside its braces
 * (e.g. `listener="native",op="produce"`), from a /metrics page. Empty when absent.
 */
export function readPromBuckets(page: string, family: string, labels: string): PromBuckets {
  const buckets: PromBuckets = [];
  const prefix = labels === "" ? `${family}_bucket{le="` : `${family}_bucket{${labels},le="`;
  for (const line of page.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const close = line.indexOf('"}', prefix.length);
    if (close < 0) continue;
    const bound = line.slice(prefix.length, close);
    const count = Number(line.slice(close + 2).trim());
    buckets.push([bound === "+Inf" ? Number.POSITIVE_INFINITY : Number(bound), count]);
  }
  return buckets;
}

/** after - before, bucket by bucket (cumulative counts; the registry only grows). */
export function subtractBuckets(after: PromBuckets, before: PromBuckets): PromBuckets {
  return after.map(([bound, count], index) => [bound, count - (before[index]?.[1] ?? 0)]);
}

/** A row from cumulative buckets: each percentile as the upper bound of the bucket it falls in. */
export function rowOfBuckets(name: string, source: string, buckets: PromBuckets): StageRow | null {
  const total = buckets.length === 0 ? 0 : buckets[buckets.length - 1]![1];
  if (total <= 0) return null;
  const boundAt = (percentile: number): number => {
    const rank = Math.max(1, Math.ceil((percentile * total) / 100 - 1e-9));
    for (const [bound, count] of buckets) if (count >= rank) return bound * 1000;
    return Number.POSITIVE_INFINITY;
  };
  const percentilesMs = SPLIT_PERCENTILES.map(boundAt);
  percentilesMs.push(boundAt(100));
  return { name, source, count: total, percentilesMs, upperBounds: true };
}

/** Reads the broker's /metrics page (the embedded broker's HTTP listener); null when unreachable. */
export async function scrapeMetrics(httpAddress: string | null): Promise<string | null> {
  if (httpAddress === null) return null;
  try {
    const response = await fetch(`http://${httpAddress}/metrics`);
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}

/** The broker-side rows: produce requests and fdatasync calls during the run (before/after pages). */
export function brokerRows(before: string | null, after: string | null): StageRow[] {
  if (before === null || after === null) return [];
  const rows: StageRow[] = [];
  const produceFamily = "runnel_request_duration_seconds";
  const produceLabels = 'listener="native",op="produce"';
  const produce = subtractBuckets(readPromBuckets(after, produceFamily, produceLabels), readPromBuckets(before, produceFamily, produceLabels));
  const produceRow = rowOfBuckets("broker produce", "broker metrics: decoded -> answer ready, 1 in 16 requests", produce);
  if (produceRow !== null) rows.push(produceRow);
  const sync = subtractBuckets(readPromBuckets(after, "runnel_fdatasync_duration_seconds", ""), readPromBuckets(before, "runnel_fdatasync_duration_seconds", ""));
  const syncRow = rowOfBuckets("fdatasync", "broker metrics: each fdatasync call", sync);
  if (syncRow !== null) rows.push(syncRow);
  return rows;
}

function fmtMs(value: number, upperBound: boolean): string {
  if (!Number.isFinite(value)) return ">10 s";
  const text = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(3);
  return upperBound ? `<=${text}` : text;
}

/** The split as a text table (ms), printed under the main table. */
export function formatSplit(rows: readonly StageRow[]): string {
  if (rows.length === 0) return "";
  const header = ["stage (ms)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "count", "measured"];
  const cells = rows.map((row) => [row.name, ...row.percentilesMs.map((value) => fmtMs(value, row.upperBounds)), row.count.toLocaleString("en-US"), row.source]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column]!.length)));
  const render = (line: string[]): string => `  ${line.map((cell, column) => (column === 0 || column === line.length - 1 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ").trimEnd()}`;
  return `${[render(header), ...cells.map(render)].join("\n")}\n  note: each row is its own distribution (percentiles do not add up); see bench/latency-split.ts\n`;
}
