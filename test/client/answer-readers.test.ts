/**
 * The clients' hand readers of produce and fetch answers (client/answer-readers.ts) against the
 * broker's hand writers (protocol/response-writer.ts) and the generic encoder: they read exactly
 * what the broker writes, and give up (null: the generic decoder reads it) on anything else.
 */
import { expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { FetchAnswerReader, readProduceAnswer } from "../../src/client/answer-readers.ts";
import { writeFetchHead, writeProduceResponse } from "../../src/protocol/response-writer.ts";

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

function fetchBody(id: number, entries: Array<{ topic: string; partition: number; logStartOffset: number; nextOffset: number; recordsBytes: number }>, records: Uint8Array): Uint8Array {
  const head = writeFetchHead(id, entries, records.length)!;
  const frame = new Uint8Array(head.length + records.length);
  frame.set(head);
  frame.set(records, head.length);
  return frame.subarray(FRAME_HEADER_BYTES);
}

test("reads a fetch answer the broker wrote by hand, handing out the asked topics' own strings and a view of the records", () => {
  const asked = [{ topic: "orders", partition: 0 }, { topic: "p".repeat(40), partition: 7 }];
  const entries = [
    { topic: "orders", partition: 0, logStartOffset: 0, nextOffset: 300, recordsBytes: 3 },
    { topic: "p".repeat(40), partition: 7, logStartOffset: 2 ** 40, nextOffset: 2 ** 40 + 5, recordsBytes: 2 },
  ];
  const body = fetchBody(9, entries, new Uint8Array([1, 2, 3, 4, 5]));
  const answer = new FetchAnswerReader().read(body, asked) as { id: number; partitions: Array<{ topic: string }>; records: Uint8Array } | null;
  expect(answer).toEqual({ id: 9, partitions: entries, records: new Uint8Array([1, 2, 3, 4, 5]) });
  expect(answer?.partitions[0]?.topic).toBe(asked[0]!.topic);
  expect(answer?.records.buffer).toBe(body.buffer);
});

test("gives up on a fetch answer that is not the hand-written shape or not what was asked, in order", () => {
  const reader = new FetchAnswerReader();
  const entry = { topic: "orders", partition: 0, logStartOffset: 0, nextOffset: 3, recordsBytes: 1 };
  const good = fetchBody(1, [entry], new Uint8Array([7]));
  expect(reader.read(good, [{ topic: "orders", partition: 0 }])).not.toBeNull();
  expect(reader.read(good, [{ topic: "orderz", partition: 0 }])).toBeNull();
  expect(reader.read(good, [])).toBeNull();
  for (let length = 0; length < good.length; length++) expect(reader.read(good.subarray(0, length), [{ topic: "orders", partition: 0 }])).toBeNull();
  const withError = encode({ id: 1, partitions: [{ topic: "orders", partition: 0, error: { code: "UNKNOWN_TOPIC", message: "no" } }], records: new Uint8Array(0) });
  expect(reader.read(withError, [{ topic: "orders", partition: 0 }])).toBeNull();
});
