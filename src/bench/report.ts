/**
 * @module bench/report
 * What `runnel bench` prints and writes: the result table (stdout), the JSON document
 * (--json FILE) and one self-contained HTML page (--html FILE: inline SVG charts of the latency
 * percentile curve and of throughput over time; no scripts, no external assets).
 *
 * The charts are laid out here, without a browser, so text widths are estimated: margins are
 * sized from the longest tick label at a conservative width per character, and
 * test/bench/report-layout.test.ts renders pages in headless Chromium to check that no text
 * overflows its box or overlaps other text and that every chart is there.
 */
import type { Ceiling } from "./ceiling.ts";
import type { ProcessUsage } from "./embedded-broker.ts";
import type { LatencyHistogram, Percentile } from "./histogram.ts";
import { formatSplit, type StageRow } from "./latency-split.ts";
import type { TimelinePoint, WorkloadResult } from "./workloads.ts";

export const PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  p99_9: number;
  p99_99: number;
  max: number;
  mean: number;
}

export interface ResultDocument {
  workload: string;
  parameters: Record<string, string | number | boolean | null>;
  messages: number;
  bytes: number;
  seconds: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  latencyMs: LatencySummary | null;
  latencyCurveMs: Array<{ percentile: number; valueMs: number }>;
  /** e2e: where the milliseconds went, per stage (bench/latency-split.ts); empty otherwise. */
  latencySplit: StageRow[];
  /**
   * e2e at a --rate, unless --no-ceiling: the same pace through a bare relay of three Bun
   * processes, in the same run (bench/latency-floor.ts); null otherwise.
   */
  latencyFloorMs?: LatencySummary | null;
  timeline: TimelinePoint[];
  ceiling: { name: string; megabytesPerSecond: number; ratio: number } | null;
  /** measuredCpuSeconds: broker CPU during the measured phase only (not start-up, not a consume's preload). */
  broker: (ProcessUsage & { address: string; measuredCpuSeconds?: number | null }) | null;
  failures: number;
  firstError: string | null;
  notes: string[];
}

const MB = 1_000_000;

/** The document with e2e's latency floor (ns histogram) added. */
export function withLatencyFloor(document: ResultDocument, floor: LatencyHistogram): ResultDocument {
  return { ...document, latencyFloorMs: summaryOf(floor) };
}

function summaryOf(latency: LatencyHistogram): LatencySummary | null {
  const ms = (ns: number) => ns / 1e6;
  if (latency.count === 0) return null;
  return { count: latency.count, p50: ms(latency.valueAt(50)), p90: ms(latency.valueAt(90)), p99: ms(latency.valueAt(99)), p99_9: ms(latency.valueAt(99.9)), p99_99: ms(latency.valueAt(99.99)), max: ms(latency.max), mean: ms(latency.mean) };
}

export function toDocument(result: WorkloadResult, parameters: ResultDocument["parameters"], ceiling: { name: string; bytesPerSecond: number } | null, broker: ResultDocument["broker"]): ResultDocument {
  const bytesPerSecond = result.seconds > 0 ? result.bytes / result.seconds : 0;
  const latency = result.latency;
  const ms = (ns: number) => ns / 1e6;
  return {
    workload: result.workload,
    parameters,
    messages: result.messages,
    bytes: result.bytes,
    seconds: result.seconds,
    messagesPerSecond: result.seconds > 0 ? result.messages / result.seconds : 0,
    megabytesPerSecond: bytesPerSecond / MB,
    latencyMs: summaryOf(latency),
    latencyCurveMs: latency.curve().map((point: Percentile) => ({ percentile: point.percentile, valueMs: ms(point.valueNs) })),
    latencySplit: result.split ?? [],
    timeline: result.timeline,
    ceiling: ceiling === null ? null : { name: ceiling.name, megabytesPerSecond: ceiling.bytesPerSecond / MB, ratio: ceiling.bytesPerSecond > 0 ? bytesPerSecond / ceiling.bytesPerSecond : 0 },
    broker,
    failures: result.failures,
    firstError: result.firstError,
    notes: result.notes,
  };
}

function fmt(value: number, digits = 0): string {
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtMs(value: number): string {
  return value >= 100 ? fmt(value, 0) : value >= 10 ? fmt(value, 1) : fmt(value, 3);
}

/** The plain-text table printed at the end of a run (the HTML page lists the notes apart). */
export function formatTable(document: ResultDocument, withNotes = true): string {
  const rows: Array<[string, string]> = [
    ["workload", document.workload],
    ["messages", fmt(document.messages)],
    ["seconds", fmt(document.seconds, 2)],
    ["msgs/s", fmt(document.messagesPerSecond)],
    ["MB/s", fmt(document.megabytesPerSecond, 1)],
  ];
  if (document.ceiling !== null) {
    rows.push([`ceiling (${document.ceiling.name})`, `${fmt(document.ceiling.megabytesPerSecond, 1)} MB/s`]);
    rows.push(["ratio to ceiling", `${fmt(document.ceiling.ratio * 100, 1)}%`]);
  }
  const latency = document.latencyMs;
  if (latency !== null) {
    rows.push(["latency p50 ms", fmtMs(latency.p50)], ["latency p90 ms", fmtMs(latency.p90)], ["latency p99 ms", fmtMs(latency.p99)]);
    rows.push(["latency p99.9 ms", fmtMs(latency.p99_9)], ["latency p99.99 ms", fmtMs(latency.p99_99)], ["latency max ms", fmtMs(latency.max)]);
  }
  const floor = document.latencyFloorMs ?? null;
  if (floor !== null) {
    // The machine's own floor at this pace, and how far above it the broker path is.
    const times = (value: number, base: number): string => (base > 0 ? `${fmt(value / base, 1)}x` : "-");
    rows.push(["floor p50 / p99 / p99.99 ms", `${fmtMs(floor.p50)} / ${fmtMs(floor.p99)} / ${fmtMs(floor.p99_99)}  (bare relay, same pace)`]);
    if (latency !== null) rows.push(["latency / floor", `p99 ${times(latency.p99, floor.p99)}, p99.99 ${times(latency.p99_99, floor.p99_99)}`]);
  }
  if (document.broker !== null) {
    rows.push(["broker CPU s", fmt(document.broker.cpuSeconds, 2)], ["broker peak RSS MB", fmt(document.broker.peakRssBytes / MB, 1)]);
    const measured = document.broker.measuredCpuSeconds;
    if (measured !== undefined && measured !== null && document.bytes > 0) {
      rows.push(["broker CPU s measured", fmt(measured, 2)], ["broker CPU s per GB", fmt(measured / (document.bytes / 1e9), 2)]);
    }
  }
  if (document.failures > 0) rows.push(["failures", `${fmt(document.failures)} (first: ${document.firstError ?? "?"})`]);
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`);
  const split = formatSplit(document.latencySplit ?? []);
  if (split !== "") lines.push(split.trimEnd());
  if (withNotes) for (const note of document.notes) lines.push(`  note: ${note}`);
  return `${lines.join("\n")}\n`;
}

export function formatCeiling(ceiling: Ceiling): string {
  const rows: Array<[string, number]> = [
    ["loopback TCP, sendfile (MB/s)", ceiling.tcpSendfileBytesPerSecond],
    ["loopback TCP, pread + write (MB/s)", ceiling.tcpCopyBytesPerSecond],
    [`pwrite ${ceiling.chunkBytes} B chunks (MB/s)`, ceiling.pwriteBytesPerSecond],
    ["pwrite + fdatasync per MiB (MB/s)", ceiling.pwriteSyncedBytesPerSecond],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, value]) => `  ${name.padEnd(width)}  ${fmt(value / MB, 1)}`);
  lines.push(`  ${"copy / sendfile ratio".padEnd(width)}  ${fmt((ceiling.tcpCopyBytesPerSecond / ceiling.tcpSendfileBytesPerSecond) * 100, 1)}%`);
  return `${lines.join("\n")}\n`;
}

// ------------------------------------------------------------ HTML

const CHART_WIDTH = 720;
const CHART_HEIGHT = 320;
const FONT_PX = 11;
/** Widest advance of a digit or letter at FONT_PX in common sans fonts (DejaVu: ~7.0 px), rounded up. */
const CHAR_WIDTH_PX = 7.5;
/** Room for the rotated y-axis title, left of the tick labels. */
const Y_TITLE_BAND_PX = 22;
const TICK_GAP_PX = 6;
const MARGIN_TOP_PX = 14;
const MARGIN_BOTTOM_PX = 50;
const Y_TICKS_MAX = 6;

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

type Tick = [value: number, label: string];

interface Series {
  /** `line` joins the points; `steps` draws each point as a flat step from the previous x (interval averages). */
  kind: "line" | "steps";
  points: Array<[number, number]>;
  xLabel: string;
  yLabel: string;
  xTicks: Tick[];
  /** y ticks in data units (log10 of the value when yLog); the first and last bound the axis. */
  yTicks: Tick[];
  yLog?: boolean;
}

function textWidthPx(text: string): number {
  return text.length * CHAR_WIDTH_PX;
}

/** 1, 2, 2.5 or 5 x 10^k: the smallest such step at least `rough`. */
function niceStep(rough: number): number {
  if (!(rough > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(rough));
  return ([1, 2, 2.5, 5, 10].find((factor) => factor * power >= rough * (1 - 1e-9)) ?? 10) * power;
}

/** Trims float noise: 2.5000000001 -> "2.5". */
function trimNumber(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/** 0 .. max in at most Y_TICKS_MAX nice steps, labelled compactly (250k, 1.5M). */
function linearTicks(max: number, label: (value: number) => string): Tick[] {
  const step = niceStep(Math.max(max, 1e-9) / (Y_TICKS_MAX - 2));
  const ticks: Tick[] = [];
  for (let index = 0; index * step < max * (1 + 1e-9) || ticks.length < 2; index++) ticks.push([index * step, label(index * step)]);
  if (ticks[ticks.length - 1]![0] < max) ticks.push([ticks.length * step, label(ticks.length * step)]);
  return ticks;
}

function compactCount(value: number): string {
  if (value >= 1e6) return `${trimNumber(value / 1e6)}M`;
  if (value >= 1e3) return `${trimNumber(value / 1e3)}k`;
  return trimNumber(value);
}

function seconds(value: number): string {
  return `${trimNumber(value)} s`;
}

/** Decades covering [min, max] ms (log10 units), with 2 and 5 in between when there are few. */
function logTicks(minMs: number, maxMs: number): Tick[] {
  const low = Math.floor(Math.log10(Math.max(minMs, 1e-3)));
  const high = Math.max(Math.ceil(Math.log10(Math.max(maxMs, 1e-3))), low + 1);
  const multiples = high - low <= 2 ? [1, 2, 5] : [1];
  const ticks: Tick[] = [];
  for (let decade = low; decade <= high; decade++) {
    for (const multiple of multiples) {
      const value = multiple * 10 ** decade;
      if (decade === high && multiple > 1) continue;
      ticks.push([Math.log10(value), value >= 1 ? fmt(value) : trimNumber(value)]);
    }
  }
  return ticks;
}

function svgChart(title: string, series: Series): string {
  const yLabelWidthPx = Math.max(...series.yTicks.map(([, label]) => textWidthPx(label)));
  const left = Y_TITLE_BAND_PX + yLabelWidthPx + TICK_GAP_PX;
  const lastXLabel = series.xTicks[series.xTicks.length - 1]?.[1] ?? "";
  const right = Math.max(12, textWidthPx(lastXLabel) / 2 + 4);
  const plotWidth = CHART_WIDTH - left - right;
  const plotHeight = CHART_HEIGHT - MARGIN_TOP_PX - MARGIN_BOTTOM_PX;
  const ys = series.points.map(([, y]) => (series.yLog ? Math.log10(Math.max(y, 1e-3)) : y));
  const xMin = Math.min(...series.xTicks.map(([x]) => x));
  const xMax = Math.max(...series.xTicks.map(([x]) => x), ...series.points.map(([x]) => x), xMin + 1e-9);
  const yMin = series.yTicks[0]![0];
  const yMax = Math.max(series.yTicks[series.yTicks.length - 1]![0], yMin + 1e-9);
  const sx = (x: number) => (left + ((x - xMin) / (xMax - xMin)) * plotWidth).toFixed(1);
  const sy = (y: number) => (MARGIN_TOP_PX + plotHeight - ((y - yMin) / (yMax - yMin)) * plotHeight).toFixed(1);
  const segments: string[] = [];
  series.points.forEach(([x], index) => {
    const y = sy(ys[index]!);
    if (series.kind === "steps") {
      const from = index === 0 ? xMin : series.points[index - 1]![0];
      segments.push(`${index === 0 ? "M" : "L"}${sx(from)},${y} L${sx(x)},${y}`);
    } else {
      segments.push(`${index === 0 ? "M" : "L"}${sx(x)},${y}`);
    }
  });
  const yTicks = series.yTicks.map(
    ([y, label]) => `<line x1="${left}" x2="${CHART_WIDTH - right}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/><text x="${left - TICK_GAP_PX}" y="${(Number(sy(y)) + 4).toFixed(1)}" text-anchor="end">${escapeHtml(label)}</text>`,
  );
  const xTicks = series.xTicks.map(([x, label]) => `<text x="${sx(x)}" y="${CHART_HEIGHT - MARGIN_BOTTOM_PX + 18}" text-anchor="middle">${escapeHtml(label)}</text>`);
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" font-family="sans-serif" font-size="${FONT_PX}">
${yTicks.join("\n")}
${xTicks.join("\n")}
<path class="series" d="${segments.join(" ")}" fill="none" stroke="#1f6feb" stroke-width="2"/>
<text x="${(left + plotWidth / 2).toFixed(1)}" y="${CHART_HEIGHT - 12}" text-anchor="middle">${escapeHtml(series.xLabel)}</text>
<text transform="translate(${Y_TITLE_BAND_PX / 2 + 3} ${MARGIN_TOP_PX + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(series.yLabel)}</text>
</svg></figure>`;
}

/** x = -log10(1 - p): 90% -> 1, 99% -> 2, ... (the HDR percentile axis). */
function percentileX(percentile: number, count: number): number {
  const tail = Math.max(1 - percentile / 100, 1 / Math.max(count, 1) / 10);
  return -Math.log10(tail);
}

/** The label of x = k on the percentile axis: 0%, 90%, 99%, 99.9%, ... */
function percentileLabel(k: number): string {
  if (k === 0) return "0%";
  if (k === 1) return "90%";
  return `99${k > 2 ? `.${"9".repeat(k - 2)}` : ""}%`;
}

function latencyChart(document: ResultDocument): string {
  const count = document.latencyMs?.count ?? 0;
  const curve = document.latencyCurveMs.map((point): [number, number] => [percentileX(point.percentile, count), point.valueMs]);
  if (curve.length === 0 || document.latencyMs === null) {
    const why = document.workload === "consume" ? "consume measures throughput only; produce and e2e measure latency" : "no message completed";
    return `<p class="no-chart">No latency chart: ${escapeHtml(why)}.</p>`;
  }
  const maxX = Math.max(1, Math.ceil(Math.max(...curve.map(([x]) => x))));
  const xTicks = Array.from({ length: maxX + 1 }, (_, k): Tick => [k, percentileLabel(k)]);
  const values = curve.map(([, ms]) => ms);
  return svgChart(`${document.workload}: latency by percentile (ms, log scale)`, { kind: "line", points: curve, xLabel: "percentile", yLabel: "latency ms", xTicks, yTicks: logTicks(Math.min(...values), Math.max(...values)), yLog: true });
}

/**
 * Messages/s per sampling interval, drawn as steps (each value is that interval's average). A run
 * shorter than one interval (a 1M-message consume can take 0.2 s) still gets its one step.
 */
function throughputChart(document: ResultDocument): string {
  let timeline = document.timeline.map((point): [number, number] => [point.seconds, point.messagesPerSecond]);
  if (timeline.length === 0 && document.seconds > 0) timeline = [[document.seconds, document.messagesPerSecond]];
  if (timeline.length === 0) return `<p class="no-chart">No throughput chart: the run took no measurable time.</p>`;
  const end = timeline[timeline.length - 1]![0];
  const xTicks = linearTicks(end, seconds);
  const yTicks = linearTicks(Math.max(...timeline.map(([, rate]) => rate)), compactCount);
  return svgChart(`${document.workload}: messages/s over time`, { kind: "steps", points: timeline, xLabel: "time", yLabel: "messages/s", xTicks, yTicks });
}

function renderSection(document: ResultDocument): string {
  const notes = document.notes.length === 0 ? "" : `<ul class="notes">${document.notes.map((note) => `<li>${escapeHtml(note)}</li>`).join("")}</ul>`;
  return `<section><h2>${escapeHtml(document.workload)}</h2><pre class="table">${escapeHtml(formatTable(document, false))}</pre>${notes}${latencyChart(document)}${throughputChart(document)}
<details><summary>parameters</summary><pre>${escapeHtml(JSON.stringify(document.parameters, null, 2))}</pre></details></section>`;
}

export function renderHtml(documents: ResultDocument[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>runnel bench</title>
<style>body{font-family:sans-serif;max-width:780px;margin:2em auto;padding:0 1em;color:#222}figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:.3em}pre{background:#f6f8fa;padding:.6em;white-space:pre-wrap;overflow-wrap:anywhere}.notes{padding-left:1.2em;overflow-wrap:anywhere}.notes li{margin:.2em 0}svg{display:block;max-width:100%;height:auto}</style>
</head><body><h1>runnel bench</h1>
${documents.map(renderSection).join("\n")}
</body></html>
`;
}
