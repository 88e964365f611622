import { expect, test } from "bun:test";
import { LatencyHistogram } from "../../src/bench/histogram.ts";

/** Seeded xorshift so the test is the same every run. */
function randomValues(count: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) / 2 ** 32) ** 3 * 5e9; // skewed: many small, a long tail, up to 5 s in ns
  });
}

test("LatencyHistogram: every percentile is within 0.1% above the exact value and never below it", () => {
  const values = randomValues(50_000, 12345);
  const histogram = new LatencyHistogram();
  for (const value of values) histogram.record(value);
  const sorted = values.map((value) => Math.round(value)).sort((a, b) => a - b);
  for (const percentile of [1, 50, 90, 99, 99.9, 99.99, 100]) {
    const exact = sorted[Math.max(0, Math.ceil((percentile / 100) * sorted.length) - 1)]!;
    const reported = histogram.valueAt(percentile);
    expect(reported).toBeGreaterThanOrEqual(exact);
    expect(reported).toBeLessThanOrEqual(exact * 1.001 + 1);
  }
  expect(histogram.count).toBe(50_000);
  expect(histogram.max).toBe(sorted[sorted.length - 1]!);
});

test("LatencyHistogram: small values are exact, add() merges, an empty histogram reports zeros", () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  expect(a.valueAt(99)).toBe(0);
  expect(a.curve()).toEqual([]);
  for (let value = 1; value <= 1000; value++) (value % 2 === 0 ? a : b).record(value);
  a.add(b);
  expect(a.count).toBe(1000);
  expect(a.valueAt(50)).toBe(500);
  expect(a.valueAt(99.9)).toBe(999);
  expect(a.min).toBe(1);
  expect(a.mean).toBe(500.5);
  const curve = a.curve();
  expect(curve[0]).toEqual({ percentile: 50, valueNs: 500 });
  expect(curve[curve.length - 1]).toEqual({ percentile: 100, valueNs: 1000 });
  for (let index = 1; index < curve.length; index++) expect(curve[index]!.valueNs).toBeGreaterThanOrEqual(curve[index - 1]!.valueNs);
});

test("LatencyHistogram: negative and huge values are clamped, not thrown", () => {
  const histogram = new LatencyHistogram();
  histogram.record(-5);
  histogram.record(2 ** 60);
  expect(histogram.count).toBe(2);
  expect(histogram.valueAt(50)).toBe(0);
  expect(histogram.valueAt(100)).toBe(2 ** 60);
});

test("LatencyHistogram: a snapshot carries every value across JSON, and a bad bucket is refused", () => {
  const source = new LatencyHistogram();
  for (const value of [0, 5, 1_234, 987_654, 12_345_678, 3e9]) source.record(value);
  const copy = new LatencyHistogram();
  copy.record(42);
  copy.addSnapshot(JSON.parse(JSON.stringify(source.toSnapshot())));
  expect(copy.count).toBe(7);
  expect(copy.max).toBe(source.max);
  expect(copy.min).toBe(0);
  for (const percentile of [10, 50, 90, 99, 100]) {
    const both = new LatencyHistogram();
    both.add(source);
    both.record(42);
    expect(copy.valueAt(percentile)).toBe(both.valueAt(percentile));
  }
  expect(() => copy.addSnapshot({ buckets: [[1e9, 1]], total: 1, sumNs: 1, maxNs: 1, minNs: 1 })).toThrow(RangeError);
});
