import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Encoder } from "@msgpack/msgpack";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { type Message, startTestBroker, TestClient, type TestBroker } from "./helpers.ts";

// produce and fetch are read by the fast decoder when well-formed and by the generic path
// otherwise (src/server/dispatch.ts); these requests cross from one path to the other.

let server: TestBroker;
let client: TestClient;

beforeAll(async () => {
  server = await startTestBroker({});
  client = await TestClient.connect(server.port);
});
afterAll(async () => {
  await client[Symbol.asyncDispose]();
  await server[Symbol.asyncDispose]();
});

const batchOf = (value: string) => encodeBatch([{ value }], { nowMs: 1_700_000_000_000 });
const BATCH_BYTES = batchOf("a").length;
const errorOf = (response: Message) => response.error as Message;

describe("broker: produce and fetch on both decoding paths", () => {
  test("a plain produce and fetch (the fast path) append and read back", async () => {
    const produced = await client.request({ op: "produce", batches: [{ topic: "paths", partition: 0, batch: batchOf("a") }] });
    expect(produced.results).toEqual([{ topic: "paths", partition: 0, baseOffset: 0, lastOffset: 0 }]);
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "paths", partition: 0, offset: 0 }] });
    expect(fetched.partitions).toEqual([{ topic: "paths", partition: 0, logStartOffset: 0, nextOffset: 1, recordsBytes: BATCH_BYTES }]);
  });

  test("requests the fast path leaves to the generic one: unknown keys still work, floats are refused", async () => {
    const produced = await client.request({ op: "produce", batches: [{ topic: "paths", partition: 0, batch: batchOf("b") }], traceId: "x" });
    expect(produced.results).toEqual([{ topic: "paths", partition: 0, baseOffset: 1, lastOffset: 1 }]);
    // docs/protocol.md: every number is a msgpack integer; a float is refused even when whole.
    const body = new Encoder({ forceIntegerToFloat: true }).encode({ id: 77, op: "fetch", partitions: [{ topic: "paths", partition: 0, offset: 1 }] });
    client.writeRaw(encodeFrame(body));
    const refused = await client.next();
    expect(errorOf(refused).code).toBe("INVALID_REQUEST");
    expect(errorOf(refused).message as string).toContain("float");
    const fetched = await client.request({ op: "fetch", partitions: [{ topic: "paths", partition: 0, offset: 1 }] });
    expect(fetched.partitions).toEqual([{ topic: "paths", partition: 0, logStartOffset: 0, nextOffset: 2, recordsBytes: BATCH_BYTES }]);
  });

  test("malformed produce and fetch requests get INVALID_REQUEST naming the field, and the connection lives on", async () => {
    const cases: Array<[Message, RegExp]> = [
      [{ op: "produce", batches: [] }, /^batches:/],
      [{ op: "produce", batches: [{ topic: "paths", partition: -1, batch: batchOf("x") }] }, /^batches\[0\]\.partition:/],
      [{ op: "produce", batches: [{ topic: 7, partition: 0, batch: batchOf("x") }] }, /^batches\[0\]\.topic:/],
      [{ op: "produce", durability: "eventually", batches: [{ topic: "paths", partition: 0, batch: batchOf("x") }] }, /^durability:/],
      [{ op: "produce", batches: [{ topic: "paths", partition: 0, batch: "not bytes" }] }, /^batches\[0\]\.batch:/],
      [{ op: "fetch", partitions: [{ topic: "paths", partition: 0, offset: -1 }] }, /^partitions\[0\]\.offset:/],
      [{ op: "fetch", partitions: [{ topic: "paths", partition: 0, offset: 0 }], maxWaitMs: -1 }, /^maxWaitMs:/],
      [{ op: "fetch", partitions: [{ topic: "paths", partition: 0, offset: 0, maxBytes: 0 }] }, /^partitions\[0\]\.maxBytes:/],
    ];
    for (const [request, field] of cases) {
      const error = errorOf(await client.request(request));
      expect(error.code).toBe("INVALID_REQUEST");
      expect(error.message as string).toMatch(field);
    }
    expect((await client.request({ op: "hello", versions: [1] })).version).toBe(1);
  });

  test("a produce to an invalid topic name is that batch's error, as on the generic path", async () => {
    const produced = await client.request({ op: "produce", batches: [{ topic: "bad/name", partition: 0, batch: batchOf("x") }, { topic: "paths", partition: 0, batch: batchOf("y") }] });
    const results = produced.results as Message[];
    expect(errorOf(results[0] as Message).code).toBe("INVALID_TOPIC_NAME");
    expect(results[1]).toEqual({ topic: "paths", partition: 0, baseOffset: 2, lastOffset: 2 });
  });
});
