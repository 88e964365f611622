/**
 * The Prometheus text writer: label values escaped as the format requires, histogram buckets
 * cumulative with a closing +Inf equal to the count, a family never written twice; and the
 * fixed-bucket histogram itself against a plain count of the same values.
 */
import { describe, expect, test } from "bun:test";
import { Histogram, ListenerRequests, NOT_TIMED, TrafficCounters } from "../../../src/broker/metrics.ts";
import { Exposition } from "../../../src/listeners/http/prometheus.ts";
import { prng } from "../../support/prng.ts";

describe("Exposition", () => {
  test("escapes backslashes, quotes and newlines in label values", () => {
    const text = new Exposition().family("x_total", "counter", "A help\nline.").sample("x_total", { topic: 'a"b\\c\nd' }, 3).text();
    expect(text).toBe('# HELP x_total A help\\nline.\n# TYPE x_total counter\nx_total{topic="a\\"b\\\\c\\nd"} 3\n');
  });

  test("writes cumulative buckets ending in +Inf, then sum and count", () => {
    const histogram = new Histogram([0.1, 1]);
    for (const value of [0.05, 0.1, 0.5, 2, 3]) histogram.observe(value);
    const text = new Exposition().family("d_seconds", "histogram", "D.").histogram("d_seconds", { op: "x" }, histogram).text();
    expect(text.split("\n").slice(2, -1)).toEqual([
      'd_seconds_bucket{op="x",le="0.1"} 2',
      'd_seconds_bucket{op="x",le="1"} 3',
      'd_seconds_bucket{op="x",le="+Inf"} 5',
      'd_seconds_sum{op="x"} 5.65',
      'd_seconds_count{op="x"} 5',
    ]);
  });

  test("refuses a family written twice", () => {
    const out = new Exposition().family("y", "gauge", "Y.");
    expect(() => out.family("y", "gauge", "Y.")).toThrow("written twice");
  });
});

describe("metrics registry", () => {
  test("a histogram's buckets match a plain count of the same random values", () => {
    const random = prng(13);
    const histogram = new Histogram();
    const values = Array.from({ length: 2_000 }, () => random() ** 4 * 20);
    for (const value of values) histogram.observe(value);
    histogram.bounds.forEach((bound, index) => {
      const below = index === 0 ? Number.NEGATIVE_INFINITY : (histogram.bounds[index - 1] as number);
      expect(histogram.counts[index]).toBe(values.filter((value) => value > below && value <= bound).length);
    });
    expect(histogram.counts[histogram.bounds.length]).toBe(values.filter((value) => value > (histogram.bounds.at(-1) as number)).length);
    expect(histogram.count).toBe(values.length);
  });

  test("requests count every call, time only the timed ones, and fold unknown ops together", () => {
    const requests = new ListenerRequests("native", new Set(["produce"]));
    requests.observe("produce", 0.001, false);
    requests.observe("produce", NOT_TIMED, true);
    requests.observe("made-up", NOT_TIMED, true);
    expect([...requests.byOperation.keys()]).toEqual(["produce", "unknown"]);
    const produce = requests.byOperation.get("produce")!;
    expect([produce.requests, produce.errors, produce.latency.count]).toEqual([2, 1, 1]);
    const timed = Array.from({ length: 16_000 }, () => requests.startTimer()).filter((started) => started !== NOT_TIMED);
    // 1 in 16 on average (a pseudo-random draw from a fixed seed, so the count is the same every run).
    expect(timed.length).toBeGreaterThan(800);
    expect(timed.length).toBeLessThan(1200);
  });

  test("requests arriving in a regular pattern of ops are all timed now and then (no aliasing)", () => {
    const requests = new ListenerRequests("native", new Set(["produce", "fetch"]));
    // An end-to-end run alternates produce and fetch; a counter timed every 16th request, always a fetch.
    const timedByPosition = [0, 0];
    for (let index = 0; index < 4_000; index++) if (requests.startTimer() !== NOT_TIMED) timedByPosition[index % 2]! += 1;
    expect(timedByPosition[0]).toBeGreaterThan(50);
    expect(timedByPosition[1]).toBeGreaterThan(50);
  });

  test("traffic counters estimate messages out from the topic's bytes per message, and forget deleted topics", () => {
    const traffic = new TrafficCounters();
    traffic.recordIn("t", 1_000, 10);
    traffic.recordOut("t", 500);
    expect(traffic.byTopic.get("t")).toMatchObject({ bytesIn: 1_000, messagesIn: 10, bytesOut: 500, messagesOut: 5 });
    traffic.recordOut("old", 300); // no produce since start, no scrape yet: no ratio known
    traffic.byTopic.get("old")!.messagesPerByte = 0.01; // what a scrape sets from the log
    traffic.recordOut("old", 300);
    expect(traffic.byTopic.get("old")!.messagesOut).toBe(3);
    traffic.forgetMissing((topic) => topic === "t");
    expect([...traffic.byTopic.keys()]).toEqual(["t"]);
  });
});
