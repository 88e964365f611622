import { describe, expect, test } from "bun:test";
import { decode } from "@msgpack/msgpack";
import fc from "fast-check";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame.ts";
import {
  encodeFetchResponseHead,
  encodeFetchResponseHeadGeneric,
  encodeProduceResponseFrame,
  encodeResponseFrame,
  type FetchPartitionResult,
  type ProduceBatchResult,
} from "../../src/protocol/messages.ts";
import { writeFetchHead, writeProduceResponse } from "../../src/protocol/response-writer.ts";

const topic = fc.oneof(fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/), fc.constantFrom("x".repeat(31), "y".repeat(32), "z".repeat(255), "ünïcode"));
const number = fc.oneof(
  fc.constantFrom(-1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), 0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
  fc.maxSafeInteger(),
);
const wireError = fc.record({ code: fc.constant("UNKNOWN_TOPIC" as const), message: fc.string() });

const produceResult: fc.Arbitrary<ProduceBatchResult> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ topic, partition: fc.nat({ max: 9_999 }), baseOffset: number, lastOffset: number }) },
  { weight: 1, arbitrary: fc.record({ topic, partition: fc.nat({ max: 9_999 }), error: wireError }) },
);

const fetchEntry: fc.Arbitrary<FetchPartitionResult> = fc
  .record({ topic, partition: fc.nat({ max: 9_999 }), logStartOffset: number, nextOffset: number, recordsBytes: fc.nat(), error: fc.option(wireError, { nil: undefined, freq: 6 }) })
  .map(({ error, ...entry }) => (error === undefined ? entry : { ...entry, error }));

describe("hand-written response encoders", () => {
  test("a produce response is byte for byte what the generic encoder writes", () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), fc.array(produceResult, { minLength: 1, maxLength: 20 }), (id, results) => {
        expect([...encodeProduceResponseFrame(id, results)]).toEqual([...encodeResponseFrame({ id, results })]);
      }),
      { numRuns: 1_000, seed: 11 },
    );
  });

  test("a fetch head is byte for byte what the generic encoder writes", () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), fc.array(fetchEntry, { maxLength: 20 }), fc.nat(), (id, partitions, recordsBytes) => {
        expect([...encodeFetchResponseHead(id, partitions, recordsBytes)]).toEqual([...encodeFetchResponseHeadGeneric(id, partitions, recordsBytes)]);
      }),
      { numRuns: 1_000, seed: 12 },
    );
  });

  test("array heads switch from fixarray to array16 at 16 entries, as the generic encoder's do", () => {
    for (let count = 0; count <= 17; count++) {
      const results = Array.from({ length: count }, (_, partition) => ({ topic: "t", partition, baseOffset: 0, lastOffset: 0 }));
      const partitions = results.map(({ topic, partition }) => ({ topic, partition, logStartOffset: 0, nextOffset: 0, recordsBytes: 0 }));
      if (count > 0) expect([...encodeProduceResponseFrame(1, results)]).toEqual([...encodeResponseFrame({ id: 1, results })]);
      expect([...(writeFetchHead(1, partitions, 0) ?? [])]).toEqual([...encodeFetchResponseHeadGeneric(1, partitions, 0)]);
    }
  });

  test("the hand path covers the common answers and leaves errors and non-ASCII topics to the generic one", () => {
    const ok = { topic: "orders", partition: 3, baseOffset: 10, lastOffset: 19 };
    expect(writeProduceResponse(1, [ok])).not.toBeNull();
    expect(writeProduceResponse(1, [ok, { topic: "orders", partition: 3, error: { code: "CORRUPT_BATCH", message: "crc" } }])).toBeNull();
    expect(writeProduceResponse(1, [{ ...ok, topic: "ördërs" }])).toBeNull();
    expect(writeProduceResponse(1, [{ ...ok, baseOffset: 1.5 }])).toBeNull();
    const entry = { topic: "orders", partition: 0, logStartOffset: 0, nextOffset: 5, recordsBytes: 100 };
    expect(writeFetchHead(2, [entry], 100)).not.toBeNull();
    expect(writeFetchHead(2, [{ ...entry, error: { code: "UNKNOWN_TOPIC", message: "no" } }], 0)).toBeNull();
  });

  test("a 20-result produce response decodes to its results (array16 and str8 lengths)", () => {
    const results = Array.from({ length: 20 }, (_, index) => ({ topic: "t".repeat(40), partition: index, baseOffset: 2 ** 40 + index, lastOffset: 2 ** 40 + index }));
    const frame = encodeProduceResponseFrame(9, results);
    expect(new DataView(frame.buffer, frame.byteOffset).getUint32(0)).toBe(frame.length - FRAME_HEADER_BYTES);
    expect(decode(frame.subarray(FRAME_HEADER_BYTES))).toEqual({ id: 9, results });
  });

  test("a frame handed out stays intact after the next one is written (the scratch buffer is copied out)", () => {
    const first = encodeProduceResponseFrame(1, [{ topic: "a", partition: 0, baseOffset: 1, lastOffset: 1 }]);
    encodeProduceResponseFrame(2, [{ topic: "bbbbbbbb", partition: 9, baseOffset: 999, lastOffset: 999 }]);
    expect(decode(first.subarray(FRAME_HEADER_BYTES))).toEqual({ id: 1, results: [{ topic: "a", partition: 0, baseOffset: 1, lastOffset: 1 }] });
  });
});
