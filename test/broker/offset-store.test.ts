/**
 * The offset store on its own, over real files in a temp dir: torn-tail recovery (a file whose
 * last record is cut short or corrupted is read up to the last whole record, and cut there),
 * removal of a topic's offsets (durable, atomic, ordered with commits), and compaction. Faults
 * come through the Storage seam, without mocks.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { RunnelError } from "../../src/errors.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { ERRNO, SyscallError } from "../../src/native/libc.ts";
import { type OffsetCommit, OffsetStore } from "../../src/broker/offset-store.ts";
import { tempDir } from "../server/helpers.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = tempDir("runnel-offset-store-");
  dirs.push(dir);
  return dir;
}

const ENTRIES_MAX = 100_000;

function open(dataDir: string, storage?: Storage): OffsetStore {
  return OffsetStore.open(dataDir, storage === undefined ? { entriesMax: ENTRIES_MAX } : { entriesMax: ENTRIES_MAX, storage });
}

function fileOf(dataDir: string): string {
  return path.join(dataDir, "consumer-offsets", "offsets.log");
}

function entry(topic: string, partition: number, offset: number, metadata = ""): OffsetCommit {
  return { topic, partition, offset, metadata };
}

/** Every committed offset of the groups, sorted, as `group/topic/partition=offset`. */
function contents(store: OffsetStore, groups: string[]): string[] {
  return groups.flatMap((group) => store.fetchAll(group).map((row) => `${group}/${row.topic}/${row.partition}=${row.offset}`)).sort();
}

/** Reopens the store over the same directory and lists what it replayed. */
async function reopened(dataDir: string, groups: string[]): Promise<string[]> {
  const store = open(dataDir);
  try {
    return contents(store, groups);
  } finally {
    await store.close();
  }
}

/** Three commits, one record each; returns the file's size after each. */
async function writeThreeRecords(dataDir: string): Promise<number[]> {
  const store = open(dataDir);
  const sizes: number[] = [];
  for (const [index, group] of ["a", "b", "c"].entries()) {
    await store.commit(group, [entry("t", 0, 10 + index, "meta")]);
    sizes.push(fs.statSync(fileOf(dataDir)).size);
  }
  await store.close();
  return sizes;
}

describe("OffsetStore: torn-tail recovery", () => {
  /** Where to cut the file, from the sizes after each of the three records. */
  const cuts: Array<[string, (sizes: [number, number, number]) => number]> = [
    ["one byte short", ([, , third]) => third - 1],
    ["inside the payload", ([, , third]) => third - 6],
    ["inside the record head", ([, second]) => second + 3],
  ];
  for (const [where, cutAt] of cuts) {
    test(`a last record cut short ${where} is dropped and the file cut at the last whole record`, async () => {
      const dataDir = newDir();
      const sizes = (await writeThreeRecords(dataDir)) as [number, number, number];
      fs.truncateSync(fileOf(dataDir), cutAt(sizes));
      expect(await reopened(dataDir, ["a", "b", "c"])).toEqual(["a/t/0=10", "b/t/0=11"]);
      expect(fs.statSync(fileOf(dataDir)).size).toBe(sizes[1]);
    });
  }

  test("a last record whose payload is corrupted (CRC mismatch) is dropped", async () => {
    const dataDir = newDir();
    const [, second, third] = (await writeThreeRecords(dataDir)) as [number, number, number];
    const bytes = fs.readFileSync(fileOf(dataDir));
    const flipAt = third - 2;
    bytes[flipAt] = (bytes[flipAt] as number) ^ 0xff;
    fs.writeFileSync(fileOf(dataDir), bytes);
    expect(await reopened(dataDir, ["a", "b", "c"])).toEqual(["a/t/0=10", "b/t/0=11"]);
    expect(fs.statSync(fileOf(dataDir)).size).toBe(second);
  });

  test("a last record whose length field claims more than the file holds is dropped", async () => {
    const dataDir = newDir();
    const [, second] = (await writeThreeRecords(dataDir)) as [number, number, number];
    const bytes = fs.readFileSync(fileOf(dataDir));
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(second, 0xffff_fff0);
    fs.writeFileSync(fileOf(dataDir), bytes);
    expect(await reopened(dataDir, ["a", "b", "c"])).toEqual(["a/t/0=10", "b/t/0=11"]);
    expect(fs.statSync(fileOf(dataDir)).size).toBe(second);
  });

  test("a record with a valid CRC but not an offsets record ends the replay there", async () => {
    const dataDir = newDir();
    const [, , third] = (await writeThreeRecords(dataDir)) as [number, number, number];
    const payload = new Uint8Array([0x2a]); // msgpack 42: not [group, rows]
    const record = new Uint8Array(8 + payload.length);
    const view = new DataView(record.buffer);
    view.setUint32(0, payload.length);
    view.setUint32(4, Bun.hash.crc32(payload) >>> 0);
    record.set(payload, 8);
    fs.appendFileSync(fileOf(dataDir), record);
    expect(await reopened(dataDir, ["a", "b", "c"])).toEqual(["a/t/0=10", "b/t/0=11", "c/t/0=12"]);
    expect(fs.statSync(fileOf(dataDir)).size).toBe(third);
  });

  test("commits after a cut tail are appended at the cut and survive the next reopen", async () => {
    const dataDir = newDir();
    const [, , third] = (await writeThreeRecords(dataDir)) as [number, number, number];
    fs.appendFileSync(fileOf(dataDir), new Uint8Array([0, 0, 0, 9, 1, 2])); // a torn head + 2 bytes
    const store = open(dataDir);
    expect(fs.statSync(fileOf(dataDir)).size).toBe(third);
    await store.commit("d", [entry("t", 1, 99)]);
    await store.close();
    expect(await reopened(dataDir, ["a", "b", "c", "d"])).toEqual(["a/t/0=10", "b/t/0=11", "c/t/0=12", "d/t/1=99"]);
  });

  test("an empty or missing file opens as a store with nothing committed", async () => {
    const dataDir = newDir();
    expect(await reopened(dataDir, ["a"])).toEqual([]);
    expect(fs.statSync(fileOf(dataDir)).size).toBe(0);
    expect(await reopened(dataDir, ["a"])).toEqual([]);
  });
});

/** Two groups over two topics, committed and on disk. */
async function seeded(dataDir: string, storage?: Storage): Promise<OffsetStore> {
  const store = open(dataDir, storage);
  await store.commit("g1", [entry("doomed", 0, 5), entry("doomed", 1, 6), entry("kept", 0, 7, "k")]);
  await store.commit("g2", [entry("doomed", 0, 8)]);
  await store.commit("g3", [entry("kept", 1, 9)]);
  return store;
}

const AFTER_REMOVAL = ["g1/kept/0=7", "g3/kept/1=9"];
const BEFORE_REMOVAL = ["g1/doomed/0=5", "g1/doomed/1=6", "g1/kept/0=7", "g2/doomed/0=8", "g3/kept/1=9"];
const GROUPS = ["g1", "g2", "g3"];

describe("OffsetStore: removeTopic", () => {
  test("forgets the topic's offsets in every group and keeps other topics' and groups'", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    expect(store.size).toBe(5);
    await store.removeTopic("doomed");
    expect(contents(store, GROUPS)).toEqual(AFTER_REMOVAL);
    expect(store.fetch("g1", "doomed", 0)).toBeNull();
    expect(store.fetch("g1", "kept", 0)).toEqual({ offset: 7, metadata: "k" });
    expect(store.size).toBe(2);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(AFTER_REMOVAL);
  });

  test("runs the callback after the offsets are gone, and commits to the topic work again afterwards", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    let seenDuring: string[] = [];
    await store.removeTopic("doomed", () => {
      seenDuring = contents(store, GROUPS);
    });
    expect(seenDuring).toEqual(AFTER_REMOVAL);
    await store.commit("g2", [entry("doomed", 0, 1)]);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(["g1/kept/0=7", "g2/doomed/0=1", "g3/kept/1=9"]);
  });

  test("removes commits queued before it too, and refuses commits naming the topic while it runs", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    const before = store.commit("g4", [entry("doomed", 3, 30)]);
    const removal = store.removeTopic("doomed");
    expect(store.isTopicBeingRemoved("doomed")).toBe(true);
    expect(store.isTopicBeingRemoved("kept")).toBe(false);
    const refused = expect(store.commit("g4", [entry("kept", 0, 1), entry("doomed", 0, 31)])).rejects.toMatchObject({ code: "UNKNOWN_TOPIC" });
    const again = expect(store.removeTopic("doomed")).rejects.toMatchObject({ code: "UNKNOWN_TOPIC" });
    const other = store.commit("g4", [entry("kept", 2, 40)]);
    await Promise.all([before, removal, other, refused, again]);
    expect(store.isTopicBeingRemoved("doomed")).toBe(false);
    const groups = [...GROUPS, "g4"];
    expect(contents(store, groups)).toEqual([...AFTER_REMOVAL, "g4/kept/2=40"]);
    await store.close();
    expect(await reopened(dataDir, groups)).toEqual([...AFTER_REMOVAL, "g4/kept/2=40"]);
  });

  test("a topic with nothing committed leaves the file untouched and still runs the callback", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    const inode = fs.statSync(fileOf(dataDir)).ino;
    let ran = false;
    await store.removeTopic("never-committed", () => {
      ran = true;
    });
    expect(ran).toBe(true);
    expect(fs.statSync(fileOf(dataDir)).ino).toBe(inode);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(BEFORE_REMOVAL);
  });

  test("an error of the callback rejects the removal, which stays done", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    const failure = new RunnelError("STORAGE_ERROR", "log deletion failed");
    await expect(
      store.removeTopic("doomed", () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(AFTER_REMOVAL);
  });

  test("removing every offset leaves an empty file that reopens empty", async () => {
    const dataDir = newDir();
    const store = open(dataDir);
    await store.commit("g", [entry("only", 0, 1)]);
    await store.removeTopic("only");
    expect(store.size).toBe(0);
    await store.close();
    expect(fs.statSync(fileOf(dataDir)).size).toBe(0);
    expect(await reopened(dataDir, ["g"])).toEqual([]);
  });

  test("is refused once the store is closed", async () => {
    const store = open(newDir());
    await store.close();
    await expect(store.removeTopic("t")).rejects.toMatchObject({ code: "SHUTTING_DOWN" });
  });
});

/** nativeStorage with one call replaced. */
function faulty(overrides: Partial<Storage>): Storage {
  return { ...nativeStorage, ...overrides };
}

const eio = (syscall: string) => new SyscallError(syscall, ERRNO.EIO, "EIO");

describe("OffsetStore: removeTopic when the disk fails (old state or new, never a mix)", () => {
  test("a failed fdatasync of the new file keeps every offset, in memory and on disk, and appends go on", async () => {
    const dataDir = newDir();
    let failSync = false;
    const storage = faulty({
      fdatasyncAsync: (fd) => (failSync ? Promise.reject(eio("fdatasync")) : nativeStorage.fdatasyncAsync(fd)),
    });
    const store = await seeded(dataDir, storage);
    failSync = true;
    let ran = false;
    await expect(
      store.removeTopic("doomed", () => {
        ran = true;
      }),
    ).rejects.toMatchObject({ code: "STORAGE_ERROR" });
    failSync = false;
    expect(ran).toBe(false);
    expect(store.isTopicBeingRemoved("doomed")).toBe(false);
    expect(contents(store, GROUPS)).toEqual(BEFORE_REMOVAL);
    expect(fs.existsSync(`${fileOf(dataDir)}.tmp`)).toBe(false);
    await store.commit("g3", [entry("kept", 1, 10)]);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual([...BEFORE_REMOVAL.slice(0, 4), "g3/kept/1=10"]);
  });

  test("a failed rename keeps every offset, in memory and on disk", async () => {
    const dataDir = newDir();
    const storage = faulty({
      rename: () => {
        throw eio("rename");
      },
    });
    const store = await seeded(dataDir, storage);
    await expect(store.removeTopic("doomed")).rejects.toMatchObject({ code: "STORAGE_ERROR" });
    expect(contents(store, GROUPS)).toEqual(BEFORE_REMOVAL);
    await store.commit("g3", [entry("kept", 1, 10)]);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual([...BEFORE_REMOVAL.slice(0, 4), "g3/kept/1=10"]);
  });

  test("a failed directory fsync after the rename reports the error, yet memory and later appends follow the new file", async () => {
    const dataDir = newDir();
    const storage = faulty({
      fsyncDirectory: () => {
        throw eio("fsync");
      },
    });
    const store = await seeded(dataDir, storage);
    await expect(store.removeTopic("doomed")).rejects.toMatchObject({ code: "STORAGE_ERROR" });
    expect(contents(store, GROUPS)).toEqual(AFTER_REMOVAL);
    await store.commit("g3", [entry("kept", 1, 10)]);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(["g1/kept/0=7", "g3/kept/1=10"]);
  });

  test("a half-written temp file left by a crash before the rename is ignored and removed on open", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    await store.close();
    fs.writeFileSync(`${fileOf(dataDir)}.tmp`, new Uint8Array(5000).fill(7));
    expect(await reopened(dataDir, GROUPS)).toEqual(BEFORE_REMOVAL);
    expect(fs.existsSync(`${fileOf(dataDir)}.tmp`)).toBe(false);
    const again = open(dataDir);
    await again.removeTopic("doomed");
    await again.close();
    expect(fs.existsSync(`${fileOf(dataDir)}.tmp`)).toBe(false);
    expect(await reopened(dataDir, GROUPS)).toEqual(AFTER_REMOVAL);
  });
});

describe("OffsetStore: compaction", () => {
  test("a file past four times its live size (and 1 MiB) is rewritten as a snapshot holding the latest offsets", async () => {
    const dataDir = newDir();
    const store = open(dataDir);
    const metadata = "m".repeat(1_000);
    const commits: Promise<void>[] = [];
    for (let index = 0; index < 1_200; index++) commits.push(store.commit(`g${index % 2}`, [entry("t", index % 3, index, metadata)]));
    await Promise.all(commits);
    await store.commit("g0", [entry("t", 9, 1)]); // lets the compaction after the big batch finish first
    const size = fs.statSync(fileOf(dataDir)).size;
    expect(size).toBeLessThan(100_000);
    const expected = ["g0/t/0=1194", "g0/t/1=1198", "g0/t/2=1196", "g0/t/9=1", "g1/t/0=1197", "g1/t/1=1195", "g1/t/2=1199"];
    expect(contents(store, ["g0", "g1"])).toEqual(expected);
    await store.close();
    expect(await reopened(dataDir, ["g0", "g1"])).toEqual(expected);
  });
});

describe("OffsetStore: removeGroup", () => {
  test("forgets one group's offsets durably, keeps the others', and lets the group commit afresh", async () => {
    const dataDir = newDir();
    const store = await seeded(dataDir);
    expect(store.committedGroups().sort()).toEqual(GROUPS);
    await store.removeGroup("g1");
    expect(contents(store, GROUPS)).toEqual(["g2/doomed/0=8", "g3/kept/1=9"]);
    expect(store.size).toBe(2);
    expect(store.committedGroups().sort()).toEqual(["g2", "g3"]);
    await store.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(["g2/doomed/0=8", "g3/kept/1=9"]);
    const again = open(dataDir);
    await again.removeGroup("never-committed");
    await again.commit("g1", [entry("kept", 0, 1)]);
    await again.close();
    expect(await reopened(dataDir, GROUPS)).toEqual(["g1/kept/0=1", "g2/doomed/0=8", "g3/kept/1=9"]);
  });
});
