/**
 * @module client/produce-answer
 * Reads the produce answer without the generic msgpack decoder, for the producer's hot path.
 *
 * The broker writes a produce answer without errors by hand (protocol/response-writer.ts
 * writeProduceResponse), always in this one shape:
 *
 *   0x82 | "id" <int> | "results" <array head> { 0x84 | "topic" <str> | "partition" <int>
 *        | "baseOffset" <int> | "lastOffset" <int> } ...
 *
 * `readProduceAnswer` accepts exactly that and returns null for anything else (an error entry,
 * other keys or key order, a float, trailing bytes): the link then decodes the same bytes the
 * generic way, so an unusual answer is still read, only more slowly. Why: the generic decoder
 * made a DataView, a map per result, an array and the topic string per answer — garbage the
 * producer's process paused for at tens of thousands of answers a second (bench/alloc.bench.ts).
 *
 * Non-obvious: the answer returned is one reused view, overwritten by the next call. The link
 * hands it to the request's callback at once and the producer reads it there without keeping
 * it; a caller that keeps an answer must not use this reader. `topic` is not read (the producer
 * knows which batch each result answers: results come in request order).
 */
import type { WireMap } from "./wire.ts";

export interface ProduceResultView {
  partition: number;
  baseOffset: number;
  lastOffset: number;
}

export interface ProduceAnswerView {
  id: number;
  results: ProduceResultView[];
}

/** Results per answer the reader takes; a larger answer goes the generic way (and is rare). */
const RESULTS_MAX = 10_000;

/** A key as a msgpack fixstr, head included (the names are ASCII and under 32 bytes). */
const key = (name: string): Uint8Array => Uint8Array.from([0xa0 | name.length, ...Array.from(name, (char) => char.charCodeAt(0))]);
const KEY_ID = key("id");
const KEY_RESULTS = key("results");
const KEY_TOPIC = key("topic");
const KEY_PARTITION = key("partition");
const KEY_BASE_OFFSET = key("baseOffset");
const KEY_LAST_OFFSET = key("lastOffset");

/** Returned by the readers below for bytes not of the expected shape. */
const NOT_READ = -1;

const view: ProduceAnswerView = { id: 0, results: [] };
const spareResults: ProduceResultView[] = [];
const EMPTY = new Uint8Array(0);
let bytes: Uint8Array = EMPTY;
let position = 0;

/** The answer in `body` when it is exactly the hand-written shape above; null: decode it generically. */
export function readProduceAnswer(body: Uint8Array): WireMap | null {
  bytes = body;
  position = 0;
  try {
    return readAnswer() ? (view as unknown as WireMap) : null;
  } finally {
    bytes = EMPTY;
  }
}

function readAnswer(): boolean {
  if (bytes[position++] !== 0x82 || !expectKey(KEY_ID)) return false;
  const id = readUint();
  if (id === NOT_READ || !expectKey(KEY_RESULTS)) return false;
  const count = readArrayHead();
  if (count === NOT_READ || count > RESULTS_MAX) return false;
  view.id = id;
  const results = view.results;
  results.length = 0;
  for (let index = 0; index < count; index++) {
    if (bytes[position++] !== 0x84 || !expectKey(KEY_TOPIC) || !skipStr() || !expectKey(KEY_PARTITION)) return false;
    const partition = readUint();
    if (partition === NOT_READ || !expectKey(KEY_BASE_OFFSET)) return false;
    const baseOffset = readUint();
    if (baseOffset === NOT_READ || !expectKey(KEY_LAST_OFFSET)) return false;
    const lastOffset = readInt();
    if (lastOffset === null) return false;
    const result = (spareResults[index] ??= { partition: 0, baseOffset: 0, lastOffset: 0 });
    result.partition = partition;
    result.baseOffset = baseOffset;
    result.lastOffset = lastOffset;
    results.push(result);
  }
  return position === bytes.length;
}

function expectKey(expected: Uint8Array): boolean {
  if (position + expected.length > bytes.length) return false;
  for (let index = 0; index < expected.length; index++) if (bytes[position + index] !== expected[index]) return false;
  position += expected.length;
  return true;
}

/** A fixstr or str8 (topic names are at most 255 bytes), skipped. */
function skipStr(): boolean {
  const head = bytes[position++];
  if (head === undefined) return false;
  let length: number;
  if ((head & 0xe0) === 0xa0) length = head & 0x1f;
  else if (head === 0xd9 && position < bytes.length) length = bytes[position++]!;
  else return false;
  position += length;
  return position <= bytes.length;
}

function readArrayHead(): number {
  const head = bytes[position++];
  if (head === undefined) return NOT_READ;
  if ((head & 0xf0) === 0x90) return head & 0x0f;
  if (head === 0xdc) return readBigEndian(2);
  if (head === 0xdd) return readBigEndian(4);
  return NOT_READ;
}

/** A msgpack unsigned integer up to 2^53 - 1, in any width; NOT_READ for anything else. */
function readUint(): number {
  const head = bytes[position++];
  if (head === undefined) return NOT_READ;
  if (head < 0x80) return head;
  if (head === 0xcc) return readBigEndian(1);
  if (head === 0xcd) return readBigEndian(2);
  if (head === 0xce) return readBigEndian(4);
  if (head === 0xcf) {
    const high = readBigEndian(4);
    const low = readBigEndian(4);
    if (high === NOT_READ || low === NOT_READ || high >= 0x20_0000) return NOT_READ;
    return high * 0x1_0000_0000 + low;
  }
  return NOT_READ;
}

/** A msgpack integer that may be negative (lastOffset is baseOffset - 1 for an empty batch); null for anything else. */
function readInt(): number | null {
  const head = bytes[position];
  if (head === undefined) return null;
  if (head >= 0xe0) {
    position++;
    return head - 0x100;
  }
  if (head === 0xd0 || head === 0xd1 || head === 0xd2) {
    position++;
    const width = head === 0xd0 ? 1 : head === 0xd1 ? 2 : 4;
    const value = readBigEndian(width);
    if (value === NOT_READ) return null;
    return value >= 2 ** (width * 8 - 1) ? value - 2 ** (width * 8) : value;
  }
  const value = readUint();
  return value === NOT_READ ? null : value;
}

function readBigEndian(width: 1 | 2 | 4): number {
  if (position + width > bytes.length) return NOT_READ;
  let value = 0;
  for (let index = 0; index < width; index++) value = value * 0x100 + bytes[position++]!;
  return value;
}
