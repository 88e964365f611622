import { describe, expect, test } from "bun:test";
import { CoalescingJob } from "../../src/log/coalescing-job.ts";

/** A run that waits until released, so a test controls when each run ends. */
function gatedRuns(result = true) {
  const gates: Array<() => void> = [];
  let runs = 0;
  const job = new CoalescingJob(async () => {
    runs++;
    await new Promise<void>((resolve) => gates.push(resolve));
    return result;
  });
  const releaseNext = async () => {
    while (gates.length === 0) await Promise.resolve();
    gates.shift()!();
  };
  return { job, releaseNext, runs: () => runs };
}

describe("CoalescingJob", () => {
  test("requests while a run is under way coalesce into exactly one more run", async () => {
    const { job, releaseNext, runs } = gatedRuns();
    job.request();
    job.request();
    job.request();
    expect(runs()).toBe(1);
    await releaseNext();
    await releaseNext();
    await job.settled();
    expect(runs()).toBe(2);
    expect(job.isRunning).toBe(false);
  });

  test("a run that returns false is not repeated even when asked again", async () => {
    const { job, releaseNext, runs } = gatedRuns(false);
    job.request();
    job.request();
    await releaseNext();
    await job.settled();
    expect(runs()).toBe(1);
    job.request();
    await releaseNext();
    await job.settled();
    expect(runs()).toBe(2);
  });

  test("settled() resolves at once when idle and swallows a run's failure", async () => {
    await new CoalescingJob(async () => true).settled();
    const failing = new CoalescingJob(async () => {
      throw new Error("disk on fire");
    });
    failing.request();
    await failing.settled();
    expect(failing.isRunning).toBe(false);
  });
});
