/**
 * The metrics-overhead benchmark (bench/metrics-overhead.bench.ts) at a smoke size, so it never
 * rots: it runs, and its two sides really differ only in metrics — the "on" side's registry
 * counts every produce it dispatched, the "off" side adds nothing to it. Timings are reported by
 * the full-size run, never asserted here.
 */
import { expect, test } from "bun:test";
import { measureMetricsOverhead } from "../../bench/metrics-overhead.bench.ts";

test("the metrics-overhead bench runs, and only its metrics-on side is counted", async () => {
  const requests = 200;
  const rounds = 3;
  const figures = await measureMetricsOverhead({ requests, rounds, recordCounts: [1, 40] });
  expect(figures.map((figure) => figure.records)).toEqual([1, 40]);
  // warm-up round + measured rounds, for each record count so far (the registry is cumulative)
  expect(figures.map((figure) => figure.countedRequests)).toEqual([requests * (1 + rounds), 2 * requests * (1 + rounds)]);
  for (const figure of figures) expect(figure.onNsPerRequest > 0 && figure.offNsPerRequest > 0 && Number.isFinite(figure.ratio)).toBe(true);
});
