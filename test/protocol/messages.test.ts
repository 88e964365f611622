import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { RunnelError } from "../../src/errors.ts";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame.ts";
import {
  createRequestDecoder,
  encodeErrorFrame,
  encodeFetchResponseHead,
  encodeResponseFrame,
  parseRequest,
  readCorrelationId,
  WIRE_LIMITS,
} from "../../src/protocol/messages.ts";
import { peekRequestId, scanMsgpack } from "../../src/protocol/msgpack-scan.ts";
import { prng } from "../support/prng.ts";
import { array, encodeTree, int, str, type Tree } from "./msgpack-tree.ts";

const decodeRequest = createRequestDecoder(1 << 20);

function codeOf(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    return error instanceof RunnelError ? error.code : `not a RunnelError: ${String(error)}`;
  }
}

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return "";
}

describe("request decoder", () => {
  test("decodes a produce request with its batch as a view into the frame (no copy)", () => {
    const body = encode({ id: 7, op: "produce", batches: [{ topic: "t", partition: 0, batch: new Uint8Array([1, 2, 3]) }] });
    const value = decodeRequest(body) as { batches: Array<{ batch: Uint8Array }> };
    const batch = value.batches[0]?.batch as Uint8Array;
    expect([...batch]).toEqual([1, 2, 3]);
    expect(batch.buffer).toBe(body.buffer);
  });

  test("every truncated prefix of a request is INVALID_REQUEST", () => {
    const body = encode({ id: 1, op: "fetch", partitions: [{ topic: "orders", partition: 3, offset: 12345678901 }], maxWaitMs: 100 });
    for (let cut = 0; cut < body.length; cut++) expect(codeOf(() => decodeRequest(body.subarray(0, cut)))).toBe("INVALID_REQUEST");
    expect(codeOf(() => decodeRequest(body))).toBeNull();
  });

  test("trailing bytes after the value are INVALID_REQUEST", () => {
    expect(codeOf(() => decodeRequest(new Uint8Array([0x80, 0xc0])))).toBe("INVALID_REQUEST");
  });

  test("a container claiming more elements than bytes left is rejected before allocation", () => {
    // array32 of 4 billion elements in a 5-byte body
    expect(messageOf(() => decodeRequest(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])))).toContain("claims");
    expect(codeOf(() => decodeRequest(new Uint8Array([0xdf, 0x7f, 0xff, 0xff, 0xff])))).toBe("INVALID_REQUEST");
  });

  test("nesting deeper than the limit is rejected", () => {
    const deep = new Uint8Array(WIRE_LIMITS.depthMax + 1).fill(0x91);
    const body = new Uint8Array([...deep, 0xc0]);
    expect(messageOf(() => decodeRequest(body))).toContain("nesting deeper");
    const ok = new Uint8Array([...new Uint8Array(WIRE_LIMITS.depthMax - 1).fill(0x91), 0xc0]);
    expect(codeOf(() => scanMsgpack(ok, WIRE_LIMITS))).toBeNull();
  });

  test("more values than itemsMax are rejected", () => {
    const count = WIRE_LIMITS.itemsMax + 1;
    const body = new Uint8Array(5 + count);
    body.set([0xdd, (count >>> 24) & 0xff, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff]);
    expect(messageOf(() => decodeRequest(body))).toContain("more than");
  });

  test("ext types and the unused byte 0xc1 are rejected", () => {
    expect(codeOf(() => decodeRequest(new Uint8Array([0xd4, 0x01, 0x00])))).toBe("INVALID_REQUEST");
    expect(codeOf(() => decodeRequest(new Uint8Array([0xc1])))).toBe("INVALID_REQUEST");
  });

  test("a float is refused even when whole: every number in the protocol is an integer", () => {
    const whole = encode({ id: 1, op: "fetch", maxWaitMs: 5 }, { forceIntegerToFloat: true });
    expect(messageOf(() => decodeRequest(whole))).toContain("a float at byte");
    const float32 = new Uint8Array([0x81, 0xa1, 0x78, 0xca, 0x40, 0xa0, 0x00, 0x00]); // {x: 5.0f}
    expect(codeOf(() => decodeRequest(float32))).toBe("INVALID_REQUEST");
    expect(codeOf(() => decodeRequest(encode({ id: 1, op: "fetch", maxWaitMs: 5 })))).toBeNull();
  });

  test("a str over the limit is rejected by the decoder's explicit limit", () => {
    const body = encode({ id: 1, op: "x".repeat(WIRE_LIMITS.strBytesMax + 1) });
    expect(codeOf(() => decodeRequest(body))).toBe("INVALID_REQUEST");
  });

  test("a bin over the frame limit cannot be decoded", () => {
    const small = createRequestDecoder(1024);
    expect(codeOf(() => small(encode({ id: 1, op: "produce", b: new Uint8Array(1025) })))).toBe("INVALID_REQUEST");
  });

  test("the __proto__ key is refused", () => {
    // {"__proto__": 1}
    const body = new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01]);
    expect(codeOf(() => decodeRequest(body))).toBe("INVALID_REQUEST");
  });
});

describe("request schemas", () => {
  test("a valid produce parses with durability defaulting to written", () => {
    const request = parseRequest("produce", { batches: [{ topic: "t", partition: 0, batch: new Uint8Array(3) }] });
    expect(request.durability).toBe("written");
  });

  test("a bad field is INVALID_REQUEST naming the field path", () => {
    const message = messageOf(() => parseRequest("produce", { durability: "written", batches: [{ topic: "t", partition: -1, batch: new Uint8Array(3) }] }));
    expect(message).toStartWith("batches[0].partition:");
    expect(messageOf(() => parseRequest("fetch", { partitions: [{ topic: "t", partition: 0, offset: "0" }] }))).toStartWith("partitions[0].offset:");
    expect(messageOf(() => parseRequest("produce", { durability: "sometimes", batches: [] }))).toStartWith("durability:");
  });

  test("fetch fills defaults for maxBytes, maxWaitMs and minBytes", () => {
    const request = parseRequest("fetch", { partitions: [{ topic: "t", partition: 0, offset: 0 }] });
    expect(request).toMatchObject({ maxBytes: 1024 * 1024, maxWaitMs: 0, minBytes: 1 });
  });

  test("listOffsets accepts earliest, latest and a timestamp, nothing else", () => {
    for (const at of ["earliest", "latest", 1_700_000_000_000]) {
      expect(codeOf(() => parseRequest("listOffsets", { partitions: [{ topic: "t", partition: 0, at }] }))).toBeNull();
    }
    expect(codeOf(() => parseRequest("listOffsets", { partitions: [{ topic: "t", partition: 0, at: "middle" }] }))).toBe("INVALID_REQUEST");
  });

  test("group names are short non-empty strings", () => {
    expect(codeOf(() => parseRequest("fetchOffsets", { group: "" }))).toBe("INVALID_REQUEST");
    expect(codeOf(() => parseRequest("fetchOffsets", { group: "g".repeat(256) }))).toBe("INVALID_REQUEST");
    expect(codeOf(() => parseRequest("fetchOffsets", { group: "g".repeat(255) }))).toBeNull();
  });

  test("over-limit arrays are rejected", () => {
    const partitions = Array.from({ length: WIRE_LIMITS.partitionsPerRequestMax + 1 }, (_, partition) => ({ topic: "t", partition, offset: 0 }));
    expect(codeOf(() => parseRequest("fetch", { partitions }))).toBe("INVALID_REQUEST");
  });

  test("readCorrelationId accepts only a uint32 id in a map", () => {
    expect(readCorrelationId({ id: 5 })).toBe(5);
    expect(readCorrelationId({ id: -1 })).toBeNull();
    expect(readCorrelationId({ id: 2 ** 32 })).toBeNull();
    expect(readCorrelationId([1])).toBeNull();
    expect(readCorrelationId(null)).toBeNull();
  });
});

/** A random value of any kind, floats included, nested at most `depth` deep. */
function randomValue(random: () => number, depth: number): Tree {
  const kind = Math.floor(random() * (depth > 0 ? 7 : 5));
  if (kind === 0) return int(Math.floor(random() * 2 ** 40) - 2 ** 39);
  if (kind === 1) return { kind: "float", value: random() * 1000 };
  if (kind === 2) return str("v".repeat(Math.floor(random() * 40)));
  if (kind === 3) return { kind: "nil" };
  if (kind === 4) return { kind: "bin", bytes: new Uint8Array(Math.floor(random() * 300)) };
  if (kind === 5) return array(Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1)));
  return { kind: "map", entries: Array.from({ length: Math.floor(random() * 4) }, (_, index): [Tree, Tree] => [str(`k${index}`), randomValue(random, depth - 1)]) };
}

describe("peekRequestId (the id of a request the decoder refused)", () => {
  test("finds the id among random entries, floats and nesting included, in any integer encoding (seeded)", () => {
    const random = prng(15);
    for (let round = 0; round < 2_000; round++) {
      const id = random() < 0.8 ? Math.floor(random() * 2 ** 32) : pick(random, [-1, -200, 2 ** 32, 2 ** 40]);
      const entries: Array<[Tree, Tree]> = Array.from({ length: Math.floor(random() * 6) }, (_, index) => [str(`key${index}`), randomValue(random, 3)]);
      entries.splice(Math.floor(random() * (entries.length + 1)), 0, [str("id"), int(id)]);
      const body = encodeTree({ kind: "map", entries }, random);
      expect(peekRequestId(body, WIRE_LIMITS)).toBe(id >= 0 && id < 2 ** 32 ? id : null);
    }
  });

  test("agrees with the decoder wherever the decoder accepts the body", () => {
    for (const value of [{ id: 3, op: "x" }, { op: "x", id: 4_000_000_000 }, { id: "3" }, { id: null }, { ID: 3 }, [3], 3]) {
      const body = encode(value);
      expect(peekRequestId(body, WIRE_LIMITS)).toBe(readCorrelationId(decodeRequest(body)));
    }
  });

  test("gives null for a float id, a body that is not a map, or entries too broken to walk past", () => {
    expect(peekRequestId(encode({ id: 1.5 }), WIRE_LIMITS)).toBeNull();
    expect(peekRequestId(new Uint8Array([0x92, 0x01, 0x02]), WIRE_LIMITS)).toBeNull();
    expect(peekRequestId(new Uint8Array(0), WIRE_LIMITS)).toBeNull();
    // A str claiming more bytes than follow, before the id.
    expect(peekRequestId(new Uint8Array([0x82, 0xa1, 0x78, 0xdb, 0xff, 0xff, 0xff, 0xff, 0xa2, 0x69, 0x64, 0x05]), WIRE_LIMITS)).toBeNull();
    // Nesting past depthMax before the id.
    const deep = [0x82, 0xa1, 0x78, ...new Array<number>(WIRE_LIMITS.depthMax + 1).fill(0x91), 0x00, 0xa2, 0x69, 0x64, 0x05];
    expect(peekRequestId(new Uint8Array(deep), WIRE_LIMITS)).toBeNull();
  });
});

function pick<T>(random: () => number, choices: readonly T[]): T {
  return choices[Math.floor(random() * choices.length)] as T;
}

describe("response encoders", () => {
  test("an error frame is {id, error: {code, message, details}} (fixed bytes)", () => {
    const frame = encodeErrorFrame(3, new RunnelError("UNKNOWN_TOPIC", "no"));
    const expected = encode({ id: 3, error: { code: "UNKNOWN_TOPIC", message: "no" } });
    expect([...frame.subarray(0, 4)]).toEqual([0, 0, 0, expected.length]);
    expect([...frame.subarray(4)]).toEqual([...expected]);
    expect(decode(encodeErrorFrame(null, new RunnelError("OFFSET_OUT_OF_RANGE", "x", { details: { logStartOffset: 0, nextOffset: 9 } })).subarray(4))).toEqual({
      id: null,
      error: { code: "OFFSET_OUT_OF_RANGE", message: "x", details: { logStartOffset: 0, nextOffset: 9 } },
    });
  });

  test("encodeResponseFrame copies out of the encoder's shared buffer", () => {
    const first = encodeResponseFrame({ id: 1, a: "first" });
    encodeResponseFrame({ id: 2, a: "second!" });
    expect(decode(first.subarray(4))).toEqual({ id: 1, a: "first" });
  });

  test("the fetch head plus its records is one valid msgpack map with records last (fixed bytes)", () => {
    const records = new Uint8Array([9, 8, 7]);
    const partitions = [{ topic: "t", partition: 0, logStartOffset: 0, nextOffset: 1, recordsBytes: 3 }];
    const head = encodeFetchResponseHead(1, partitions, records.length);
    const frame = new Uint8Array([...head, ...records]);
    const length = new DataView(frame.buffer).getUint32(0);
    expect(length).toBe(frame.length - FRAME_HEADER_BYTES);
    expect(frame[4]).toBe(0x83);
    // ... "records" (fixstr 7) then bin32 of 3 bytes
    expect([...head.subarray(head.length - 13)]).toEqual([0xa7, 0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x73, 0xc6, 0, 0, 0, 3]);
    const decoded = decode(frame.subarray(4)) as Record<string, unknown>;
    expect(Object.keys(decoded)).toEqual(["id", "partitions", "records"]);
    expect(decoded).toEqual({ id: 1, partitions, records });
  });

  test("an empty fetch still ends with a zero-length bin32", () => {
    const head = encodeFetchResponseHead(2, [], 0);
    expect(decode(head.subarray(4))).toEqual({ id: 2, partitions: [], records: new Uint8Array(0) });
  });
});
