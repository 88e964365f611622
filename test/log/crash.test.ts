/**
 * Crash test: a real child process appends batches and reports each acknowledged offset on
 * stdout; the parent SIGKILLs it at a seeded random moment, reopens the log and checks that
 * every reported batch is there, intact and in order, and that the log holds nothing after
 * its last whole batch.
 */
import { describe, expect, test } from "bun:test";
import * as path from "node:path";
import { openLogManager } from "../../src/log/log-manager.ts";
import { crashBatchShape, crashValue } from "./fixtures/crash-batch.ts";
import { prng, valuesOf, tempDirsPerTest } from "./helpers.ts";

const CHILD = path.join(import.meta.dir, "fixtures", "append-loop.ts");
const newTempDir = tempDirsPerTest();

interface Reported {
  index: number;
  baseOffset: number;
  lastOffset: number;
}

/** Runs the child until it has reported `killAfter` appends, then SIGKILLs it. */
async function runAndKill(dataDir: string, seed: number, killAfter: number, deadlineMs: number): Promise<Reported[]> {
  const child = Bun.spawn([process.execPath, CHILD, dataDir, String(seed)], { stdout: "pipe", stderr: "pipe" });
  const reported: Reported[] = [];
  const decoder = new TextDecoder();
  let pending = "";
  const deadline = Date.now() + deadlineMs;
  const reader = child.stdout.getReader();
  try {
    while (reported.length < killAfter && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const [index, baseOffset, lastOffset] = line.split(" ").map(Number);
        if (lastOffset !== undefined) reported.push({ index: index!, baseOffset: baseOffset!, lastOffset });
      }
    }
    child.kill("SIGKILL");
    // Lines the child wrote before it died were acknowledged too: drain them.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
    }
  } finally {
    child.kill("SIGKILL");
    await child.exited;
  }
  for (const line of pending.split("\n")) {
    const [index, baseOffset, lastOffset] = line.split(" ").map(Number);
    if (lastOffset !== undefined && !Number.isNaN(lastOffset)) reported.push({ index: index!, baseOffset: baseOffset!, lastOffset });
  }
  if (child.signalCode !== "SIGKILL") throw new Error(`child ended on its own: ${await new Response(child.stderr).text()}`);
  return reported;
}

describe("Crash", () => {
  for (const seed of [11, 12]) {
    test(`seed ${seed}: after SIGKILL every acknowledged batch is present, intact and in order`, async () => {
      const dataDir = newTempDir("crash");
      const random = prng(seed);
      const killAfter = 30 + Math.floor(random() * 300);
      const reported = await runAndKill(dataDir, seed, killAfter, 10_000);
      expect(reported.length).toBeGreaterThanOrEqual(Math.min(killAfter, 30));
      reported.forEach((entry, i) => expect(entry.index).toBe(i));

      const manager = await openLogManager({ dataDir });
      expect(manager.recovery.clean).toBe(false);
      const partition = manager.partition("crash", 0);
      const lastReported = reported.at(-1)!;
      expect(partition.nextOffset).toBeGreaterThan(lastReported.lastOffset);
      // Walk the whole log: batch i must be exactly crashBatch(seed, i), with no gap and nothing after.
      let offset = 0;
      let index = 0;
      while (offset < partition.nextOffset) {
        const slice = partition.read(offset, 1 << 20)!;
        expect(slice.firstOffset).toBe(offset);
        const values = valuesOf(partition.readBytes(slice));
        slice.release();
        let at = 0;
        while (at < values.length) {
          const { count, valueBytes } = crashBatchShape(seed, index);
          for (let record = 0; record < count; record++) expect(values[at + record]).toBe(crashValue(seed, index, record, valueBytes));
          if (index < reported.length) expect(reported[index]!.baseOffset).toBe(offset + at);
          at += count;
          index++;
        }
        offset += values.length;
      }
      expect(offset).toBe(partition.nextOffset);
      expect(index).toBeGreaterThanOrEqual(reported.length);
      await manager.close();
    }, 20_000);
  }
});
