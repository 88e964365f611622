import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeRecords, encodeBatch, readBatchHeader, scanBatches } from "../../src/format/record-batch.ts";
import { libc } from "../../src/native/libc.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { GATHER_BYTES_MAX_DEFAULT } from "../../src/server/outbound.ts";
import { type Message, startTestBroker, TestClient, type TestBroker } from "./helpers.ts";

let server: TestBroker;
let client: TestClient;

beforeAll(async () => {
  server = await startTestBroker({ defaultPartitions: 2 });
  client = await TestClient.connect(server.port);
});
afterAll(async () => {
  await client[Symbol.asyncDispose]();
  await server[Symbol.asyncDispose]();
});

const text = new TextEncoder();
const batchOf = (...values: string[]) => encodeBatch(values.map((value) => ({ value })), { nowMs: 1_700_000_000_000 });

function recordsOf(response: Message): Array<{ partition: number; offset: number; value: string }> {
  const records = response.records as Uint8Array;
  const partitions = response.partitions as Array<{ partition: number; recordsBytes: number }>;
  const out: Array<{ partition: number; offset: number; value: string }> = [];
  let position = 0;
  for (const entry of partitions) {
    const own = records.subarray(position, position + entry.recordsBytes);
    position += entry.recordsBytes;
    for (const span of scanBatches(own)) {
      for (const record of decodeRecords(own.subarray(span.position, span.position + span.bytes))) {
        out.push({ partition: entry.partition, offset: record.offset, value: new TextDecoder().decode(record.value ?? new Uint8Array()) });
      }
    }
  }
  return out;
}

async function stats(): Promise<Message> {
  return client.request({ op: "stats" });
}

describe("broker: requests and answers", () => {
  test("hello negotiates version 1 and reports the limits", async () => {
    const response = await client.request({ op: "hello", versions: [1, 2] });
    expect(response).toMatchObject({ version: 1, limits: { frameBytesMax: 16 * 1024 * 1024, requestsInFlightMax: 256 } });
    const refused = await client.request({ op: "hello", versions: [9] });
    expect(refused.error).toMatchObject({ code: "UNSUPPORTED_VERSION", details: { versions: [1] } });
  });

  test("produce and fetch round trip across partitions, with offsets assigned per partition", async () => {
    expect((await client.request({ op: "createTopic", topic: "orders", partitions: 3 })).topic).toMatchObject({ name: "orders" });
    const produced = await client.request({
      op: "produce",
      durability: "written",
      batches: [
        { topic: "orders", partition: 0, batch: batchOf("a0", "a1") },
        { topic: "orders", partition: 2, batch: batchOf("c0") },
        { topic: "orders", partition: 0, batch: batchOf("a2") },
      ],
    });
    expect(produced.results).toEqual([
      { topic: "orders", partition: 0, baseOffset: 0, lastOffset: 1 },
      { topic: "orders", partition: 2, baseOffset: 0, lastOffset: 0 },
      { topic: "orders", partition: 0, baseOffset: 2, lastOffset: 2 },
    ]);
    const fetched = await client.request({
      op: "fetch",
      partitions: [0, 1, 2].map((partition) => ({ topic: "orders", partition, offset: 0 })),
    });
    expect((fetched.partitions as Message[]).map((entry) => [entry.partition, entry.logStartOffset, entry.nextOffset])).toEqual([[0, 0, 3], [1, 0, 0], [2, 0, 1]]);
    expect(recordsOf(fetched)).toEqual([
      { partition: 0, offset: 0, value: "a0" },
      { partition: 0, offset: 1, value: "a1" },
      { partition: 0, offset: 2, value: "a2" },
      { partition: 2, offset: 0, value: "c0" },
    ]);
    const metadata = await client.request({ op: "metadata", topics: ["orders", "nope"] });
    expect(metadata.topics).toEqual([
      { name: "orders", partitions: [{ partition: 0, logStartOffset: 0, nextOffset: 3 }, { partition: 1, logStartOffset: 0, nextOffset: 0 }, { partition: 2, logStartOffset: 0, nextOffset: 1 }] },
      { name: "nope", error: expect.objectContaining({ code: "UNKNOWN_TOPIC" }) },
    ]);
  });

  test("a produce auto-creates a missing topic with the default partition count", async () => {
    const produced = await client.request({ op: "produce", batches: [{ topic: "auto", partition: 1, batch: batchOf("x") }] });
    expect(produced.results).toEqual([{ topic: "auto", partition: 1, baseOffset: 0, lastOffset: 0 }]);
    expect(((await client.request({ op: "describeTopic", topic: "auto" })).topic as Message).partitions).toHaveLength(2);
  });

  test("a synced produce answers after the sync; durability none gets no answer but keeps later answers in order", async () => {
    const synced = await client.request({ op: "produce", durability: "synced", batches: [{ topic: "orders", partition: 1, batch: batchOf("s") }] });
    expect(synced.results).toEqual([{ topic: "orders", partition: 1, baseOffset: 0, lastOffset: 0 }]);
    client.send({ op: "produce", durability: "none", batches: [{ topic: "orders", partition: 1, batch: batchOf("n") }] });
    const after = await client.request({ op: "listOffsets", partitions: [{ topic: "orders", partition: 1, at: "latest" }] });
    expect(after.partitions).toEqual([{ topic: "orders", partition: 1, offset: 2 }]);
  });

  test("a corrupt batch is refused per batch and the others still land", async () => {
    const bad = batchOf("bad");
    bad[bad.length - 1] = (bad.at(-1) ?? 0) ^ 0xff;
    const produced = await client.request({ op: "produce", batches: [{ topic: "orders", partition: 1, batch: bad }, { topic: "orders", partition: 1, batch: batchOf("good") }] });
    const results = produced.results as Message[];
    expect((results[0]?.error as Message).code).toBe("CORRUPT_BATCH");
    expect(results[1]).toMatchObject({ baseOffset: 2 });
  });

  test("an offset out of range is an entry error carrying the log start and next offsets", async () => {
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "orders", partition: 0, offset: 99 }] });
    expect(fetched.partitions).toEqual([
      {
        topic: "orders",
        partition: 0,
        logStartOffset: 0,
        nextOffset: 3,
        recordsBytes: 0,
        error: expect.objectContaining({ code: "OFFSET_OUT_OF_RANGE", details: expect.objectContaining({ logStartOffset: 0, nextOffset: 3 }) }),
      },
    ]);
  });

  test("unknown topics and partitions are errors, and bad names are INVALID_TOPIC_NAME", async () => {
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "ghost", partition: 0, offset: 0 }, { topic: "orders", partition: 7, offset: 0 }] });
    expect((fetched.partitions as Message[]).map((entry) => (entry.error as Message).code)).toEqual(["UNKNOWN_TOPIC", "UNKNOWN_PARTITION"]);
    expect(((await client.request({ op: "describeTopic", topic: "ghost" })).error as Message).code).toBe("UNKNOWN_TOPIC");
    expect(((await client.request({ op: "createTopic", topic: "bad/name", partitions: 1 })).error as Message).code).toBe("INVALID_TOPIC_NAME");
    expect(((await client.request({ op: "createTopic", topic: "..", partitions: 1 })).error as Message).code).toBe("INVALID_TOPIC_NAME");
    const produced = await client.request({ op: "produce", batches: [{ topic: "has space", partition: 0, batch: batchOf("x") }] });
    expect(((produced.results as Message[])[0]?.error as Message).code).toBe("INVALID_TOPIC_NAME");
    expect(((await client.request({ op: "createTopic", topic: "orders", partitions: 1 })).error as Message).code).toBe("TOPIC_EXISTS");
    expect(((await client.request({ op: "createTopic", topic: "big", partitions: 5000 })).error as Message).code).toBe("INVALID_PARTITIONS");
  });

  test("bad requests get an error answer naming the field, and the connection lives on", async () => {
    expect(await client.request({ op: "teleport" })).toMatchObject({ error: { code: "UNKNOWN_OPERATION" } });
    const missing = await client.request({ op: "fetch", partitions: [{ topic: "orders", partition: 0 }] });
    expect(missing.error).toMatchObject({ code: "INVALID_REQUEST", message: expect.stringMatching(/^partitions\[0\]\.offset:/) });
    client.writeRaw(encodeFrame(new Uint8Array([0x93, 1, 2, 3])));
    expect(await client.next()).toMatchObject({ id: null, error: { code: "INVALID_REQUEST" } });
    client.writeRaw(encodeFrame(new Uint8Array(0)));
    expect(await client.next()).toMatchObject({ id: null, error: { code: "INVALID_REQUEST" } });
    // Trailing bytes after a readable id: the answer still carries the id.
    client.writeRaw(encodeFrame(new Uint8Array([0x81, 0xa2, 0x69, 0x64, 0x05, 0xff])));
    expect(await client.next()).toMatchObject({ id: 5, error: { code: "INVALID_REQUEST" } });
    expect((await client.request({ op: "hello", versions: [1] })).version).toBe(1);
  });

  test("topic admin: describe, add partitions, alter config, delete", async () => {
    await client.request({ op: "createTopic", topic: "admin", partitions: 1, config: { "retention.ms": 1000 } });
    const grown = await client.request({ op: "createPartitions", topic: "admin", partitions: 3 });
    expect(((grown.topic as Message).partitions as Message[]).length).toBe(3);
    expect(((await client.request({ op: "createPartitions", topic: "admin", partitions: 2 })).error as Message).code).toBe("INVALID_PARTITIONS");
    const altered = await client.request({ op: "alterTopicConfig", topic: "admin", config: { "retention.ms": 5000 } });
    expect(((altered.topic as Message).config as Message)["retention.ms"]).toBe(5000);
    expect(((await client.request({ op: "alterTopicConfig", topic: "admin", config: { "segment.bytes": 1 } })).error as Message).code).toBe("INVALID_CONFIG");
    expect(await client.request({ op: "deleteTopic", topic: "admin" })).toEqual({ id: expect.any(Number) });
    expect(((await client.request({ op: "describeTopic", topic: "admin" })).error as Message).code).toBe("UNKNOWN_TOPIC");
  });

  test("listOffsets resolves earliest, latest and timestamps", async () => {
    await client.request({ op: "createTopic", topic: "times", partitions: 1 });
    for (const nowMs of [1000, 2000, 3000]) {
      await client.request({ op: "produce", batches: [{ topic: "times", partition: 0, batch: encodeBatch([{ value: "v" }], { nowMs }) }] });
    }
    const listed = await client.request({
      op: "listOffsets",
      partitions: ["earliest", "latest", 1500, 3000, 9999].map((at) => ({ topic: "times", partition: 0, at })),
    });
    expect((listed.partitions as Message[]).map((entry) => entry.offset)).toEqual([0, 3, 1, 2, 3]);
  });

  test("consumer-group offsets commit and fetch", async () => {
    const committed = await client.request({ op: "commitOffsets", group: "g1", offsets: [{ topic: "orders", partition: 0, offset: 2, metadata: "m" }, { topic: "ghost", partition: 0, offset: 1 }] });
    expect(committed.results).toEqual([{ topic: "orders", partition: 0 }, { topic: "ghost", partition: 0, error: expect.objectContaining({ code: "UNKNOWN_TOPIC" }) }]);
    const fetched = await client.request({ op: "fetchOffsets", group: "g1", partitions: [{ topic: "orders", partition: 0 }, { topic: "orders", partition: 1 }] });
    expect(fetched.offsets).toEqual([
      { topic: "orders", partition: 0, offset: 2, metadata: "m" },
      { topic: "orders", partition: 1, offset: -1, metadata: "" },
    ]);
    expect((await client.request({ op: "fetchOffsets", group: "g1" })).offsets).toEqual([{ topic: "orders", partition: 0, offset: 2, metadata: "m" }]);
  });
});

describe("broker: long poll and ordering", () => {
  test("a long-poll fetch wakes when a produce appends to its partition", async () => {
    await client.request({ op: "createTopic", topic: "poll", partitions: 1 });
    const waitingId = client.send({ op: "fetch", partitions: [{ topic: "poll", partition: 0, offset: 0 }], maxWaitMs: 20_000, minBytes: 1 });
    await using producer = await TestClient.connect(server.port);
    // Wait until the fetch is parked, then produce from another connection.
    for (;;) {
      const state = await producer.request({ op: "stats" });
      if (state.fetchesWaiting === 1) break;
    }
    await producer.request({ op: "produce", batches: [{ topic: "poll", partition: 0, batch: batchOf("wake") }] });
    const fetched = await client.next();
    expect(fetched.id).toBe(waitingId);
    expect(recordsOf(fetched)).toEqual([{ partition: 0, offset: 0, value: "wake" }]);
  });

  test("a long-poll fetch with nothing arriving answers empty when maxWaitMs passes", async () => {
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "poll", partition: 0, offset: 1 }], maxWaitMs: 30, minBytes: 1 });
    expect(fetched.partitions).toEqual([{ topic: "poll", partition: 0, logStartOffset: 0, nextOffset: 1, recordsBytes: 0 }]);
    expect((fetched.records as Uint8Array).length).toBe(0);
  });

  test("pipelined requests are answered in request order even when an earlier one finishes last", async () => {
    const ids = [
      client.send({ op: "fetch", partitions: [{ topic: "poll", partition: 0, offset: 1 }], maxWaitMs: 20_000 }),
      client.send({ op: "stats" }),
      client.send({ op: "produce", durability: "synced", batches: [{ topic: "orders", partition: 2, batch: batchOf("p") }] }),
      client.send({ op: "metadata", topics: ["poll"] }),
      client.send({ op: "produce", durability: "none", batches: [{ topic: "poll", partition: 0, batch: batchOf("late") }] }),
      client.send({ op: "teleport" }),
      client.send({ op: "hello", versions: [1] }),
    ];
    const answered: unknown[] = [];
    for (let index = 0; index < 6; index++) answered.push((await client.next()).id);
    expect(answered).toEqual([ids[0], ids[1], ids[2], ids[3], ids[5], ids[6]]);
  });
});

describe("broker: send paths", () => {
  test("a small fetch answer goes out in one write with its head: its records are counted as gathered", async () => {
    await client.request({ op: "createTopic", topic: "gathered", partitions: 1 });
    const batch = encodeBatch(Array.from({ length: 50 }, (_, i) => ({ value: text.encode(`value-${i}`.repeat(20)) })), { nowMs: 5 });
    await client.request({ op: "produce", batches: [{ topic: "gathered", partition: 0, batch }] });
    const before = await stats();
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "gathered", partition: 0, offset: 0 }] });
    const after = await stats();
    expect((fetched.records as Uint8Array).length).toBe(batch.length);
    expect(decodeRecords(fetched.records as Uint8Array).map((record) => new TextDecoder().decode(record.value!))).toEqual(Array.from({ length: 50 }, (_, i) => `value-${i}`.repeat(20)));
    const counted = (name: string): number => (after[name] as number) - (before[name] as number);
    expect(counted("bytesSentGathered")).toBe(batch.length);
    expect(counted("bytesSentSendfile") + counted("bytesSentCopy") + counted("bytesSentProbe")).toBe(0);
  });

  test("fetched records over the gather bound go out through sendfile on Linux, counted by the broker", async () => {
    if (libc.sendfile === null) return; // not Linux / native off: the copy-path test covers it
    await client.request({ op: "createTopic", topic: "zc", partitions: 1 });
    // Over GATHER_BYTES_MAX_DEFAULT (server/outbound.ts): a range that keeps zero copy.
    const batch = encodeBatch(Array.from({ length: 50 }, (_, i) => ({ value: text.encode(`value-${i}`.repeat(400)) })), { nowMs: 5 });
    expect(batch.length).toBeGreaterThan(GATHER_BYTES_MAX_DEFAULT);
    await client.request({ op: "produce", batches: [{ topic: "zc", partition: 0, batch }] });
    const before = await stats();
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "zc", partition: 0, offset: 0 }] });
    const after = await stats();
    const recordsBytes = (fetched.records as Uint8Array).length;
    expect(recordsBytes).toBe(batch.length);
    const viaSendfile = (after.bytesSentSendfile as number) - (before.bytesSentSendfile as number);
    const viaCopy = (after.bytesSentCopy as number) - (before.bytesSentCopy as number);
    const viaProbe = (after.bytesSentProbe as number) - (before.bytesSentProbe as number);
    expect(viaCopy).toBe(0);
    expect(viaSendfile + viaProbe).toBe(recordsBytes);
    expect(viaSendfile).toBeGreaterThan(recordsBytes / 2);
    expect(readBatchHeader(fetched.records as Uint8Array).baseOffset).toBe(0);
  });
});
