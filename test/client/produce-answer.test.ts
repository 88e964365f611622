/**
 * The producer's hand reader of produce answers (client/produce-answer.ts) against the broker's
 * hand writer (protocol/response-writer.ts) and the generic encoder: it reads exactly what the
 * broker writes, and gives up (null: the generic decoder reads it) on anything else.
 */
import { expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { readProduceAnswer } from "../../src/client/produce-answer.ts";
import { writeProduceResponse } from "../../src/protocol/response-writer.ts";

const FRAME_HEADER_BYTES = 4;

function body(frame: Uint8Array): Uint8Array {
  return frame.subarray(FRAME_HEADER_BYTES);
}

test("reads every result of a produce answer the broker wrote by hand, in any integer width", () => {
  const results = [
    { topic: "orders", partition: 0, baseOffset: 0, lastOffset: -1 },
    { topic: "t".repeat(200), partition: 9999, baseOffset: 2 ** 40, lastOffset: 2 ** 40 + 7 },
    { topic: "x", partition: 300, baseOffset: 70_000, lastOffset: 70_001 },
  ];
  const answer = readProduceAnswer(body(writeProduceResponse(0xffff_fffe, results)!));
  expect(answer).toEqual({ id: 0xffff_fffe, results: results.map(({ partition, baseOffset, lastOffset }) => ({ partition, baseOffset, lastOffset })) });
});

test("reads the same answer from the generic encoder's bytes", () => {
  const answer = readProduceAnswer(encode({ id: 3, results: [{ topic: "a", partition: 1, baseOffset: 5, lastOffset: 9 }] }));
  expect(answer).toEqual({ id: 3, results: [{ partition: 1, baseOffset: 5, lastOffset: 9 }] });
});

test("gives up on answers of any other shape, so the generic decoder reads them", () => {
  const others = [
    { id: 1, results: [{ topic: "a", partition: 0, error: { code: "UNKNOWN_TOPIC", message: "no" } }] },
    { id: 1, error: { code: "INTERNAL", message: "boom" } },
    { results: [], id: 1 },
    { id: 1, results: [{ partition: 0, topic: "a", baseOffset: 1, lastOffset: 1 }] },
    { id: 1.5, results: [] },
    { id: 1, results: [{ topic: "a", partition: 0, baseOffset: 1.5, lastOffset: 1 }] },
    { id: 1, results: [{ topic: "a", partition: 0, baseOffset: -1, lastOffset: 1 }] },
  ];
  for (const other of others) expect({ other, read: readProduceAnswer(encode(other)) }).toEqual({ other, read: null });
});

test("gives up on every truncated prefix and on trailing bytes", () => {
  const whole = body(writeProduceResponse(42, [{ topic: "orders", partition: 2, baseOffset: 1000, lastOffset: 1009 }])!);
  for (let length = 0; length < whole.length; length++) expect(readProduceAnswer(whole.subarray(0, length))).toBeNull();
  const trailing = new Uint8Array(whole.length + 1);
  trailing.set(whole);
  expect(readProduceAnswer(trailing)).toBeNull();
  expect(readProduceAnswer(whole)).not.toBeNull();
});
