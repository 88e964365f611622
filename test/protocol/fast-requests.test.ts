import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import fc from "fast-check";
import { RunnelError } from "../../src/errors.ts";
import { FastRequestDecoder } from "../../src/protocol/fast-requests.ts";
import { createRequestDecoder, isOperation, parseRequest, readCorrelationId } from "../../src/protocol/messages.ts";
import { prng } from "../support/prng.ts";
import { array, bin, encodeTree, int, map, mutateTree, str, type Tree } from "./msgpack-tree.ts";

const FRAME_BYTES_MAX = 1 << 20;
const genericDecode = createRequestDecoder(FRAME_BYTES_MAX);
const fast = new FastRequestDecoder();

type Outcome = { op: string; id: number; request: unknown } | { code: string; message: string };

/** What dispatch's generic path makes of a body: the request, or the error it answers. */
function generic(body: Uint8Array): Outcome {
  try {
    const value = genericDecode(body);
    const id = readCorrelationId(value);
    if (id === null) throw new RunnelError("INVALID_REQUEST", "id");
    const op = (value as { op?: unknown }).op;
    if (typeof op !== "string") throw new RunnelError("INVALID_REQUEST", "op");
    if (!isOperation(op)) throw new RunnelError("UNKNOWN_OPERATION", op);
    return { op, id, request: parseRequest(op, value) };
  } catch (error) {
    if (!(error instanceof RunnelError)) throw error;
    return { code: error.code, message: error.message };
  }
}

/** The fast decoder agrees with the generic path: it accepts only what that accepts, as the same value. */
function expectAgreement(body: Uint8Array): "fast" | "generic" {
  const accepted = fast.decode(body, FRAME_BYTES_MAX);
  if (accepted === null) return "generic";
  expect(generic(body)).toEqual(accepted);
  return "fast";
}

const topicText = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/),
  fc.constantFrom("x".repeat(255), "has space", "bad/name", ".."),
);
const batchBytes = fc.uint8Array({ maxLength: 40 });

const produceTree = fc
  .record({
    id: fc.nat({ max: 2 ** 32 - 1 }),
    durability: fc.option(fc.constantFrom("none", "written", "synced"), { nil: undefined }),
    batches: fc.array(fc.record({ topic: topicText, partition: fc.nat({ max: 9_999 }), batch: batchBytes }), { minLength: 1, maxLength: 5 }),
  })
  .map(({ id, durability, batches }): Tree => {
    const fields: Record<string, Tree> = { id: int(id), op: str("produce") };
    if (durability !== undefined) fields.durability = str(durability);
    fields.batches = array(batches.map((entry) => map({ topic: str(entry.topic), partition: int(entry.partition), batch: bin(entry.batch) })));
    return map(fields);
  });

const optionalInt = (min: number, max: number) => fc.option(fc.integer({ min, max }), { nil: undefined });

const fetchTree = fc
  .record({
    id: fc.nat({ max: 2 ** 32 - 1 }),
    partitions: fc.array(
      fc.record({ topic: topicText, partition: fc.nat({ max: 9_999 }), offset: fc.maxSafeNat(), maxBytes: optionalInt(1, 2 ** 40) }),
      { minLength: 1, maxLength: 5 },
    ),
    maxBytes: optionalInt(1, 2 ** 40),
    maxWaitMs: optionalInt(0, 300_000),
    minBytes: optionalInt(0, 2 ** 40),
  })
  .map(({ id, partitions, maxBytes, maxWaitMs, minBytes }): Tree => {
    const fields: Record<string, Tree> = { id: int(id), op: str("fetch") };
    fields.partitions = array(
      partitions.map((entry) => {
        const partition: Record<string, Tree> = { topic: str(entry.topic), partition: int(entry.partition), offset: int(entry.offset) };
        if (entry.maxBytes !== undefined) partition.maxBytes = int(entry.maxBytes);
        return map(partition);
      }),
    );
    if (maxBytes !== undefined) fields.maxBytes = int(maxBytes);
    if (maxWaitMs !== undefined) fields.maxWaitMs = int(maxWaitMs);
    if (minBytes !== undefined) fields.minBytes = int(minBytes);
    return map(fields);
  });

/** Shuffles the keys of every map (key order is free on the wire). */
function shuffleKeys(tree: Tree, random: () => number): Tree {
  if (tree.kind === "array") return { kind: "array", items: tree.items.map((item) => shuffleKeys(item, random)) };
  if (tree.kind !== "map") return tree;
  const entries = tree.entries.map(([key, value]): [Tree, Tree] => [key, shuffleKeys(value, random)]);
  for (let index = entries.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [entries[index], entries[other]] = [entries[other] as [Tree, Tree], entries[index] as [Tree, Tree]];
  }
  return { kind: "map", entries };
}

describe("fast request decoder", () => {
  test("decodes produce and fetch requests to the same value as the generic path, in the shortest encoding", () => {
    fc.assert(
      fc.property(fc.oneof(produceTree, fetchTree), (tree) => {
        expect(expectAgreement(encodeTree(tree, null))).toBe("fast");
      }),
      { numRuns: 500, seed: 1 },
    );
  });

  test("decodes any integer, string, map and array encoding and any key order to the same value", () => {
    fc.assert(
      fc.property(fc.oneof(produceTree, fetchTree), fc.nat(), (tree, seed) => {
        const random = prng(seed);
        expect(expectAgreement(encodeTree(shuffleKeys(tree, random), random))).toBe("fast");
      }),
      { numRuns: 500, seed: 2 },
    );
  });

  test("reads every integer encoding of every value as the generic decoder does (negative, 32-bit, 64-bit, unsafe)", () => {
    const edges = [-(2 ** 53), -(2 ** 31) - 1, -(2 ** 31), -(2 ** 15), -129, -33, -1, 0, 127, 255, 9_999, 65_535, 300_000, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60];
    const value = fc.oneof(fc.constantFrom(...edges), fc.integer({ min: -(2 ** 31), max: 2 ** 32 }), fc.maxSafeInteger());
    fc.assert(
      fc.property(value, value, value, fc.nat(), (id, partition, offset, seed) => {
        const tree = map({ id: int(id), op: str("fetch"), partitions: array([map({ topic: str("t"), partition: int(partition), offset: int(offset) })]) });
        expectAgreement(encodeTree(tree, prng(seed)));
      }),
      { numRuns: 3_000, seed: 5 },
    );
  });

  test("on random invalid envelopes it never accepts what the generic path refuses, nor decodes differently", () => {
    let generics = 0;
    fc.assert(
      fc.property(fc.oneof(produceTree, fetchTree), fc.nat(), fc.integer({ min: 1, max: 3 }), (tree, seed, mutations) => {
        const random = prng(seed);
        let mutated = tree;
        for (let round = 0; round < mutations; round++) mutated = mutateTree(mutated, random);
        if (expectAgreement(encodeTree(mutated, random)) === "generic") generics++;
      }),
      { numRuns: 3_000, seed: 3 },
    );
    // The mutations mostly make requests the fast path must leave to the generic one.
    expect(generics).toBeGreaterThan(1_500);
  });

  test("on random byte flips, truncations and trailing bytes it agrees with the generic path", () => {
    fc.assert(
      fc.property(fc.oneof(produceTree, fetchTree), fc.nat(), (tree, seed) => {
        const random = prng(seed);
        const body = encodeTree(tree, random);
        const roll = random();
        if (roll < 0.4) {
          const flipped = body.slice();
          for (let flip = 0; flip < 1 + Math.floor(random() * 3); flip++) flipped[Math.floor(random() * flipped.length)] = Math.floor(random() * 256);
          expectAgreement(flipped);
        } else if (roll < 0.8) {
          expect(expectAgreement(body.subarray(0, Math.floor(random() * body.length)))).toBe("generic");
        } else {
          expect(expectAgreement(new Uint8Array([...body, Math.floor(random() * 256)]))).toBe("generic");
        }
      }),
      { numRuns: 3_000, seed: 4 },
    );
  });

  test("a produce batch is a view into the frame, not a copy", () => {
    const body = encode({ id: 7, op: "produce", batches: [{ topic: "t", partition: 0, batch: new Uint8Array([1, 2, 3]) }] });
    const decoded = fast.decode(body, FRAME_BYTES_MAX);
    expect(decoded?.op).toBe("produce");
    const batch = decoded?.op === "produce" ? decoded.request.batches[0]?.batch : undefined;
    expect(batch?.buffer).toBe(body.buffer);
    expect([...(batch ?? [])]).toEqual([1, 2, 3]);
  });

  test("fills the fetch defaults as the schema does", () => {
    const decoded = fast.decode(encode({ id: 1, op: "fetch", partitions: [{ topic: "t", partition: 0, offset: 5 }] }), FRAME_BYTES_MAX);
    expect(decoded).toEqual({ op: "fetch", id: 1, request: { partitions: [{ topic: "t", partition: 0, offset: 5 }], maxBytes: 1024 * 1024, maxWaitMs: 0, minBytes: 1 } });
  });

  test("leaves other ops, floats, unknown keys, non-ASCII topics and over-limit bins to the generic path", () => {
    const leaves = (value: unknown, frameBytesMax = FRAME_BYTES_MAX) => fast.decode(encode(value), frameBytesMax) === null;
    const batch = { topic: "t", partition: 0, batch: new Uint8Array(8) };
    expect(leaves({ id: 1, op: "metadata" })).toBe(true);
    expect(leaves({ id: 1.5, op: "produce", batches: [batch] })).toBe(true);
    expect(leaves({ id: 1, op: "produce", batches: [batch], extra: 1 })).toBe(true);
    expect(leaves({ id: 1, op: "produce", batches: [{ ...batch, topic: "tö" }] })).toBe(true);
    expect(leaves({ id: 1, op: "produce", batches: [batch] }, 4)).toBe(true);
    expect(leaves({ id: 1, op: "fetch", batches: [batch] })).toBe(true);
    expect(leaves({ op: "produce", batches: [batch] })).toBe(true);
    expect(leaves({ id: 1, op: "produce", batches: [batch] })).toBe(false);
  });

  test("topics the fast path does not take (empty, over 255 bytes) and large partitions reach the handler through the generic path, as values", () => {
    for (const entry of [
      { topic: "", partition: 0 },
      { topic: "x".repeat(256), partition: 0 },
      { topic: "t", partition: 10_000 },
      { topic: "t", partition: 2 ** 40 },
    ]) {
      for (const request of [
        { id: 9, op: "produce", batches: [{ ...entry, batch: new Uint8Array(4) }] },
        { id: 9, op: "fetch", partitions: [{ ...entry, offset: 0 }], maxWaitMs: 10 ** 9 },
      ]) {
        const body = encode(request);
        expect(fast.decode(body, FRAME_BYTES_MAX)).toBeNull();
        expect(generic(body)).toMatchObject({ op: request.op, id: 9 }); // a request, not an error: the handler judges the entry
      }
    }
  });

  test("does not keep a reference to the frame after decoding", () => {
    const body = encode({ id: 1, op: "produce", batches: [{ topic: "t", partition: 0, batch: new Uint8Array(3) }] });
    fast.decode(body, FRAME_BYTES_MAX);
    expect(Object.values(fast).includes(body)).toBe(false);
  });
});
