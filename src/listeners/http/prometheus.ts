/**
 * @module listeners/http/prometheus
 * A writer of the Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`, then
 * samples, each family written once with all its samples together. Label values are escaped
 * (backslash, quote, newline) as the format requires; numbers are written as Go's strconv does
 * for what Prometheus accepts (`+Inf`, `NaN`).
 */
import type { Histogram } from "../../broker/metrics.ts";

export type Labels = Readonly<Record<string, string | number>>;

type FamilyType = "counter" | "gauge" | "histogram";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(String(value))}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

export class Exposition {
  private readonly lines: string[] = [];
  private readonly written = new Set<string>();

  /** Starts a family; every sample of it must follow before the next family starts. */
  family(name: string, type: FamilyType, help: string): this {
    if (this.written.has(name)) throw new Error(`metric family ${name} written twice`);
    this.written.add(name);
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels, value: number): this {
    this.lines.push(`${name}${formatLabels(labels)} ${formatNumber(value)}`);
    return this;
  }

  /** A histogram's `_bucket` (cumulative, with `le`), `_sum` and `_count` samples. */
  histogram(name: string, labels: Labels, histogram: Histogram): this {
    let cumulative = 0;
    for (let index = 0; index <= histogram.bounds.length; index++) {
      cumulative += histogram.counts[index] ?? 0;
      const bound = histogram.bounds[index];
      this.sample(`${name}_bucket`, { ...labels, le: bound === undefined ? "+Inf" : formatNumber(bound) }, cumulative);
    }
    this.sample(`${name}_sum`, labels, histogram.sum);
    this.sample(`${name}_count`, labels, histogram.count);
    return this;
  }

  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}
