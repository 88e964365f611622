import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { RunnelError } from "../../src/errors.ts";
import { readBatchHeader, stampProducer } from "../../src/format/record-batch.ts";
import type { Partition } from "../../src/log/api.ts";
import { LEADER_EPOCH_FILE, LeaderEpochCache } from "../../src/log/leader-epoch.ts";
import { openLogManager } from "../../src/log/log-manager.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { prng } from "../support/prng.ts";
import { makeBatch, readAllValues, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

/** The leader epoch stamped in each batch of the partition, in log order. */
function batchEpochs(partition: Partition): number[] {
  const epochs: number[] = [];
  let offset = partition.logStartOffset;
  while (offset < partition.nextOffset) {
    const slice = partition.read(offset, 1)!;
    const header = readBatchHeader(partition.readBytes(slice));
    slice.release();
    epochs.push(header.leaderEpoch);
    offset = header.baseOffset + header.lastOffsetDelta + 1;
  }
  return epochs;
}

/** A stamped copy of every batch of `partition`, as a leader would hand them to a follower. */
function stampedBatches(partition: Partition): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let offset = partition.logStartOffset;
  while (offset < partition.nextOffset) {
    const slice = partition.read(offset, 1)!;
    const bytes = partition.readBytes(slice);
    slice.release();
    batches.push(bytes);
    const header = readBatchHeader(bytes);
    offset = header.baseOffset + header.lastOffsetDelta + 1;
  }
  return batches;
}

describe("LeaderEpochCache", () => {
  test("endOffsetFor answers like Kafka's OffsetForLeaderEpoch", () => {
    const dir = newTempDir("epochs");
    const cache = new LeaderEpochCache(nativeStorage, dir, [], false);
    cache.assign(1, 0);
    cache.assign(3, 10);
    cache.assign(4, 25);
    expect(cache.endOffsetFor(4, 40)).toEqual({ epoch: 4, endOffset: 40 });
    expect(cache.endOffsetFor(3, 40)).toEqual({ epoch: 3, endOffset: 25 });
    // Epoch 2 never led here: the largest epoch below it is 1, which ends where 3 starts.
    expect(cache.endOffsetFor(2, 40)).toEqual({ epoch: 1, endOffset: 10 });
    expect(cache.endOffsetFor(0, 40)).toEqual({ epoch: 0, endOffset: 0 });
    expect(cache.endOffsetFor(5, 40)).toEqual({ epoch: -1, endOffset: -1 });
  });

  test("truncating from the end drops epochs that start at or after the cut and rewrites the file", () => {
    const dir = newTempDir("epochs");
    const cache = new LeaderEpochCache(nativeStorage, dir, [], false);
    cache.assign(1, 0);
    cache.assign(2, 10);
    cache.truncateFromEnd(10);
    expect(cache.list()).toEqual([{ epoch: 1, startOffset: 0 }]);
    expect(fs.readFileSync(`${dir}/${LEADER_EPOCH_FILE}`, "utf8")).toBe('{"version":1,"epochs":[[1,0]]}\n');
  });
});

describe("Partition: leader epochs", () => {
  test("a single node stamps epoch 0, writes no checkpoint, and its epoch 0 ends at the log end", async () => {
    const dataDir = newTempDir("epochs");
    const manager = await openLogManager({ dataDir });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    partition.append(makeBatch("a", 3, 1000));
    expect(batchEpochs(partition)).toEqual([0]);
    expect(partition.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 3 });
    expect(fs.existsSync(`${dataDir}/topics/t/0/${LEADER_EPOCH_FILE}`)).toBe(false);
    await manager.close();
  });

  test("appends stamp the leader's epoch and the history survives a reopen", async () => {
    const dataDir = newTempDir("epochs");
    let manager = await openLogManager({ dataDir, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("t", { partitions: 1 });
    let partition = manager.partition("t", 0);
    partition.append(makeBatch("a", 2, 1000, 900));
    partition.becomeLeader(2);
    partition.append(makeBatch("b", 2, 1000, 900));
    partition.append(makeBatch("c", 2, 1000, 900));
    partition.becomeLeader(5);
    partition.append(makeBatch("d", 2, 1000, 900));
    expect(batchEpochs(partition)).toEqual([0, 2, 2, 5]);
    expect(partition.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 6 });
    await manager.close();
    manager = await openLogManager({ dataDir });
    partition = manager.partition("t", 0);
    expect(partition.latestLogEpoch).toBe(5);
    expect(partition.leaderEpoch).toBe(5);
    expect(partition.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 2 });
    expect(partition.endOffsetForEpoch(4)).toEqual({ epoch: 2, endOffset: 6 });
    await manager.close();
  });

  test("a lost checkpoint is rebuilt from the batch headers", async () => {
    const dataDir = newTempDir("epochs");
    let manager = await openLogManager({ dataDir, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("t", { partitions: 1 });
    let partition = manager.partition("t", 0);
    for (const epoch of [1, 1, 3, 7]) {
      if (epoch !== partition.leaderEpoch) partition.becomeLeader(epoch);
      partition.append(makeBatch(`e${epoch}`, 2, 1000, 1300));
    }
    await manager.close();
    fs.rmSync(`${dataDir}/topics/t/0/${LEADER_EPOCH_FILE}`);
    manager = await openLogManager({ dataDir });
    partition = manager.partition("t", 0);
    expect(partition.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 4 });
    expect(partition.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 6 });
    expect(partition.endOffsetForEpoch(7)).toEqual({ epoch: 7, endOffset: 8 });
    expect(fs.existsSync(`${dataDir}/topics/t/0/${LEADER_EPOCH_FILE}`)).toBe(true);
    await manager.close();
  });

  test("an epoch older than the log's latest is refused", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("epochs") });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    partition.becomeLeader(4);
    partition.append(makeBatch("a", 1, 1000));
    expect(() => partition.becomeLeader(3)).toThrow(RunnelError);
    await manager.close();
  });
});

describe("Partition: follower appends", () => {
  test("a follower stores the leader's batches byte for byte, keeping offsets and epochs", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("follower"), topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("leader", { partitions: 1 });
    manager.createTopic("follower", { partitions: 1 });
    const leader = manager.partition("leader", 0);
    const follower = manager.partition("follower", 0);
    leader.becomeLeader(2);
    for (let i = 0; i < 6; i++) leader.append(makeBatch(`m${i}`, 3, 1000 + i, 900));
    for (const batch of stampedBatches(leader)) follower.appendAsFollower(batch);
    expect(follower.nextOffset).toBe(leader.nextOffset);
    expect(stampedBatches(follower)).toEqual(stampedBatches(leader));
    expect(follower.latestLogEpoch).toBe(2);
    await manager.close();
  });

  test("a follower learns the leader's idempotent producers: a retry sent to it once it leads is a duplicate", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("follower") });
    manager.createTopic("leader", { partitions: 1 });
    manager.createTopic("follower", { partitions: 1 });
    const leader = manager.partition("leader", 0);
    const follower = manager.partition("follower", 0);
    const idempotent = (tag: string, baseSequence: number) => {
      const batch = makeBatch(tag, 2, 1000);
      stampProducer(batch, { producerId: 9, producerEpoch: 0, baseSequence });
      return batch;
    };
    leader.append(idempotent("a", 0));
    leader.append(idempotent("b", 2));
    for (const batch of stampedBatches(leader)) follower.appendAsFollower(batch);
    follower.becomeLeader(1);
    expect(follower.append(idempotent("b", 2))).toMatchObject({ baseOffset: 2, lastOffset: 3, duplicate: true });
    expect(() => follower.append(idempotent("gap", 6))).toThrow(/OUT_OF_ORDER|expected/);
    expect(follower.append(idempotent("c", 4))).toMatchObject({ baseOffset: 4 });
    await manager.close();
  });

  test("a batch that does not continue the follower's log is refused", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("follower") });
    manager.createTopic("leader", { partitions: 1 });
    manager.createTopic("follower", { partitions: 1 });
    const leader = manager.partition("leader", 0);
    leader.append(makeBatch("a", 2, 1000));
    leader.append(makeBatch("b", 2, 1000));
    const [, second] = stampedBatches(leader);
    expect(() => manager.partition("follower", 0).appendAsFollower(second!)).toThrow(/starts at 2 where the log ends at 0/);
    expect(manager.partition("follower", 0).nextOffset).toBe(0);
    await manager.close();
  });
});

describe("Partition: truncateTo", () => {
  test("cuts across segments at a batch boundary; reads, epochs and appends carry on from the cut", async () => {
    const dataDir = newTempDir("truncate");
    let manager = await openLogManager({ dataDir, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("t", { partitions: 1 });
    let partition = manager.partition("t", 0);
    partition.becomeLeader(1);
    for (let i = 0; i < 10; i++) partition.append(makeBatch(`a${i}`, 2, 1000 + i, 900));
    partition.becomeLeader(2);
    for (let i = 0; i < 10; i++) partition.append(makeBatch(`b${i}`, 2, 2000 + i, 900));
    const segmentsBefore = manager.describeTopic("t").partitions[0]!.segmentCount;
    // Offset 13 is inside batch a6 (offsets 12-13): the whole batch goes.
    expect(partition.truncateTo(13)).toBe(12);
    expect(manager.describeTopic("t").partitions[0]!.segmentCount).toBeLessThan(segmentsBefore);
    expect(partition.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 12 });
    expect(partition.endOffsetForEpoch(2)).toEqual({ epoch: -1, endOffset: -1 });
    const values = readAllValues(partition);
    expect(values).toHaveLength(12);
    expect(values.at(-1)!.startsWith("a5:1:")).toBe(true);
    partition.becomeLeader(3);
    expect(partition.append(makeBatch("c", 2, 3000, 900))).toMatchObject({ baseOffset: 12, lastOffset: 13 });
    await manager.close();
    manager = await openLogManager({ dataDir });
    partition = manager.partition("t", 0);
    expect(manager.recovery.truncations).toEqual([]);
    expect(partition.nextOffset).toBe(14);
    expect(readAllValues(partition).at(-1)!.startsWith("c:1:")).toBe(true);
    expect(partition.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 12 });
    expect(partition.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 14 });
    await manager.close();
  });

  test("the idempotent-producer table forgets the batches cut off", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("truncate") });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    const idempotent = (tag: string, baseSequence: number) => {
      const batch = makeBatch(tag, 2, 1000);
      stampProducer(batch, { producerId: 7, producerEpoch: 0, baseSequence });
      return batch;
    };
    for (const [index, sequence] of [0, 2, 4].entries()) partition.append(idempotent(`p${index}`, sequence));
    partition.flush();
    partition.truncateTo(4);
    expect(partition.append(idempotent("p1", 2))).toMatchObject({ baseOffset: 2, duplicate: true });
    expect(partition.append(idempotent("p2", 4))).toEqual(expect.objectContaining({ baseOffset: 4, lastOffset: 5 }));
    expect(partition.append(idempotent("p2", 4)).duplicate).toBe(true);
    await manager.close();
  });

  test("a crash at any step of a truncation reopens to a consistent log holding at least the cut prefix", async () => {
    const random = prng(14);
    // Every mutating file operation of the truncation is a point where the broker may die.
    for (let failAt = 1; failAt <= 8; failAt++) {
      const dataDir = newTempDir("truncate-crash");
      const storage = failingStorage();
      let manager = await openLogManager({ dataDir, storage, topicDefaults: { "segment.bytes": 4096 } });
      manager.createTopic("t", { partitions: 1 });
      let partition = manager.partition("t", 0);
      for (let i = 0; i < 12; i++) {
        if (i === 6) partition.becomeLeader(1);
        partition.append(makeBatch(`m${i}`, 2, 1000 + i, 700 + Math.floor(random() * 400)));
      }
      partition.flush();
      const before = readAllValues(partition);
      storage.failAfter = failAt;
      let failed = false;
      try {
        partition.truncateTo(5);
      } catch {
        failed = true;
      }
      storage.failAfter = -1;
      await manager.close().catch(() => undefined);
      manager = await openLogManager({ dataDir });
      partition = manager.partition("t", 0);
      const after = readAllValues(partition);
      expect(after).toEqual(before.slice(0, after.length));
      expect(after.length).toBeGreaterThanOrEqual(4);
      if (!failed) expect(after.length).toBe(4);
      const end = partition.endOffsetForEpoch(partition.latestLogEpoch);
      expect(end.endOffset).toBe(partition.nextOffset);
      expect(batchEpochs(partition)).toEqual(batchEpochs(partition).map((_, i) => (i < 6 ? 0 : 1)));
      await manager.close();
    }
  });
});

describe("Partition: restartAt", () => {
  /** A log of 12 batches of two records over several 4 KiB segments, epochs 0 then 1, flushed. */
  async function filledLog(dataDir: string, storage: Storage = nativeStorage) {
    const manager = await openLogManager({ dataDir, storage, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    for (let i = 0; i < 12; i++) {
      if (i === 6) partition.becomeLeader(1);
      partition.append(makeBatch(`m${i}`, 2, 1000 + i, 900));
    }
    partition.flush();
    return { manager, partition };
  }

  test("empties the log and starts it over at the leader's log start, which survives a restart", async () => {
    const dataDir = newTempDir("restart");
    let { manager, partition } = await filledLog(dataDir);
    expect(partition.nextOffset).toBe(24);
    partition.restartAt(100);
    expect(partition.logStartOffset).toBe(100);
    expect(partition.nextOffset).toBe(100);
    expect(partition.latestLogEpoch).toBe(-1);
    expect(manager.describeTopic("t").partitions[0]!.segmentCount).toBe(1);
    expect(() => partition.read(50, 1024)).toThrow("outside");
    // The leader's batches go on from there, as they are.
    const leader = (await filledLog(newTempDir("restart-leader"))).partition;
    leader.truncateTo(0);
    leader.restartAt(100);
    leader.becomeLeader(3);
    leader.append(makeBatch("n0", 2, 5000, 900));
    for (const batch of stampedBatches(leader)) partition.appendAsFollower(batch);
    expect(partition.nextOffset).toBe(102);
    await manager.close();
    manager = await openLogManager({ dataDir });
    partition = manager.partition("t", 0);
    expect(manager.recovery.truncations).toEqual([]);
    expect(partition.logStartOffset).toBe(100);
    expect(partition.nextOffset).toBe(102);
    expect(readAllValues(partition)).toHaveLength(2);
    expect(partition.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 102 });
    expect(partition.epochHistory()).toEqual([{ epoch: 3, startOffset: 100 }]);
    await manager.close();
  });

  test("refuses to start over inside its log (that is truncateTo)", async () => {
    const { manager, partition } = await filledLog(newTempDir("restart"));
    expect(() => partition.restartAt(24)).toThrow(RunnelError);
    expect(() => partition.restartAt(3)).toThrow("only past its end");
    expect(() => partition.restartAt(0)).toThrow(RunnelError);
    expect(partition.nextOffset).toBe(24);
    await manager.close();
  });

  test("starts over below its log start too (a log restarted at an older leader's start), also across a crash at any step", async () => {
    const outcomes = new Set<string>();
    for (const failAt of [1, 2, 3, 5, 60]) {
      const dataDir = newTempDir("restart-below");
      const storage = failingStorage();
      let { manager, partition } = await filledLog(dataDir, storage);
      partition.restartAt(100);
      const leader = (await filledLog(newTempDir("restart-below-leader"))).partition;
      leader.truncateTo(0);
      leader.restartAt(100);
      leader.append(makeBatch("n0", 2, 5000, 900));
      for (const batch of stampedBatches(leader)) partition.appendAsFollower(batch);
      storage.failAfter = failAt;
      try {
        partition.restartAt(50);
      } catch {
        // the crash
      }
      storage.failAfter = -1;
      await manager.close().catch(() => undefined);
      manager = await openLogManager({ dataDir });
      partition = manager.partition("t", 0);
      const range = [partition.logStartOffset, partition.nextOffset];
      outcomes.add(range[0] === 50 ? "new" : "old");
      // The old log whole, or the new one empty: a gap after an empty segment at 50 is cut off.
      expect([[100, 102], [50, 50]]).toContainEqual(range);
      expect(readAllValues(partition)).toHaveLength(range[0] === 100 ? 2 : 0);
      await manager.close();
    }
    expect([...outcomes].sort()).toEqual(["new", "old"]);
  });

  test("a crash at any step reopens to the old log or a suffix of it (as retention leaves it), or the new empty log", async () => {
    const outcomes = new Set<string>();
    // Early and mid-way crashes, and one past the last mutating call (the restart completes).
    for (const failAt of [1, 2, 3, 4, 6, 9, 13, 17, 21, 60]) {
      const dataDir = newTempDir("restart-crash");
      const storage = failingStorage();
      let { manager, partition } = await filledLog(dataDir, storage);
      const before = readAllValues(partition);
      storage.failAfter = failAt;
      try {
        partition.restartAt(100);
      } catch {
        // the crash
      }
      storage.failAfter = -1;
      await manager.close().catch(() => undefined);
      manager = await openLogManager({ dataDir });
      partition = manager.partition("t", 0);
      const after = readAllValues(partition);
      outcomes.add(after.length === 0 ? "new" : after.length === before.length ? "old" : "suffix");
      if (after.length === 0) {
        expect(partition.logStartOffset).toBe(100);
        expect(partition.nextOffset).toBe(100);
      } else {
        expect(after).toEqual(before.slice(before.length - after.length));
        expect(partition.nextOffset).toBe(24);
        expect(partition.endOffsetForEpoch(partition.latestLogEpoch).endOffset).toBe(24);
        expect(partition.latestLogEpoch).toBe(1);
      }
      await manager.close();
    }
    expect([...outcomes].sort()).toEqual(["new", "old", "suffix"]);
  });
});

/** Storage whose `failAfter`-th mutating call from now on throws EIO instead of running (a crash there). */
function failingStorage(): Storage & { failAfter: number } {
  const storage = { ...nativeStorage, failAfter: -1 };
  const mutating = ["ftruncate", "unlink", "writeFileAtomic", "rename", "pwrite"] as const;
  for (const name of mutating) {
    const inner = nativeStorage[name] as (...args: never[]) => unknown;
    (storage as Record<string, unknown>)[name] = (...args: never[]) => {
      if (storage.failAfter > 0 && --storage.failAfter === 0) {
        storage.failAfter = -1;
        throw new Error(`injected crash before ${name}`);
      }
      return inner(...args);
    };
  }
  return storage;
}
