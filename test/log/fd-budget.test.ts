/**
 * Issue 16: segment fds stay within openSegmentsMax however many partitions exist (active
 * segments are not pinned), and a create that runs out of descriptors leaves no topic behind,
 * neither while the log runs nor after it is opened again.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { ERRNO, SyscallError } from "../../src/native/libc.ts";
import { openLogManager } from "../../src/log/log-manager.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { segmentFdBudget } from "../../src/log/fd-cache.ts";
import { makeBatch, openFdCount, tempDirsPerTest, valuesOf } from "./helpers.ts";

const newTempDir = tempDirsPerTest();

function emfile(syscall: string): SyscallError {
  return new SyscallError(syscall, ERRNO.EMFILE, "EMFILE");
}

describe("segment fds within openSegmentsMax", () => {
  test("300 partitions, each appended to and read back, hold at most openSegmentsMax (32) segment fds", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("fd-budget"), openSegmentsMax: 32 });
    try {
      const before = openFdCount();
      await manager.createTopicAsync("many", { partitions: 300 });
      for (let round = 0; round < 2; round++) {
        for (let index = 0; index < 300; index++) manager.partition("many", index).append(makeBatch(`r${round}p${index}`, 1, 1_000));
      }
      // Index files are opened and closed per write; only segment files stay open, at most 32.
      expect(openFdCount() - before).toBeLessThanOrEqual(32);
      for (const index of [0, 149, 299]) {
        const partition = manager.partition("many", index);
        const slice = partition.read(0, 1 << 20);
        expect(slice).not.toBeNull();
        if (slice === null) continue;
        expect(valuesOf(partition.readBytes(slice)).length).toBe(2);
        slice.release();
      }
      await Promise.all([0, 1, 2].map((index) => manager.partition("many", index).sync()));
    } finally {
      await manager.close();
    }
  });

  test("an append that finds no descriptor fails alone: the partition stays usable and the next append lands", async () => {
    let failOpens = false;
    const storage: Storage = {
      ...nativeStorage,
      open(path, options) {
        if (failOpens) throw emfile("open");
        return nativeStorage.open(path, options);
      },
    };
    const manager = await openLogManager({ dataDir: newTempDir("fd-emfile-append"), openSegmentsMax: 16, storage });
    try {
      await manager.createTopicAsync("t", { partitions: 20 });
      // Every partition written once: the first ones' files are closed again (16 fit).
      for (let index = 0; index < 20; index++) manager.partition("t", index).append(makeBatch(`a${index}`, 1, 1_000));
      failOpens = true;
      let failure: unknown = null;
      try {
        manager.partition("t", 0).append(makeBatch("refused", 1, 1_000));
      } catch (error) {
        failure = error;
      }
      expect(failure).toMatchObject({ code: "STORAGE_ERROR" });
      failOpens = false;
      expect(manager.partition("t", 0).append(makeBatch("later", 1, 1_000)).baseOffset).toBe(1);
      const partition = manager.partition("t", 0);
      const slice = partition.read(0, 1 << 20);
      expect(slice).not.toBeNull();
      if (slice !== null) {
        expect(valuesOf(partition.readBytes(slice)).map((value) => value.split(":")[0])).toEqual(["a0", "later"]);
        slice.release();
      }
    } finally {
      await manager.close();
    }
  });

  test("the segment fd budget is at most half the process's open-files limit", () => {
    expect(segmentFdBudget(1_024, 512)).toBe(256);
    expect(segmentFdBudget(100, 512)).toBe(100);
    expect(segmentFdBudget(1_024, null)).toBe(1_024);
  });
});

describe("a create that runs out of descriptors leaves no topic", () => {
  async function expectNoTopic(dataDir: string, name: string, storage: Storage): Promise<void> {
    expect(fs.existsSync(`${dataDir}/topics/${name}`)).toBe(false);
    expect(fs.readdirSync(`${dataDir}/staging`)).toEqual([]);
    const reopened = await openLogManager({ dataDir, storage });
    try {
      expect(reopened.hasTopic(name)).toBe(false);
      expect(reopened.listTopics()).toEqual(["kept"]);
    } finally {
      await reopened.close();
    }
  }

  test("EMFILE while its files are made: the staged topic is removed, also after a reopen", async () => {
    const dataDir = newTempDir("emfile-stage");
    let failWrites = false;
    let writes = 0;
    const storage: Storage = {
      ...nativeStorage,
      writeFileAsync(path, bytes, options) {
        if (failWrites && ++writes > 40) return Promise.reject(emfile("open"));
        return nativeStorage.writeFileAsync(path, bytes, options);
      },
    };
    const manager = await openLogManager({ dataDir, storage });
    try {
      await manager.createTopicAsync("kept", { partitions: 2 });
      failWrites = true;
      const failure = await manager.createTopicAsync("doomed", { partitions: 100 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "STORAGE_ERROR" });
      expect(String((failure as Error).message)).toContain("EMFILE");
      expect(manager.hasTopic("doomed")).toBe(false);
      expect(manager.listTopics()).toEqual(["kept"]);
    } finally {
      await manager.close();
    }
    await expectNoTopic(dataDir, "doomed", nativeStorage);
  });

  test("EMFILE while its partitions are opened (after the rename): the topic is withdrawn, also after a reopen", async () => {
    const dataDir = newTempDir("emfile-open");
    let failOpens = false;
    let opens = 0;
    const storage: Storage = {
      ...nativeStorage,
      open(path, options) {
        if (failOpens && path.includes("/topics/doomed/") && ++opens > 50) throw emfile("open");
        return nativeStorage.open(path, options);
      },
      readFile(path) {
        if (failOpens && path.includes("/topics/doomed/") && ++opens > 50) throw emfile("open");
        return nativeStorage.readFile(path);
      },
    };
    const manager = await openLogManager({ dataDir, storage });
    try {
      await manager.createTopicAsync("kept", { partitions: 2 });
      failOpens = true;
      const failure = await manager.createTopicAsync("doomed", { partitions: 200 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "STORAGE_ERROR" });
      expect(manager.hasTopic("doomed")).toBe(false);
      expect(manager.partitionsTotal).toBe(2);
      // The name is free again: a retry once descriptors are back creates it whole.
      failOpens = false;
      expect((await manager.createTopicAsync("again", { partitions: 3 })).partitions.length).toBe(3);
      manager.deleteTopic("again");
    } finally {
      await manager.close();
    }
    await expectNoTopic(dataDir, "doomed", nativeStorage);
  });
});

describe("partitionsTotal", () => {
  test("counts open partitions and those being created, through creates, additions and deletes", async () => {
    const manager = await openLogManager({ dataDir: newTempDir("partitions-total") });
    try {
      const creating = manager.createTopicAsync("a", { partitions: 3 });
      expect(manager.partitionsTotal).toBe(3);
      await creating;
      manager.createTopic("b", { partitions: 2 });
      expect(manager.partitionsTotal).toBe(5);
      await manager.addPartitionsAsync("a", 5);
      manager.addPartitions("b", 4);
      expect(manager.partitionsTotal).toBe(9);
      manager.deleteTopic("b");
      expect(manager.partitionsTotal).toBe(5);
    } finally {
      await manager.close();
    }
  });
});
