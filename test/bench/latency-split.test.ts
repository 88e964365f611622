/**
 * @module test/bench/latency-split
 * The e2e split's broker rows come from /metrics pages: buckets are read per label set,
 * subtracted (during the run = after - before), and percentiles reported as bucket bounds.
 */
import { expect, test } from "bun:test";
import { brokerRows, formatSplit, readPromBuckets, rowOfBuckets, subtractBuckets } from "../../src/bench/latency-split.ts";

function page(produceCounts: number[], syncCounts: number[]): string {
  const bounds = ["0.001", "0.01", "+Inf"];
  const lines = ['runnel_request_duration_seconds_bucket{listener="native",op="fetch",le="0.001"} 999'];
  bounds.forEach((bound, index) => lines.push(`runnel_request_duration_seconds_bucket{listener="native",op="produce",le="${bound}"} ${produceCounts[index]}`));
  bounds.forEach((bound, index) => lines.push(`runnel_fdatasync_duration_seconds_bucket{le="${bound}"} ${syncCounts[index]}`));
  return `${lines.join("\n")}\n`;
}

test("readPromBuckets reads only the histogram with the labels asked for", () => {
  const buckets = readPromBuckets(page([1, 2, 3], [0, 0, 0]), "runnel_request_duration_seconds", 'listener="native",op="produce"');
  expect(buckets).toEqual([[0.001, 1], [0.01, 2], [Number.POSITIVE_INFINITY, 3]]);
});

test("a stage row reports each percentile as the upper bound of its bucket, counting only the run", () => {
  const during = subtractBuckets([[0.001, 110], [0.01, 199], [Number.POSITIVE_INFINITY, 200]], [[0.001, 10], [0.01, 10], [Number.POSITIVE_INFINITY, 10]]);
  const row = rowOfBuckets("broker produce", "test", during)!;
  expect(row.count).toBe(190);
  expect(row.percentilesMs[0]).toBe(1); // p50: 100 of 190 fall in the first bucket
  expect(row.percentilesMs[2]).toBe(10); // p99
  expect(row.percentilesMs[5]).toBe(Number.POSITIVE_INFINITY); // the max lies past the last bound
  expect(row.upperBounds).toBe(true);
});

test("brokerRows leaves out a stage with nothing observed and formatSplit marks bounds with <=", () => {
  const rows = brokerRows(page([0, 0, 0], [0, 0, 0]), page([4, 4, 4], [0, 0, 0]));
  expect(rows.map((row) => row.name)).toEqual(["broker produce"]);
  expect(formatSplit(rows)).toContain("<=1.000");
  expect(brokerRows(null, page([1, 1, 1], [1, 1, 1]))).toEqual([]);
});
