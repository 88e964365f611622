/**
 * The recovery point advances after recovery (issue 16): a broker killed again and again within
 * flush.ms must not verify ever more bytes at each start. A crash is simulated as in
 * recovery.test.ts: the live data directory is copied (what the page cache holds at a kill -9).
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import type { LogManager } from "../../src/log/api.ts";
import { openLogManager } from "../../src/log/log-manager.ts";
import { waitUntil } from "../server/helpers.ts";
import { makeBatch, readAllValues, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();
/** No background flush policy: only recovery may move the recovery point here. */
const TOPIC_DEFAULTS = { "flush.ms": -1, "flush.messages": -1 };

function crashCopy(live: string): string {
  const copy = newTempDir("crash");
  fs.cpSync(live, copy, { recursive: true });
  return copy;
}

function appendBatches(manager: LogManager, tag: string, count: number): number {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const batch = makeBatch(`${tag}${i}`, 2, 1000 + i * 10, 200);
    bytes += batch.length;
    manager.partition("t", 0).append(batch);
  }
  return bytes;
}

/** Resolves once the recovery point on disk reached the partition's end (the checkpoint after recovery). */
async function checkpointed(manager: LogManager, dataDir: string): Promise<void> {
  const partition = manager.partition("t", 0);
  const onDisk = () => (JSON.parse(fs.readFileSync(`${dataDir}/topics/t/0/recovery-point`, "utf8")) as { offset: number }).offset;
  await waitUntil(async () => onDisk() === partition.nextOffset, 10_000, "the recovery point to reach the log's end");
}

describe("Recovery point after recovery", () => {
  test("repeated crashes without a flush verify only what was written since the last start", async () => {
    const live = newTempDir("live");
    const first = await openLogManager({ dataDir: live, topicDefaults: TOPIC_DEFAULTS });
    first.createTopic("t", { partitions: 1 });
    appendBatches(first, "a", 5);
    first.partition("t", 0).flush();
    const tailBytes = appendBatches(first, "b", 20);
    const crash1 = crashCopy(live);
    await first.close();

    const second = await openLogManager({ dataDir: crash1, topicDefaults: TOPIC_DEFAULTS });
    expect(second.recovery.clean).toBe(false);
    expect(second.recovery.bytesScanned).toBe(tailBytes);
    await checkpointed(second, crash1);
    const newBytes = appendBatches(second, "c", 3);
    const crash2 = crashCopy(crash1);
    await second.close();

    const third = await openLogManager({ dataDir: crash2, topicDefaults: TOPIC_DEFAULTS });
    expect(third.recovery.clean).toBe(false);
    expect(third.recovery.bytesScanned).toBe(newBytes);
    await checkpointed(third, crash2);
    const crash3 = crashCopy(crash2);
    await third.close();

    const fourth = await openLogManager({ dataDir: crash3, topicDefaults: TOPIC_DEFAULTS });
    expect(fourth.recovery.clean).toBe(false);
    expect(fourth.recovery.bytesScanned).toBe(0);
    expect(readAllValues(fourth.partition("t", 0))).toHaveLength((5 + 20 + 3) * 2);
    await fourth.close();
  });

  test("a start that verified nothing writes no checkpoint", async () => {
    const live = newTempDir("live");
    const first = await openLogManager({ dataDir: live, topicDefaults: TOPIC_DEFAULTS });
    first.createTopic("t", { partitions: 1 });
    appendBatches(first, "a", 4);
    first.partition("t", 0).flush();
    const crash = crashCopy(live);
    await first.close();
    const pointFile = `${crash}/topics/t/0/recovery-point`;
    const before = fs.statSync(pointFile).mtimeMs;
    const again = await openLogManager({ dataDir: crash, topicDefaults: TOPIC_DEFAULTS });
    expect(again.recovery.bytesScanned).toBe(0);
    await Bun.sleep(50);
    expect(fs.statSync(pointFile).mtimeMs).toBe(before);
    await again.close();
  });
});
