/**
 * Seeded random model test: a partition against a plain in-memory array of batches, through
 * thousands of appends, reads at random offsets and sizes, timestamp lookups, flushes,
 * rolls (tiny segment.bytes), clean reopens and crash-like reopens (a copy of the live data
 * directory, which is what the page cache holds at a kill -9).
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { openLogManager } from "../../src/log/log-manager.ts";
import type { LogManager, Partition } from "../../src/log/api.ts";
import { readBatchHeader } from "../../src/format/record-batch.ts";
import { RunnelError } from "../../src/errors.ts";
import { makeBatch, prng, valuesOf, tempDirsPerTest } from "./helpers.ts";

interface ModelBatch {
  baseOffset: number;
  values: string[];
  maxTimestamp: number;
}

const newTempDir = tempDirsPerTest();

const OPTIONS = { topicDefaults: { "segment.bytes": 4096 }, indexIntervalBytes: 512, openSegmentsMax: 8 };

async function reopen(manager: LogManager, dir: string, crash: boolean): Promise<{ manager: LogManager; dir: string }> {
  if (!crash) {
    await manager.close();
    return { manager: await openLogManager({ dataDir: dir, ...OPTIONS }), dir };
  }
  const copy = newTempDir("model-crash");
  fs.cpSync(dir, copy, { recursive: true });
  await manager.close();
  const reopened = await openLogManager({ dataDir: copy, ...OPTIONS });
  expect(reopened.recovery.clean).toBe(false);
  expect(reopened.recovery.truncations).toEqual([]);
  return { manager: reopened, dir: copy };
}

function checkRead(partition: Partition, model: ModelBatch[], offset: number, maxBytes: number): void {
  const slice = partition.read(offset, maxBytes);
  if (offset === partition.nextOffset) {
    expect(slice).toBeNull();
    return;
  }
  expect(slice).not.toBeNull();
  try {
    const bytes = partition.readBytes(slice!);
    const firstIndex = model.findIndex((batch) => batch.baseOffset + batch.values.length > offset);
    expect(slice!.firstOffset).toBe(model[firstIndex]!.baseOffset);
    const firstBytes = 12 + readBatchHeader(bytes).batchLength;
    expect(bytes.length <= maxBytes || bytes.length === firstBytes).toBe(true);
    const values = valuesOf(bytes);
    const expected: string[] = [];
    for (let i = firstIndex; expected.length < values.length && i < model.length; i++) expected.push(...model[i]!.values);
    expect(values).toEqual(expected);
  } finally {
    slice!.release();
  }
}

function expectedOffsetForTimestamp(model: ModelBatch[], timestampMs: number): number | null {
  return model.find((batch) => batch.maxTimestamp >= timestampMs)?.baseOffset ?? null;
}

async function runModel(seed: number, operations: number): Promise<void> {
  const random = prng(seed);
  let dir = newTempDir("model");
  let manager: LogManager = await openLogManager({ dataDir: dir, ...OPTIONS });
  manager.createTopic("model", { partitions: 1 });
  const model: ModelBatch[] = [];
  let nextOffset = 0;
  let clockMs = 1_000_000;
  for (let op = 0; op < operations; op++) {
    const partition = manager.partition("model", 0);
    const roll = random();
    if (roll < 0.55) {
      const count = 1 + Math.floor(random() * 6);
      // Timestamps mostly rise, sometimes step back, as client clocks do.
      clockMs += Math.floor(random() * 50) - 8;
      const batch = makeBatch(`s${seed}o${op}`, count, clockMs, 8 + Math.floor(random() * 300));
      const maxTimestamp = clockMs + count - 1;
      const result = partition.append(batch);
      expect(result.baseOffset).toBe(nextOffset);
      model.push({ baseOffset: nextOffset, values: valuesOf(batch), maxTimestamp });
      nextOffset += count;
    } else if (roll < 0.8) {
      const offset = Math.floor(random() * (nextOffset + 1));
      checkRead(partition, model, offset, 1 + Math.floor(random() * 6000));
    } else if (roll < 0.9) {
      // Half the probes hit a stored max timestamp exactly: ties are where floors go wrong.
      const stored = model.length > 0 && random() < 0.5 ? model[Math.floor(random() * model.length)]!.maxTimestamp : null;
      const timestampMs = stored ?? 1_000_000 + Math.floor(random() * (clockMs - 1_000_000 + 100));
      expect(partition.offsetForTimestamp(timestampMs)).toBe(expectedOffsetForTimestamp(model, timestampMs));
    } else if (roll < 0.95) {
      const bad = random() < 0.5 ? -1 - Math.floor(random() * 10) : nextOffset + 1 + Math.floor(random() * 10);
      expect(() => partition.read(bad, 100)).toThrow(RunnelError);
    } else if (roll < 0.975) {
      partition.flush();
    } else {
      ({ manager, dir } = await reopen(manager, dir, random() < 0.5));
      expect(manager.partition("model", 0).nextOffset).toBe(nextOffset);
    }
  }
  const partition = manager.partition("model", 0);
  expect(partition.info().segmentCount).toBeGreaterThan(10);
  for (let offset = 0; offset <= nextOffset; offset += 7) checkRead(partition, model, offset, 100_000);
  await manager.close();
}

describe("Partition model", () => {
  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: 1500 random operations agree with an in-memory array of batches`, async () => {
      await runModel(seed, 1500);
    });
  }
});
