import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openLogManager } from "../../src/log/log-manager.ts";
import { RunnelError } from "../../src/errors.ts";
import { until } from "../support/wait.ts";
import { makeBatch, openFdCount, recordingLogger, valuesOf, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

const newDir = (): string => newTempDir("manager");

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof RunnelError ? error.code : `not a RunnelError: ${String(error)}`;
  }
  return undefined;
}

describe("LogManager topics", () => {
  test("topic names outside [a-zA-Z0-9._-]{1,249}, and '.' and '..', are rejected", async () => {
    const dataDir = newDir();
    const manager = await openLogManager({ dataDir });
    for (const name of ["../x", "a/b", "", "x".repeat(250), ".", "..", "a b", "ä", "x\u0000", "..\\x"]) {
      expect(codeOf(() => manager.createTopic(name, { partitions: 1 }))).toBe("INVALID_TOPIC_NAME");
    }
    expect(fs.readdirSync(`${dataDir}/topics`)).toEqual([]);
    for (const name of ["x".repeat(249), "a.b-c_D9", "...", ".x"]) manager.createTopic(name, { partitions: 1 });
    expect(manager.listTopics()).toHaveLength(4);
    await manager.close();
  });

  test("create, describe, add partitions, alter config and delete, persisted across reopen", async () => {
    const dataDir = newDir();
    let manager = await openLogManager({ dataDir, topicDefaults: { "retention.ms": 1000 } });
    const created = manager.createTopic("orders", { partitions: 2, config: { "segment.bytes": 8192 } });
    expect(created.partitions.map((p) => p.partition)).toEqual([0, 1]);
    expect(created.config).toEqual({ "retention.ms": 1000, "retention.bytes": -1, "segment.bytes": 8192, "segment.ms": 604_800_000, "flush.messages": -1, "flush.ms": -1 });
    expect(codeOf(() => manager.createTopic("orders", { partitions: 1 }))).toBe("TOPIC_EXISTS");
    expect(codeOf(() => manager.createTopic("p0", { partitions: 0 }))).toBe("INVALID_PARTITIONS");
    expect(codeOf(() => manager.createTopic("p0", { partitions: 10_001 }))).toBe("INVALID_PARTITIONS");
    expect(codeOf(() => manager.createTopic("p0", { partitions: 1, config: { "segment.bytes": 1 } }))).toBe("INVALID_CONFIG");
    expect(codeOf(() => manager.createTopic("p0", { partitions: 1, config: { "bogus.key": 1 } as never }))).toBe("INVALID_CONFIG");
    expect(codeOf(() => manager.createTopic("p0", { partitions: 1, config: { "flush.messages": 0 } }))).toBe("INVALID_CONFIG");
    manager.partition("orders", 1).append(makeBatch("o", 2, 1));
    expect(manager.addPartitions("orders", 3).partitions).toHaveLength(3);
    expect(codeOf(() => manager.addPartitions("orders", 2))).toBe("INVALID_PARTITIONS");
    expect(manager.alterTopicConfig("orders", { "retention.bytes": 5000 }).config["retention.bytes"]).toBe(5000);
    expect(codeOf(() => manager.alterTopicConfig("orders", { "retention.ms": -7 }))).toBe("INVALID_CONFIG");
    manager.createTopic("doomed", { partitions: 3 });
    manager.deleteTopic("doomed");
    expect(fs.existsSync(`${dataDir}/topics/doomed`)).toBe(false);
    // The trash is removed in the background (off the event loop).
    await until(() => fs.readdirSync(`${dataDir}/trash`).length === 0);
    expect(codeOf(() => manager.partition("doomed", 0))).toBe("UNKNOWN_TOPIC");
    expect(codeOf(() => manager.partition("orders", 3))).toBe("UNKNOWN_PARTITION");
    await manager.close();

    manager = await openLogManager({ dataDir });
    expect(manager.listTopics()).toEqual(["orders"]);
    const described = manager.describeTopic("orders");
    expect(described.partitions).toHaveLength(3);
    expect(described.config["retention.bytes"]).toBe(5000);
    expect(described.partitions[1]!.nextOffset).toBe(2);
    await manager.close();
  });

  test("a topic.json that fails validation is skipped and logged, the rest load", async () => {
    const dataDir = newDir();
    let manager = await openLogManager({ dataDir });
    manager.createTopic("good", { partitions: 1 });
    manager.createTopic("bad", { partitions: 1 });
    await manager.close();
    const file = `${dataDir}/topics/bad/topic.json`;
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"segment.bytes": 1073741824', '"segment.bytes": 12'));
    const logger = recordingLogger();
    manager = await openLogManager({ dataDir, logger });
    expect(manager.listTopics()).toEqual(["good"]);
    expect(logger.entries.some((entry) => entry.level === "error" && (entry.object as { topic?: string }).topic === "bad")).toBe(true);
    await manager.close();
  });

  test("flush.messages moves the recovery point as messages arrive", async () => {
    const dataDir = newDir();
    const manager = await openLogManager({ dataDir });
    manager.createTopic("f", { partitions: 1, config: { "flush.messages": 5 } });
    const partition = manager.partition("f", 0);
    for (let i = 0; i < 4; i++) partition.append(makeBatch("f", 1, 1));
    const pointFile = `${dataDir}/topics/f/0/recovery-point`;
    expect(JSON.parse(fs.readFileSync(pointFile, "utf8")).offset).toBe(0);
    partition.append(makeBatch("f", 1, 1));
    // The policy's flush runs in the background (fdatasync off the event loop): wait for it.
    const deadline = Date.now() + 5000;
    while (JSON.parse(fs.readFileSync(pointFile, "utf8")).offset !== 5 && Date.now() < deadline) await Bun.sleep(5);
    expect(JSON.parse(fs.readFileSync(pointFile, "utf8")).offset).toBe(5);
    await manager.close();
  });

  test("flush.ms flushes in the background and close() stops the timers", async () => {
    const dataDir = newDir();
    const manager = await openLogManager({ dataDir });
    manager.createTopic("f", { partitions: 1, config: { "flush.ms": 0 } });
    manager.startBackgroundTasks({ flushCheckIntervalMs: 5 });
    manager.partition("f", 0).append(makeBatch("f", 3, 1));
    const pointFile = `${dataDir}/topics/f/0/recovery-point`;
    const deadline = Date.now() + 5000;
    while (JSON.parse(fs.readFileSync(pointFile, "utf8")).offset !== 3 && Date.now() < deadline) await Bun.sleep(5);
    expect(JSON.parse(fs.readFileSync(pointFile, "utf8")).offset).toBe(3);
    await manager.close();
    expect(fs.existsSync(`${dataDir}/clean-shutdown`)).toBe(true);
    expect(codeOf(() => manager.partition("f", 0))).toBe("SHUTTING_DOWN");
  });

  test("segment.ms rolls the active segment once its first batch is that old", async () => {
    let nowMs = 1_000_000;
    const manager = await openLogManager({ dataDir: newDir(), now: () => nowMs });
    manager.createTopic("s", { partitions: 1, config: { "segment.ms": 60_000 } });
    const partition = manager.partition("s", 0);
    partition.append(makeBatch("a", 1, nowMs));
    nowMs += 59_999;
    partition.append(makeBatch("b", 1, nowMs));
    expect(partition.info().segmentCount).toBe(1);
    nowMs += 1;
    partition.append(makeBatch("c", 1, nowMs));
    expect(partition.info().segmentCount).toBe(2);
    await manager.close();
  });

  test("open fds stay bounded with many segments and a small openSegmentsMax, and reads still work", async () => {
    const manager = await openLogManager({ dataDir: newDir(), openSegmentsMax: 4, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("many", { partitions: 2 });
    for (let i = 0; i < 200; i++) manager.partition("many", i % 2).append(makeBatch(`m${i}`, 1, i, 1500));
    const baseline = openFdCount();
    for (let round = 0; round < 3; round++) {
      for (let offset = 0; offset < 100; offset += 3) {
        for (const index of [0, 1]) {
          const partition = manager.partition("many", index);
          const slice = partition.read(offset, 100)!;
          expect(valuesOf(partition.readBytes(slice))[0]!.startsWith(`m${offset * 2 + index}:`)).toBe(true);
          slice.release();
        }
      }
    }
    expect(manager.describeTopic("many").partitions[0]!.segmentCount).toBeGreaterThanOrEqual(50);
    // Two active segments are pinned; the cache keeps at most 4 others.
    expect(openFdCount()).toBeLessThanOrEqual(baseline + 6);
    await manager.close();
  });

  test("slices hold their fd past the cache bound until released", async () => {
    const manager = await openLogManager({ dataDir: newDir(), openSegmentsMax: 1, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("held", { partitions: 1 });
    const partition = manager.partition("held", 0);
    for (let i = 0; i < 40; i++) partition.append(makeBatch(`h${i}`, 1, i, 1500));
    const held = [0, 5, 10, 15].map((offset) => partition.read(offset, 100)!);
    for (const [i, slice] of held.entries()) expect(valuesOf(partition.readBytes(slice))[0]!.startsWith(`h${[0, 5, 10, 15][i]}:`)).toBe(true);
    const whileHeld = openFdCount();
    for (const slice of held) slice.release();
    expect(openFdCount()).toBeLessThan(whileHeld);
    await manager.close();
  });
});

describe("LogManager data directory lock", () => {
  test("a second manager on the same data directory is refused while the first is open, and allowed after it closes", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-lock-"));
    try {
      const first = await openLogManager({ dataDir: dir });
      let refused: unknown;
      try {
        await openLogManager({ dataDir: dir });
      } catch (error) {
        refused = error;
      }
      expect(refused).toBeInstanceOf(RunnelError);
      expect((refused as RunnelError).message).toContain(`pid ${process.pid}`);
      await first.close();
      const second = await openLogManager({ dataDir: dir });
      await second.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
