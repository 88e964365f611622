/**
 * Idempotent producer: the partition's producer table (retries answered with their original
 * offsets, gaps and fenced epochs refused), its rebuild after a clean stop and after a crash
 * (snapshot + header scan of the tail), and the broker's initProducer ids across restarts.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { RunnelError } from "../../src/errors.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { openLogManager } from "../../src/log/log-manager.ts";
import { PRODUCER_STATE_FILE, sequenceAfter } from "../../src/log/producer-state.ts";
import { readAllValues, tempDirsPerTest } from "../log/helpers.ts";
import { startTestBroker } from "../server/helpers.ts";
import { Producer } from "../../src/client/producer.ts";
import { configSchema } from "../../src/config.ts";
import { nativeStorage } from "../../src/log/storage.ts";
import { silentLogger } from "../../src/logger.ts";
import { ERRNO, SyscallError } from "../../src/native/libc.ts";
import { startBroker } from "../../src/server/broker.ts";

const newTempDir = tempDirsPerTest();


function idempotentBatch(producerId: number, producerEpoch: number, baseSequence: number, count: number, tag = "v"): Uint8Array {
  const records = Array.from({ length: count }, (_, index) => ({ value: `${tag}${baseSequence + index}` }));
  return encodeBatch(records, { nowMs: 1_000, producer: { producerId, producerEpoch, baseSequence } });
}

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return error instanceof RunnelError ? error.code : String(error);
  }
  return "no error";
}

async function openOne(dataDir: string, config: Record<string, number> = {}) {
  const manager = await openLogManager({ dataDir });
  if (!manager.hasTopic("t")) manager.createTopic("t", { partitions: 1, config });
  return { manager, partition: manager.partition("t", 0) };
}

describe("Idempotent producer state", () => {
  test("a retried batch is answered with its original offsets and is not stored twice", async () => {
    const { manager, partition } = await openOne(newTempDir("idem"));
    const first = partition.append(idempotentBatch(7, 0, 0, 3));
    partition.append(idempotentBatch(7, 0, 3, 2));
    const retry = partition.append(idempotentBatch(7, 0, 0, 3));
    expect(retry).toMatchObject({ baseOffset: first.baseOffset, lastOffset: first.lastOffset, duplicate: true });
    expect(partition.nextOffset).toBe(5);
    await manager.close();
  });

  test("a sequence gap, a reordering and an older epoch are refused without storing anything", async () => {
    const { manager, partition } = await openOne(newTempDir("idem"));
    partition.append(idempotentBatch(7, 1, 0, 2));
    expect(codeOf(() => partition.append(idempotentBatch(7, 1, 5, 1)))).toBe("OUT_OF_ORDER_SEQUENCE");
    expect(codeOf(() => partition.append(idempotentBatch(7, 1, 1, 1)))).toBe("OUT_OF_ORDER_SEQUENCE");
    expect(codeOf(() => partition.append(idempotentBatch(7, 0, 2, 1)))).toBe("INVALID_PRODUCER_EPOCH");
    expect(codeOf(() => partition.append(idempotentBatch(7, 2, 4, 1)))).toBe("OUT_OF_ORDER_SEQUENCE");
    expect(partition.append(idempotentBatch(7, 2, 0, 1)).baseOffset).toBe(2);
    expect(partition.nextOffset).toBe(3);
    await manager.close();
  });

  test("only the last five batches of a producer are recognised as retries", async () => {
    const { manager, partition } = await openOne(newTempDir("idem"));
    for (let sequence = 0; sequence < 6; sequence++) partition.append(idempotentBatch(1, 0, sequence, 1));
    expect(partition.append(idempotentBatch(1, 0, 1, 1)).duplicate).toBe(true);
    expect(codeOf(() => partition.append(idempotentBatch(1, 0, 0, 1)))).toBe("OUT_OF_ORDER_SEQUENCE");
    await manager.close();
  });

  test("sequences wrap from 2^31 - 1 to 0", async () => {
    const { manager, partition } = await openOne(newTempDir("idem"));
    const nearEnd = 2 ** 31 - 2;
    partition.append(encodeBatch([{ value: "a" }, { value: "b" }], { producer: { producerId: 3, producerEpoch: 0, baseSequence: nearEnd } }));
    expect(sequenceAfter(nearEnd, 2)).toBe(0);
    expect(partition.append(idempotentBatch(3, 0, 0, 1)).duplicate).toBeUndefined();
    await manager.close();
  });

  test("the table survives a clean restart through its snapshot", async () => {
    const dataDir = newTempDir("idem");
    let { manager, partition } = await openOne(dataDir);
    const original = partition.append(idempotentBatch(9, 0, 0, 4));
    await manager.close();
    expect(fs.existsSync(`${dataDir}/topics/t/0/${PRODUCER_STATE_FILE}`)).toBe(true);
    ({ manager, partition } = await openOne(dataDir));
    expect(partition.append(idempotentBatch(9, 0, 0, 4))).toMatchObject({ baseOffset: original.baseOffset, duplicate: true });
    expect(codeOf(() => partition.append(idempotentBatch(9, 0, 7, 1)))).toBe("OUT_OF_ORDER_SEQUENCE");
    expect(partition.append(idempotentBatch(9, 0, 4, 1)).baseOffset).toBe(4);
    await manager.close();
  });

  test("after a crash the table is rebuilt from the snapshot plus the headers after it", async () => {
    const live = newTempDir("idem-live");
    const { manager, partition } = await openOne(live);
    partition.append(idempotentBatch(1, 0, 0, 2, "a"));
    partition.flush(); // snapshot + recovery point at offset 2
    const tailA = partition.append(idempotentBatch(1, 0, 2, 2, "a"));
    const tailB = partition.append(idempotentBatch(2, 0, 0, 3, "b"));
    const copy = newTempDir("idem-crash");
    fs.cpSync(live, copy, { recursive: true }); // what a kill -9 leaves: no clean-shutdown marker
    await manager.close();
    const reopened = await openLogManager({ dataDir: copy });
    expect(reopened.recovery.clean).toBe(false);
    const crashed = reopened.partition("t", 0);
    expect(crashed.append(idempotentBatch(1, 0, 2, 2, "a"))).toMatchObject({ baseOffset: tailA.baseOffset, duplicate: true });
    expect(crashed.append(idempotentBatch(2, 0, 0, 3, "b"))).toMatchObject({ baseOffset: tailB.baseOffset, duplicate: true });
    expect(crashed.nextOffset).toBe(7);
    await reopened.close();
  });

  test("a torn idempotent batch is cut by recovery, so its retry is stored (once)", async () => {
    const live = newTempDir("idem-live");
    const { manager, partition } = await openOne(live);
    partition.append(idempotentBatch(1, 0, 0, 2));
    partition.flush();
    partition.append(idempotentBatch(1, 0, 2, 2));
    const copy = newTempDir("idem-crash");
    fs.cpSync(live, copy, { recursive: true });
    await manager.close();
    const logFile = `${copy}/topics/t/0/${"0".padStart(20, "0")}.log`;
    fs.truncateSync(logFile, fs.statSync(logFile).size - 5);
    const reopened = await openLogManager({ dataDir: copy });
    const crashed = reopened.partition("t", 0);
    expect(crashed.nextOffset).toBe(2);
    expect(crashed.append(idempotentBatch(1, 0, 2, 2)).duplicate).toBeUndefined();
    expect(crashed.append(idempotentBatch(1, 0, 2, 2)).duplicate).toBe(true);
    expect(readAllValues(crashed)).toEqual(["v0", "v1", "v2", "v3"]);
    await reopened.close();
  });

  test("an unusable snapshot is ignored with a warning and the whole log is scanned", async () => {
    const dataDir = newTempDir("idem");
    let { manager, partition } = await openOne(dataDir);
    partition.append(idempotentBatch(5, 0, 0, 1));
    await manager.close();
    fs.writeFileSync(`${dataDir}/topics/t/0/${PRODUCER_STATE_FILE}`, "{not json");
    ({ manager, partition } = await openOne(dataDir));
    expect(partition.append(idempotentBatch(5, 0, 0, 1)).duplicate).toBe(true);
    await manager.close();
  });

  test("the flush policy writes the snapshot in the background before the recovery point moves", async () => {
    const dataDir = newTempDir("idem");
    const { manager, partition } = await openOne(dataDir, { "flush.messages": 3 });
    partition.append(idempotentBatch(4, 0, 0, 3));
    const snapshotFile = `${dataDir}/topics/t/0/${PRODUCER_STATE_FILE}`;
    const deadline = Date.now() + 5_000;
    while (!fs.existsSync(snapshotFile) && Date.now() < deadline) await Bun.sleep(5);
    expect(JSON.parse(fs.readFileSync(snapshotFile, "utf8"))).toMatchObject({ offset: 3, producers: [[4, 0, [[0, 2, 0, 2]]]] });
    await manager.close();
  });
});

describe("initProducer and the client", () => {
  test("producer ids are never handed out twice, across a restart", async () => {
    const dataDir = newTempDir("idem-broker");
    const ids: number[] = [];
    for (let run = 0; run < 2; run++) {
      await using server = await startTestBroker({ dataDir });
      for (let index = 0; index < 3; index++) {
        const producer = new Producer({ broker: `127.0.0.1:${server.port}` });
        await producer.send("ids", { value: "x" });
        ids.push(producer.producerIdentity!.producerId);
        await producer.close();
      }
    }
    expect(new Set(ids).size).toBe(6);
  });

  test("a producer's batches carry its id and per-partition sequences, and the broker counts none as duplicate", async () => {
    await using server = await startTestBroker();
    const producer = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 0 });
    for (let index = 0; index < 20; index++) await producer.send("seq", { value: `m${index}`, partition: 0 });
    await producer.close();
    const partition = server.broker.context.log.partition("seq", 0);
    const slice = partition.read(0, 1 << 20)!;
    const bytes = partition.readBytes(slice);
    slice.release();
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    let position = 0;
    let expectedSequence = 0;
    while (position < bytes.length) {
      expect(view.getInt32(position + 53)).toBe(expectedSequence);
      expect(view.getInt16(position + 51)).toBe(producer.producerIdentity!.producerEpoch);
      expectedSequence += view.getInt32(position + 57);
      position += 12 + view.getInt32(position + 8);
    }
    expect(expectedSequence).toBe(20);
    expect(server.broker.stats.batchesDuplicate).toBe(0);
  });

  test("after a batch fails for good the producer bumps its epoch, restarts its sequences and loses nothing else", async () => {
    const dataDir = newTempDir("idem-bump");
    let full = false;
    const storage = {
      ...nativeStorage,
      pwrite(fd: number, bytes: Uint8Array, position: number): number {
        if (full && bytes.length > 200) throw new SyscallError("pwrite", ERRNO.ENOSPC, "ENOSPC");
        return nativeStorage.pwrite(fd, bytes, position);
      },
    };
    const broker = await startBroker({ config: configSchema.parse({ port: 0, dataDir, logLevel: "silent" }), logger: silentLogger(), storage });
    const producer = new Producer({ broker: `127.0.0.1:${broker.port}`, lingerMs: 0, deliveryTimeoutMs: 0 });
    try {
      await producer.send("bump", { value: "before", partition: 0 });
      const before = producer.producerIdentity!;
      full = true;
      const failure = await producer.send("bump", { value: "x".repeat(1000), partition: 0 }).catch((error: unknown) => error);
      expect((failure as RunnelError).code).toBe("STORAGE_FULL");
      full = false;
      const after = await producer.send("bump", { value: "after", partition: 0 });
      expect(producer.producerIdentity).toEqual({ producerId: before.producerId, producerEpoch: before.producerEpoch + 1 });
      expect(after.offset).toBe(1);
      const partition = broker.context.log.partition("bump", 0);
      const slice = partition.read(1, 1 << 20)!;
      const bytes = partition.readBytes(slice);
      slice.release();
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      expect({ epoch: view.getInt16(51), sequence: view.getInt32(53) }).toEqual({ epoch: before.producerEpoch + 1, sequence: 0 });
    } finally {
      await producer.close();
      await broker.stop();
    }
  });
});
