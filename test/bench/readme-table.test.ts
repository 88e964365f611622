/**
 * The README table script (bench/readme-table.ts): its summaries and scaling, without running
 * the benchmarks themselves (a smoke run of every row takes minutes; see the script's header).
 */
import { expect, test } from "bun:test";
import { ROWS, scaledArgs, summarize } from "../../bench/readme-table.ts";

test("a figure reads as its median with the min–max spread, and failed runs are counted, not hidden", () => {
  const format = (value: number): string => value.toFixed(1);
  expect(summarize([3, 1, 2], format)).toBe("2.0 (1.0–3.0)");
  expect(summarize([5], format)).toBe("5.0");
  expect(summarize([4, Number.NaN, 2], format)).toBe("2.0 (2.0–4.0), 1 of 3 runs failed");
  expect(summarize([Number.NaN], format)).toBe("no result");
});

test("scaling shrinks messages and duration only, never below a run that still measures something", () => {
  expect(scaledArgs(["produce", "--messages", "5000000", "--size", "100"], 0.01)).toEqual(["produce", "--messages", "50000", "--size", "100"]);
  expect(scaledArgs(["e2e", "--rate", "100000", "--duration", "10"], 0.01)).toEqual(["e2e", "--rate", "100000", "--duration", "1"]);
  expect(scaledArgs(["consume", "--messages", "5000"], 0.001)).toEqual(["consume", "--messages", "1000"]);
});

test("every row names a workload of runnel bench and at least one figure", () => {
  for (const row of ROWS) {
    expect(["produce", "consume", "e2e"]).toContain(row.args[0]!);
    expect(row.figures.length).toBeGreaterThan(0);
  }
});
