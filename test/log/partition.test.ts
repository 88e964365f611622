import { describe, expect, test } from "bun:test";
import { openLogManager } from "../../src/log/log-manager.ts";
import { RunnelError } from "../../src/errors.ts";
import { makeBatch, valuesOf, readAllValues, countingStorage, tempDirsPerTest } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

const dataDir = (): string => newTempDir("partition");

describe("Partition", () => {
  test("append assigns consecutive offsets and read returns the same records", async () => {
    const manager = await openLogManager({ dataDir: dataDir() });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    expect(partition.read(0, 1000)).toBeNull();
    const first = partition.append(makeBatch("a", 3, 1000));
    const second = partition.append(makeBatch("b", 2, 2000));
    expect(first).toMatchObject({ baseOffset: 0, lastOffset: 2 });
    expect(second).toMatchObject({ baseOffset: 3, lastOffset: 4 });
    expect(partition.nextOffset).toBe(5);
    const slice = partition.read(4, 1 << 20)!;
    expect(slice.firstOffset).toBe(3);
    expect(valuesOf(partition.readBytes(slice))).toEqual(["b:0:xxxxxxxxxxxx", "b:1:xxxxxxxxxxxx"]);
    slice.release();
    const all = partition.read(0, 1 << 20)!;
    expect(valuesOf(partition.readBytes(all))).toHaveLength(5);
    all.release();
    expect(partition.offsetForTimestamp(1500)).toBe(3);
    expect(partition.offsetForTimestamp(0)).toBe(0);
    expect(partition.offsetForTimestamp(5000)).toBeNull();
    await manager.close();
  });

  test("read outside the log throws OFFSET_OUT_OF_RANGE with the bounds", async () => {
    const manager = await openLogManager({ dataDir: dataDir() });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    partition.append(makeBatch("a", 3, 1000));
    let caught: unknown;
    try {
      partition.read(7, 100);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RunnelError);
    expect((caught as RunnelError).code).toBe("OFFSET_OUT_OF_RANGE");
    expect((caught as RunnelError).details).toEqual({ logStartOffset: 0, nextOffset: 3 });
    await manager.close();
  });

  test("data survives a clean close and reopen", async () => {
    const dir = dataDir();
    let manager = await openLogManager({ dataDir: dir, topicDefaults: { "segment.bytes": 4096 } });
    manager.createTopic("t", { partitions: 2 });
    for (let i = 0; i < 100; i++) manager.partition("t", i % 2).append(makeBatch(`m${i}`, 2, 1000 + i, 100));
    await manager.close();
    manager = await openLogManager({ dataDir: dir });
    expect(manager.recovery.clean).toBe(true);
    expect(manager.recovery.truncations).toEqual([]);
    const partition = manager.partition("t", 1);
    expect(partition.nextOffset).toBe(100);
    expect(manager.describeTopic("t").partitions[1]!.segmentCount).toBeGreaterThan(3);
    expect(partition.logStartOffset).toBe(0);
    const values = readAllValues(partition, 4096);
    expect(values).toHaveLength(100);
    expect(values[0]!.startsWith("m1:0:")).toBe(true);
    expect(values[99]!.startsWith("m99:1:")).toBe(true);
    await manager.close();
  });

  test("sync group-commits: callers arriving during an fdatasync share the next one", async () => {
    const { storage, state } = countingStorage();
    let open!: () => void;
    state.gate = new Promise<void>((resolve) => (open = resolve));
    const manager = await openLogManager({ dataDir: dataDir(), storage });
    manager.createTopic("t", { partitions: 1 });
    const partition = manager.partition("t", 0);
    partition.append(makeBatch("a", 1, 1));
    const first = partition.sync();
    const joined = [partition.sync(), partition.sync(), partition.sync()];
    expect(state.asyncStarted).toBe(1);
    open();
    state.gate = null;
    await first;
    await Promise.all(joined);
    expect(state.asyncStarted).toBe(2);
    await manager.close();
  });
});
