/**
 * Disk full and I/O errors, through a real broker.
 *
 * - A real 8 MiB tmpfs (mounted by the test when the machine allows it: Linux, root, mount
 *   permitted; otherwise that test is skipped with the reason logged) holds the data directory:
 *   filling it gives producers STORAGE_FULL naming ENOSPC, acknowledged data stays readable and
 *   intact, and producing resumes without a restart once retention or a topic deletion frees space.
 * - The storage fault seam (LogManagerOptions.storage via BrokerOptions.storage) injects EIO on
 *   fdatasync and on pwrite: the batch is answered STORAGE_ERROR (never success), the partition
 *   answers PARTITION_FAILED from then on (logged at error level), other partitions keep
 *   working, and a restart recovers it with every acknowledged batch.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Producer } from "../../src/client/producer.ts";
import { configSchema } from "../../src/config.ts";
import { RunnelError } from "../../src/errors.ts";
import { decodeRecords, encodeBatch, scanBatches, verifyBatch } from "../../src/format/record-batch.ts";
import { nativeStorage, type Storage } from "../../src/log/storage.ts";
import { createLogger, silentLogger } from "../../src/logger.ts";
import { ERRNO, SyscallError } from "../../src/native/libc.ts";
import { type Broker, startBroker } from "../../src/server/broker.ts";
import { type Message, startTestBroker, TestClient } from "../server/helpers.ts";
import { waitFor } from "./broker-process.ts";
import { mountTmpfs, unmountTmpfs } from "../support/tmpfs.ts";

const decoder = new TextDecoder();
const temporaryDirs: string[] = [];
function newDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `runnel-${label}-`));
  temporaryDirs.push(dir);
  return dir;
}

const tmpfs = mountTmpfs(8, "disk-full");
if ("reason" in tmpfs) console.log(`disk-full tmpfs test skipped: ${tmpfs.reason}`);
afterAll(() => {
  unmountTmpfs(tmpfs);
  for (const dir of temporaryDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function batchOf(tag: string, count: number, valueBytes: number): Uint8Array {
  return encodeBatch(Array.from({ length: count }, (_, index) => ({ value: `${tag}:${index}:`.padEnd(valueBytes, "x") })));
}

async function produce(client: TestClient, topic: string, batch: Uint8Array, durability = "synced"): Promise<Message> {
  const response = await client.request({ op: "produce", durability, batches: [{ topic, partition: 0, batch }] });
  return (response.results as Message[])[0]!;
}

/** Every value of a partition, read through fetch, each batch verified. */
async function readAll(client: TestClient, topic: string, partition = 0): Promise<string[]> {
  const values: string[] = [];
  let offset = 0;
  for (;;) {
    const response = await client.request({ op: "fetch", partitions: [{ topic, partition, offset, maxBytes: 1 << 20 }], maxBytes: 1 << 20 });
    const entry = (response.partitions as Message[])[0]!;
    if (entry.error !== undefined) throw new Error(`fetch ${topic}: ${JSON.stringify(entry.error)}`);
    const records = response.records as Uint8Array;
    if (records.length === 0) return values;
    for (const span of scanBatches(records)) {
      const bytes = records.subarray(span.position, span.position + span.bytes);
      for (const record of decodeRecords(bytes, verifyBatch(bytes))) if (record.offset >= offset) values.push(decoder.decode(record.value!));
      offset = span.header.baseOffset + span.header.recordCount;
    }
  }
}

/** Produces 256 KiB batches to `topic` until the disk is full; returns the STORAGE_FULL error. */
async function fillDisk(client: TestClient, topic: string): Promise<Message> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const result = await produce(client, topic, batchOf(`${topic}${attempt}`, 4, 64 * 1024), "written");
    if (result.error !== undefined) return result.error as Message;
  }
  throw new Error("the 8 MiB tmpfs never filled");
}

describe("Disk full (real tmpfs)", () => {
  test.skipIf("reason" in tmpfs)("producers get STORAGE_FULL, nothing acknowledged is lost, reads go on, and producing resumes once space is freed", async () => {
    const dataDir = (tmpfs as { dir: string }).dir;
    await using server = await startTestBroker({ dataDir, retentionCheckIntervalMs: 100 });
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "keep", partitions: 1 });
    await client.request({ op: "createTopic", topic: "ballast", partitions: 1, config: { "segment.bytes": 512 * 1024 } });
    const acknowledged: string[] = [];
    for (let index = 0; index < 10; index++) {
      const result = await produce(client, "keep", batchOf(`keep${index}`, 5, 1000));
      expect(result.error).toBeUndefined();
      for (let record = 0; record < 5; record++) acknowledged.push(`keep${index}:${record}:`.padEnd(1000, "x"));
    }

    const full = await fillDisk(client, "ballast");
    expect(full.code).toBe("STORAGE_FULL");
    expect(String(full.message)).toContain("ENOSPC");
    // The client library surfaces the same code (retriable, so it gives up only at its deadline).
    const producer = new Producer({ broker: `127.0.0.1:${server.port}`, deliveryTimeoutMs: 0 });
    const failure = await producer.send("keep", { value: "x".repeat(300_000), partition: 0 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RunnelError);
    expect((failure as RunnelError).code).toBe("STORAGE_FULL");
    expect((failure as RunnelError).message).toContain("ENOSPC");

    // Consumers keep reading, and what was acknowledged is intact.
    expect(await readAll(client, "keep")).toEqual(acknowledged);
    expect((await readAll(client, "ballast")).length).toBeGreaterThan(0);

    // Retention frees space: producing resumes without a restart.
    await client.request({ op: "alterTopicConfig", topic: "ballast", config: { "retention.bytes": 512 * 1024 } });
    await waitFor(async () => (await produce(client, "keep", batchOf("after-retention", 2, 100_000))).error === undefined, 10_000, "produce to succeed after retention");
    acknowledged.push(...[0, 1].map((index) => `after-retention:${index}:`.padEnd(100_000, "x")));

    // Fill again, then delete the topic: producing resumes at once.
    await client.request({ op: "alterTopicConfig", topic: "ballast", config: { "retention.bytes": -1 } });
    expect((await fillDisk(client, "ballast")).code).toBe("STORAGE_FULL");
    await client.request({ op: "deleteTopic", topic: "ballast" });
    const resumed = await produce(client, "keep", batchOf("after-delete", 2, 100_000));
    expect(resumed.error).toBeUndefined();
    acknowledged.push(...[0, 1].map((index) => `after-delete:${index}:`.padEnd(100_000, "x")));
    expect(await readAll(client, "keep")).toEqual(acknowledged);
    await producer.close();
  });
});

/** Native storage with switches for EIO on fdatasync and on pwrite. */
function eioStorage(): Storage & { failSyncs: boolean; failWrites: boolean } {
  const storage = {
    ...nativeStorage,
    failSyncs: false,
    failWrites: false,
    pwrite(fd: number, bytes: Uint8Array, position: number): number {
      if (storage.failWrites) throw new SyscallError("pwrite", ERRNO.EIO, "EIO");
      return nativeStorage.pwrite(fd, bytes, position);
    },
    fdatasync(fd: number): void {
      if (storage.failSyncs) throw new SyscallError("fdatasync", ERRNO.EIO, "EIO");
      nativeStorage.fdatasync(fd);
    },
    fdatasyncAsync(fd: number): Promise<void> {
      if (storage.failSyncs) return Promise.reject(new SyscallError("fdatasync", ERRNO.EIO, "EIO"));
      return nativeStorage.fdatasyncAsync(fd);
    },
  };
  return storage;
}

async function brokerWith(dataDir: string, storage: Storage | undefined, lines: string[]): Promise<Broker> {
  const config = configSchema.parse({ port: 0, dataDir, logLevel: "info" });
  const logger = storage === undefined ? silentLogger() : createLogger("info", { write: (line: string) => void lines.push(line) });
  return startBroker({ config, logger, ...(storage === undefined ? {} : { storage }) });
}

describe("I/O errors through the broker (fault seam)", () => {
  test("an EIO on fdatasync or pwrite is never acknowledged: the partition fails loudly, others go on, a restart recovers it", async () => {
    const dataDir = newDir("eio");
    const storage = eioStorage();
    const lines: string[] = [];
    const broker = await brokerWith(dataDir, storage, lines);
    const client = await TestClient.connect(broker.port);
    await client.request({ op: "createTopic", topic: "sync", partitions: 1 });
    await client.request({ op: "createTopic", topic: "write", partitions: 1 });
    await client.request({ op: "createTopic", topic: "other", partitions: 1 });
    expect((await produce(client, "sync", batchOf("s-ok", 3, 50))).error).toBeUndefined();
    expect((await produce(client, "write", batchOf("w-ok", 3, 50), "written")).error).toBeUndefined();

    storage.failSyncs = true;
    const syncFailed = await produce(client, "sync", batchOf("s-lost", 3, 50));
    storage.failSyncs = false;
    expect((syncFailed.error as Message).code).toBe("STORAGE_ERROR");
    expect(String((syncFailed.error as Message).message)).toContain("EIO");

    storage.failWrites = true;
    const writeFailed = await produce(client, "write", batchOf("w-lost", 3, 50), "written");
    storage.failWrites = false;
    expect((writeFailed.error as Message).code).toBe("STORAGE_ERROR");

    for (const topic of ["sync", "write"]) {
      expect(((await produce(client, topic, batchOf("after", 1, 10), "written")).error as Message).code).toBe("PARTITION_FAILED");
      const fetched = await client.request({ op: "fetch", partitions: [{ topic, partition: 0, offset: 0 }] });
      expect(((fetched.partitions as Message[])[0]!.error as Message).code).toBe("PARTITION_FAILED");
    }
    expect((await produce(client, "other", batchOf("o", 2, 10))).error).toBeUndefined();
    const failedLines = lines.map((line) => JSON.parse(line) as Message).filter((line) => line.level === 50 && String(line.msg).includes("partition marked failed"));
    expect(failedLines.map((line) => line.topic).sort()).toEqual(["sync", "write"]);
    await client[Symbol.asyncDispose]();
    await broker.stop();

    const restarted = await brokerWith(dataDir, undefined, []);
    const again = await TestClient.connect(restarted.port);
    try {
      const syncValues = await readAll(again, "sync");
      expect(syncValues.slice(0, 3)).toEqual([0, 1, 2].map((index) => `s-ok:${index}:`.padEnd(50, "x")));
      expect(await readAll(again, "write")).toEqual([0, 1, 2].map((index) => `w-ok:${index}:`.padEnd(50, "x")));
      expect((await produce(again, "sync", batchOf("s-new", 1, 10))).error).toBeUndefined();
      expect((await produce(again, "write", batchOf("w-new", 1, 10))).error).toBeUndefined();
    } finally {
      await again[Symbol.asyncDispose]();
      await restarted.stop();
    }
  });
});
