/**
 * Producer ids the broker issued, and only those: the allocator's counter across reopenings,
 * produce refusing ids it never issued (UNKNOWN_PRODUCER_ID) on both request decoders, ids
 * issued before a restart still accepted after it, and the reference client recovering from a
 * refusal with a fresh identity.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import * as fs from "node:fs";
import { Producer } from "../../src/client/producer.ts";
import { encodeBatch, type ProducerFields } from "../../src/format/record-batch.ts";
import { FastRequestDecoder } from "../../src/protocol/fast-requests.ts";
import { ID_BLOCK, ProducerIdAllocator } from "../../src/broker/producer-ids.ts";
import { type Message, startTestBroker, tempDir, TestClient } from "../server/helpers.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
function newDir(): string {
  const dir = tempDir("runnel-producer-ids-");
  dirs.push(dir);
  return dir;
}

const batchFrom = (producer: ProducerFields, value = "v") => encodeBatch([{ value }], { nowMs: 1_700_000_000_000, producer });
const idempotent = (producerId: number, baseSequence = 0) => batchFrom({ producerId, producerEpoch: 0, baseSequence });
const plain = (value = "plain") => encodeBatch([{ value }], { nowMs: 1_700_000_000_000 });
const resultsOf = (response: Message) => response.results as Message[];
const errorOf = (result: Message | undefined) => result?.error as Message | undefined;

async function nextOffsetOf(client: TestClient, topic: string): Promise<number> {
  const listed = await client.request({ op: "listOffsets", partitions: [{ topic, partition: 0, at: "latest" }] });
  return (listed.partitions as Message[])[0]?.offset as number;
}

async function initProducer(client: TestClient): Promise<number> {
  const identity = await client.request({ op: "initProducer" });
  return identity.producerId as number;
}

describe("ProducerIdAllocator.isIssued", () => {
  test("only ids below the next id count as issued, and after a reopening every id of the last block does", () => {
    const dataDir = newDir();
    const allocator = ProducerIdAllocator.open(dataDir);
    expect(allocator.isIssued(0)).toBe(false);
    expect(allocator.initialize({}).producerId).toBe(0);
    expect(allocator.initialize({}).producerId).toBe(1);
    expect([0, 1, 2, -1].map((id) => allocator.isIssued(id))).toEqual([true, true, false, false]);

    const reopened = ProducerIdAllocator.open(dataDir);
    expect([0, 1, ID_BLOCK - 1, ID_BLOCK].map((id) => reopened.isIssued(id))).toEqual([true, true, true, false]);
    expect(reopened.initialize({}).producerId).toBe(ID_BLOCK);
    expect(reopened.isIssued(ID_BLOCK)).toBe(true);
  });
});

describe("broker: produce accepts only producer ids it issued", () => {
  test("an invented producer id is refused with UNKNOWN_PRODUCER_ID and nothing of it is appended; the batch after it is", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "ids", partitions: 1 });
    const produced = await client.request({ op: "produce", batches: [{ topic: "ids", partition: 0, batch: idempotent(5) }, { topic: "ids", partition: 0, batch: plain() }] });
    const [refused, accepted] = resultsOf(produced);
    expect(errorOf(refused)).toMatchObject({ code: "UNKNOWN_PRODUCER_ID", details: { producerId: 5 } });
    expect(errorOf(refused)?.message as string).toContain("initProducer");
    expect(accepted).toEqual({ topic: "ids", partition: 0, baseOffset: 0, lastOffset: 0 });
    expect(await nextOffsetOf(client, "ids")).toBe(1);
    expect(server.broker.stats.batchesAppended).toBe(1);
  });

  test("the fast and the generic request decoders refuse an unissued id alike, and accept an issued one", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "paths", partitions: 1 });
    const issued = await initProducer(client);
    const unissued = issued + 1;
    const fastRequest = (batch: Uint8Array) => ({ op: "produce", batches: [{ topic: "paths", partition: 0, batch }] });
    // An unknown key makes the fast decoder give up: the generic path decodes the request.
    const genericRequest = (batch: Uint8Array) => ({ ...fastRequest(batch), traceId: "generic" });
    const decoder = new FastRequestDecoder();
    expect(decoder.decode(encode({ id: 1, ...fastRequest(idempotent(unissued)) }), 1 << 20)).not.toBeNull();
    expect(decoder.decode(encode({ id: 1, ...genericRequest(idempotent(unissued)) }), 1 << 20)).toBeNull();

    for (const request of [fastRequest, genericRequest]) {
      const [result] = resultsOf(await client.request(request(idempotent(unissued))));
      expect(errorOf(result)).toMatchObject({ code: "UNKNOWN_PRODUCER_ID", details: { producerId: unissued } });
    }
    expect(await nextOffsetOf(client, "paths")).toBe(0);
    expect(resultsOf(await client.request(fastRequest(idempotent(issued, 0))))).toEqual([{ topic: "paths", partition: 0, baseOffset: 0, lastOffset: 0 }]);
    expect(resultsOf(await client.request(genericRequest(idempotent(issued, 1))))).toEqual([{ topic: "paths", partition: 0, baseOffset: 1, lastOffset: 1 }]);
  });

  test("a damaged batch with an unissued id is CORRUPT_BATCH, as the log would answer", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    const batch = idempotent(42);
    batch[batch.length - 1] = (batch[batch.length - 1] ?? 0) ^ 0xff;
    const [result] = resultsOf(await client.request({ op: "produce", batches: [{ topic: "damaged", partition: 0, batch }] }));
    expect(errorOf(result)?.code).toBe("CORRUPT_BATCH");
  });

  test("batches without a producer id are not checked, on a broker that never issued one", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    const noProducer = batchFrom({ producerId: -1, producerEpoch: -1, baseSequence: -1 });
    const [result] = resultsOf(await client.request({ op: "produce", batches: [{ topic: "plain", partition: 0, batch: noProducer }] }));
    expect(result).toEqual({ topic: "plain", partition: 0, baseOffset: 0, lastOffset: 0 });
  });

  test("an id issued before a broker restart is still accepted after it, with its sequences remembered", async () => {
    const dataDir = newDir();
    let issued: number;
    {
      await using server = await startTestBroker({ dataDir });
      await using client = await TestClient.connect(server.port);
      await client.request({ op: "createTopic", topic: "kept", partitions: 1 });
      issued = await initProducer(client);
      expect(resultsOf(await client.request({ op: "produce", batches: [{ topic: "kept", partition: 0, batch: idempotent(issued, 0) }] }))[0]).toMatchObject({ baseOffset: 0 });
    }
    await using server = await startTestBroker({ dataDir });
    await using client = await TestClient.connect(server.port);
    const produced = await client.request({
      op: "produce",
      batches: [
        { topic: "kept", partition: 0, batch: idempotent(issued, 0) },
        { topic: "kept", partition: 0, batch: idempotent(issued, 1) },
        { topic: "kept", partition: 0, batch: idempotent(ID_BLOCK, 0) },
      ],
    });
    const [retry, next, beyond] = resultsOf(produced);
    expect(retry).toEqual({ topic: "kept", partition: 0, baseOffset: 0, lastOffset: 0 });
    expect(next).toEqual({ topic: "kept", partition: 0, baseOffset: 1, lastOffset: 1 });
    expect(errorOf(beyond)?.code).toBe("UNKNOWN_PRODUCER_ID");
    expect(server.broker.stats.batchesDuplicate).toBe(1);
    expect(await nextOffsetOf(client, "kept")).toBe(2);
  });

  test("the reference client, refused by a broker whose data directory was replaced, takes a new identity and resends: nothing lost, nothing twice", async () => {
    const first = await startTestBroker();
    let firstStopped = false;
    const port = first.port;
    const producer = new Producer({ broker: `127.0.0.1:${port}`, lingerMs: 0, retryBackoffMs: 10, deliveryTimeoutMs: 10_000 });
    try {
      {
        await using admin = await TestClient.connect(port);
        for (let index = 0; index < 3; index++) await initProducer(admin); // the producer gets id 3
      }
      await producer.send("moved", { value: "before", partition: 0 });
      const held = producer.producerIdentity;
      expect(held).toEqual({ producerId: 3, producerEpoch: 0 });
      firstStopped = true;
      await first[Symbol.asyncDispose]();
      // A fresh data dir on the same port: this broker never issued the id the producer holds.
      await using second = await startTestBroker({ port, dataDir: newDir() });
      const resent = await producer.send("moved", { value: "resent", partition: 0 });
      const after = await producer.send("moved", { value: "after", partition: 0 });
      expect(producer.producerIdentity).toEqual({ producerId: 0, producerEpoch: 0 });
      expect(producer.metrics.retries).toBeGreaterThanOrEqual(1);
      expect([resent.offset, after.offset]).toEqual([0, 1]);
      await using reader = await TestClient.connect(second.port);
      expect(await nextOffsetOf(reader, "moved")).toBe(2);
    } finally {
      await producer.close();
      if (!firstStopped) await first[Symbol.asyncDispose]();
    }
  });
});
