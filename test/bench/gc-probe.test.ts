/**
 * The e2e bench's collection probe (src/bench/gc-probe.ts): it sees a collection happen, and its
 * report counts which slow messages' windows held one, against what chance would give.
 */
import { expect, test } from "bun:test";
import { GcProbe, gcCoincidence, WindowRecorder } from "../../src/bench/gc-probe.ts";

test("the probe stamps a collection once the engine has run one", async () => {
  const probe = new GcProbe().start();
  for (let attempt = 0; attempt < 200 && probe.stampsNs.length === 0; attempt++) {
    Bun.gc(true);
    await Bun.sleep(5);
  }
  probe.stop();
  expect(probe.stampsNs.length).toBeGreaterThan(0);
});

test("a slow message's window holds a collection when one was stamped between its due time and its arrival", () => {
  const ms = 1_000_000;
  const windows = new WindowRecorder();
  windows.record(0, 5 * ms); // slow, holds the stamp at 3 ms
  windows.record(10 * ms, 15 * ms); // slow, holds nothing
  // Fast messages (not in the tail) until 40 ms: the run spans ~40 ms.
  for (let index = 0; index < 128; index++) windows.record(20 * ms + index * 0.16 * ms, 20.1 * ms + index * 0.16 * ms);
  const report = gcCoincidence({ broker: [3 * ms], consumer: [] }, windows.toJSON(), 2 * ms);
  expect(report.collections).toEqual({ broker: 1, consumer: 0 });
  expect(report.slowMessages).toBe(2);
  const byProcess = new Map(report.rows.map((row) => [row.process, row]));
  expect(byProcess.get("broker")?.slowShare).toBe(0.5);
  expect(byProcess.get("consumer")?.slowShare).toBe(0);
  expect(byProcess.get("any")?.slowShare).toBe(0.5);
  // One collection in ~40 ms of run makes a 5 ms window hold one by chance about 12% of the time.
  expect(byProcess.get("broker")?.slowChance).toBeGreaterThan(0.05);
  expect(byProcess.get("broker")?.slowChance).toBeLessThan(0.25);
});
