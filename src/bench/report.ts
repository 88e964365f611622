/**
 * @module bench/report
 * What `runnel bench` prints and writes: the result table (stdout), the JSON document
 * (--json FILE) and one self-contained HTML page (--html FILE: inline SVG charts of the latency
 * percentile curve and of throughput over time; no scripts, no external assets).
 */
import type { Ceiling } from "./ceiling.ts";
import type { ProcessUsage } from "./embedded-broker.ts";
import type { Percentile } from "./histogram.ts";
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
  timeline: TimelinePoint[];
  ceiling: { name: string; megabytesPerSecond: number; ratio: number } | null;
  broker: (ProcessUsage & { address: string }) | null;
  failures: number;
  firstError: string | null;
  notes: string[];
}

const MB = 1_000_000;

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
    latencyMs:
      latency.count === 0
        ? null
        : { count: latency.count, p50: ms(latency.valueAt(50)), p90: ms(latency.valueAt(90)), p99: ms(latency.valueAt(99)), p99_9: ms(latency.valueAt(99.9)), p99_99: ms(latency.valueAt(99.99)), max: ms(latency.max), mean: ms(latency.mean) },
    latencyCurveMs: latency.curve().map((point: Percentile) => ({ percentile: point.percentile, valueMs: ms(point.valueNs) })),
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

/** The plain-text table printed at the end of a run. */
export function formatTable(document: ResultDocument): string {
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
  if (document.broker !== null) {
    rows.push(["broker CPU s", fmt(document.broker.cpuSeconds, 2)], ["broker peak RSS MB", fmt(document.broker.peakRssBytes / MB, 1)]);
  }
  if (document.failures > 0) rows.push(["failures", `${fmt(document.failures)} (first: ${document.firstError ?? "?"})`]);
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`);
  for (const note of document.notes) lines.push(`  note: ${note}`);
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
const MARGIN = { left: 70, right: 20, top: 20, bottom: 50 };

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

interface Series {
  points: Array<[number, number]>;
  xLabel: string;
  yLabel: string;
  xTicks: Array<[number, string]>;
  yLog?: boolean;
}

function svgChart(title: string, series: Series): string {
  const plotWidth = CHART_WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
  const xs = series.points.map(([x]) => x);
  const ys = series.points.map(([, y]) => (series.yLog ? Math.log10(Math.max(y, 1e-3)) : y));
  const xMin = Math.min(...xs, ...series.xTicks.map(([x]) => x));
  const xMax = Math.max(...xs, ...series.xTicks.map(([x]) => x), xMin + 1e-9);
  const yMin = series.yLog ? Math.floor(Math.min(...ys)) : 0;
  const yMax = Math.max(series.yLog ? Math.ceil(Math.max(...ys)) : Math.max(...ys) * 1.1, yMin + 1e-9);
  const sx = (x: number) => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotWidth;
  const sy = (y: number) => MARGIN.top + plotHeight - ((y - yMin) / (yMax - yMin)) * plotHeight;
  const path = series.points.map(([x], index) => `${index === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(ys[index]!).toFixed(1)}`).join(" ");
  const yTicks: string[] = [];
  for (let step = 0; step <= 4; step++) {
    const y = yMin + ((yMax - yMin) * step) / 4;
    const label = series.yLog ? fmtMs(10 ** y) : fmt(y, y < 10 ? 2 : 0);
    yTicks.push(`<line x1="${MARGIN.left}" x2="${CHART_WIDTH - MARGIN.right}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/><text x="${MARGIN.left - 6}" y="${sy(y) + 4}" text-anchor="end">${label}</text>`);
  }
  const xTicks = series.xTicks.map(([x, label]) => `<text x="${sx(x)}" y="${CHART_HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${escapeHtml(label)}</text>`);
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" font-family="sans-serif" font-size="11">
${yTicks.join("\n")}
${xTicks.join("\n")}
<path d="${path}" fill="none" stroke="#1f6feb" stroke-width="2"/>
<text x="${MARGIN.left + plotWidth / 2}" y="${CHART_HEIGHT - 10}" text-anchor="middle">${escapeHtml(series.xLabel)}</text>
<text transform="translate(14 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(series.yLabel)}</text>
</svg></figure>`;
}

/** x = -log10(1 - p): 90% -> 1, 99% -> 2, ... (the HDR percentile axis). */
function percentileX(percentile: number, count: number): number {
  const tail = Math.max(1 - percentile / 100, 1 / Math.max(count, 1) / 10);
  return -Math.log10(tail);
}

export function renderHtml(documents: ResultDocument[]): string {
  const sections = documents.map((document) => {
    const count = document.latencyMs?.count ?? 0;
    const curve = document.latencyCurveMs.map((point): [number, number] => [percentileX(point.percentile, count), point.valueMs]);
    const maxX = curve.length === 0 ? 5 : Math.max(...curve.map(([x]) => x));
    const percentileTicks: Array<[number, string]> = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"].slice(0, Math.max(2, Math.ceil(maxX) + 1)).map((label, index) => [index, label]);
    const latencyChart = curve.length > 0 ? svgChart(`${document.workload}: latency by percentile (ms, log scale)`, { points: curve, xLabel: "percentile", yLabel: "latency ms", xTicks: percentileTicks, yLog: true }) : "<p>No latency recorded.</p>";
    const timeline = document.timeline.map((point): [number, number] => [point.seconds, point.messagesPerSecond]);
    const end = timeline.length === 0 ? 1 : timeline[timeline.length - 1]![0];
    const timeTicks: Array<[number, string]> = [0, 0.25, 0.5, 0.75, 1].map((fraction) => [end * fraction, `${fmt(end * fraction, 1)} s`]);
    const throughputChart = timeline.length > 1 ? svgChart(`${document.workload}: messages/s over time`, { points: timeline, xLabel: "time", yLabel: "messages/s", xTicks: timeTicks }) : "<p>Too short for a throughput chart.</p>";
    return `<section><h2>${escapeHtml(document.workload)}</h2><pre>${escapeHtml(formatTable(document))}</pre>${latencyChart}${throughputChart}
<details><summary>parameters</summary><pre>${escapeHtml(JSON.stringify(document.parameters, null, 2))}</pre></details></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runnel bench</title>
<style>body{font-family:sans-serif;max-width:780px;margin:2em auto;color:#222}figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:.3em}pre{background:#f6f8fa;padding:.6em}</style>
</head><body><h1>runnel bench</h1>
${sections.join("\n")}
</body></html>
`;
}
