/**
 * deleteTopic on a full disk, and offsets left behind by a topic that vanished: deleting a topic
 * is how an operator frees space, so it must work when the offsets file cannot be rewritten for
 * lack of room; and committed offsets of a topic that no longer exists (a crash between the two
 * steps of such a delete) are forgotten at the next start.
 *
 * The full-disk test mounts a real 4 MiB tmpfs when the machine allows it (Linux, root, mount
 * permitted); otherwise it is skipped with the reason logged.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { startTestBroker, tempDir, TestClient } from "./helpers.ts";
import { mountTmpfs, unmountTmpfs } from "../support/tmpfs.ts";

const dirs: string[] = [];
const tmpfs = mountTmpfs(4, "offsets");
if ("reason" in tmpfs) console.log(`offsets full-disk test skipped: ${tmpfs.reason}`);
afterAll(() => {
  unmountTmpfs(tmpfs);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const NOTHING = { offset: -1, metadata: "" };

async function commit(client: TestClient, group: string, topic: string, offset: number): Promise<void> {
  const answer = await client.request({ op: "commitOffsets", group, offsets: [{ topic, partition: 0, offset }] });
  expect(answer.results).toEqual([{ topic, partition: 0 }]);
}

async function committed(client: TestClient, group: string, topic: string): Promise<unknown> {
  return (await client.request({ op: "fetchOffsets", group, partitions: [{ topic, partition: 0 }] })).offsets;
}

/** This process's open files under `dir` (from /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // closed between readdir and readlink
    }
  }
  return open;
}

/** Writes a filler file until the file system refuses more. */
function fillDisk(dir: string): void {
  const fd = fs.openSync(path.join(dir, "filler"), "w");
  const block = new Uint8Array(64 * 1024).fill(1);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    fs.closeSync(fd);
  }
}

describe("deleteTopic when the disk is full, and offsets of vanished topics", () => {
  test.skipIf("reason" in tmpfs)("a full disk does not stop deleteTopic: the data goes first, then the offsets in the room it made", async () => {
    const dataDir = path.join((tmpfs as { dir: string }).dir, "data");
    fs.mkdirSync(dataDir);
    await using broker = await startTestBroker({ dataDir, preallocateBytesMax: 0 });
    await using client = await TestClient.connect(broker.port);
    for (const topic of ["doomed", "kept"]) expect(await client.request({ op: "createTopic", topic, partitions: 1 })).not.toHaveProperty("error");
    const batch = encodeBatch(Array.from({ length: 64 }, (_, index) => ({ value: `${index}:`.padEnd(4_000, "x") })));
    for (let index = 0; index < 4; index++) {
      const produced = await client.request({ op: "produce", batches: [{ topic: "doomed", partition: 0, batch }] });
      expect(produced.results).toEqual([expect.objectContaining({ topic: "doomed", partition: 0 })]);
    }
    await commit(client, "g", "doomed", 100);
    await commit(client, "g", "kept", 7);
    fillDisk((tmpfs as { dir: string }).dir);

    expect(await client.request({ op: "deleteTopic", topic: "doomed" })).toEqual({ id: expect.any(Number) });
    expect(await committed(client, "g", "kept")).toEqual([{ topic: "kept", partition: 0, offset: 7, metadata: "" }]);
    expect(await client.request({ op: "createTopic", topic: "doomed", partitions: 1 })).not.toHaveProperty("error");
    expect(await committed(client, "g", "doomed")).toEqual([{ topic: "doomed", partition: 0, ...NOTHING }]);
    // Stopping on a full disk (index files cannot be written) still closes every file: a
    // segment fd used to outlive it, keeping the deleted data's space and the mount busy.
    await broker[Symbol.asyncDispose]();
    expect(openFilesUnder((tmpfs as { dir: string }).dir)).toEqual([]);
  });

  test("offsets of a topic that is gone when the broker starts are forgotten, others kept", async () => {
    const dataDir = tempDir("runnel-offsets-vanished-");
    dirs.push(dataDir);
    {
      await using broker = await startTestBroker({ dataDir });
      await using client = await TestClient.connect(broker.port);
      for (const topic of ["doomed", "kept"]) expect(await client.request({ op: "createTopic", topic, partitions: 1 })).not.toHaveProperty("error");
      await commit(client, "g", "doomed", 100);
      await commit(client, "g", "kept", 7);
    }
    // What a stop between "data deleted" and "offsets removed" leaves behind.
    fs.rmSync(path.join(dataDir, "topics", "doomed"), { recursive: true });
    await using broker = await startTestBroker({ dataDir });
    await using client = await TestClient.connect(broker.port);
    expect(await client.request({ op: "createTopic", topic: "doomed", partitions: 1 })).not.toHaveProperty("error");
    expect(await committed(client, "g", "doomed")).toEqual([{ topic: "doomed", partition: 0, ...NOTHING }]);
    expect(await committed(client, "g", "kept")).toEqual([{ topic: "kept", partition: 0, offset: 7, metadata: "" }]);
  });
});
