/**
 * The multi-core benchmark (bench/cores.ts) at a smoke size, so it never rots: a broker child
 * with one network thread and one with two network workers, each driven by a producer and a
 * consumer process for a second, both move bytes both ways and report the broker's CPU.
 * No figure is compared: on a shared machine a one-second run measures the neighbours.
 */
import { expect, test } from "bun:test";
import { runCoresBench } from "../../bench/cores.ts";

test("the cores benchmark drives a broker with one thread and with two network workers", async () => {
  const runs = await runCoresBench(1, 1, [
    { name: "w1", workers: 1, pinned: false, producers: 1, consumers: 1 },
    { name: "w2", workers: 2, pinned: false, producers: 1, consumers: 1 },
  ]);
  expect(runs.map((run) => run.name)).toEqual(["w1", "w2"]);
  for (const run of runs) {
    expect(run.producedBytes).toBeGreaterThan(0);
    expect(run.consumedBytes).toBeGreaterThan(0);
    expect(run.brokerCpuSeconds).toBeGreaterThan(0);
  }
  // With two network workers the broker runs threads named Worker beside its main thread.
  expect(Object.keys(runs[1]?.threads ?? {})).toContain("Worker");
}, 60_000);
