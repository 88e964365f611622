/**
 * @module client/answer-readers
 * Reads the two answers of the data path — produce and fetch — without the generic msgpack
 * decoder, for the producer's and the consumer's hot paths.
 *
 * The broker writes both by hand when no entry carries an error (protocol/response-writer.ts),
 * always in one shape each:
 *
 *   produce  0x82 | "id" <int> | "results" <array head> { 0x84 | "topic" <str> | "partition" <int>
 *            | "baseOffset" <int> | "lastOffset" <int> } ...
 *   fetch    0x83 | "id" <int> | "partitions" <array head> { 0x85 | "topic" <str> | "partition" <int>
 *            | "logStartOffset" <int> | "nextOffset" <int> | "recordsBytes" <int> } ...
 *            | "records" <bin>
 *
 * Each reader accepts exactly that and returns null for anything else (an error entry, other
 * keys or key order, a float, trailing bytes, a fetch entry's topic that is not the one asked
 * for at that place): the link then decodes the same bytes the generic way, so an unusual answer
 * is still read, only more slowly. Why: the generic decoder made a DataView, a map per entry, an
 * array and the topic strings per answer — garbage the clients' processes paused for at tens of
 * thousands of answers a second (bench/alloc.bench.ts).
 *
 * Non-obvious: the answer returned is one reused view per reader, overwritten by its next call.
 * The link hands it to the request's callback at once; the producer reads it there, the consumer
 * plans it before it sends its next fetch (whose answer is the next call). A caller that keeps
 * an answer longer must not use these readers. The produce reader skips `topic` (results come in
 * request order); the fetch reader compares each entry's topic bytes with the topic asked for at
 * that place and hands out that string (no new string), and `records` is a view into the body.
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

// ------------------------------------------------------------ fetch answers

const KEY_PARTITIONS = key("partitions");
const KEY_LOG_START_OFFSET = key("logStartOffset");
const KEY_NEXT_OFFSET = key("nextOffset");
const KEY_RECORDS_BYTES = key("recordsBytes");
const KEY_RECORDS = key("records");

export interface FetchEntryView {
  topic: string;
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  recordsBytes: number;
}

/** What a fetch asked for at each place of its partition list (the consumer's cursors). */
export interface AskedPartition {
  topic: string;
  partition: number;
}

/**
 * Reads fetch answers into one view of its own (one reader per consumer: its view must live
 * until the consumer has planned the answer, which other consumers' answers must not overwrite).
 */
export class FetchAnswerReader {
  private readonly view: { id: number; partitions: FetchEntryView[]; records: Uint8Array } = { id: 0, partitions: [], records: EMPTY };
  private readonly spareEntries: FetchEntryView[] = [];

  /** The answer in `body` when it is exactly the hand-written shape and answers `asked` in order; null: decode it generically. */
  read(body: Uint8Array, asked: readonly AskedPartition[]): WireMap | null {
    bytes = body;
    position = 0;
    try {
      if (this.readAnswer(asked)) return this.view as unknown as WireMap;
      this.view.records = EMPTY;
      return null;
    } finally {
      bytes = EMPTY;
    }
  }

  private readAnswer(asked: readonly AskedPartition[]): boolean {
    if (bytes[position++] !== 0x83 || !expectKey(KEY_ID)) return false;
    const id = readUint();
    if (id === NOT_READ || !expectKey(KEY_PARTITIONS)) return false;
    const count = readArrayHead();
    if (count === NOT_READ || count > asked.length) return false;
    const entries = this.view.partitions;
    entries.length = 0;
    for (let index = 0; index < count; index++) {
      const topic = asked[index]!.topic;
      if (bytes[position++] !== 0x85 || !expectKey(KEY_TOPIC) || !expectAsciiStr(topic) || !expectKey(KEY_PARTITION)) return false;
      const partition = readUint();
      if (partition === NOT_READ || !expectKey(KEY_LOG_START_OFFSET)) return false;
      const logStartOffset = readInt();
      if (logStartOffset === null || !expectKey(KEY_NEXT_OFFSET)) return false;
      const nextOffset = readInt();
      if (nextOffset === null || !expectKey(KEY_RECORDS_BYTES)) return false;
      const recordsBytes = readUint();
      if (recordsBytes === NOT_READ) return false;
      const entry = (this.spareEntries[index] ??= { topic, partition, logStartOffset, nextOffset, recordsBytes });
      entry.topic = topic;
      entry.partition = partition;
      entry.logStartOffset = logStartOffset;
      entry.nextOffset = nextOffset;
      entry.recordsBytes = recordsBytes;
      entries.push(entry);
    }
    if (!expectKey(KEY_RECORDS)) return false;
    const recordsLength = readBinHead();
    if (recordsLength === NOT_READ || position + recordsLength !== bytes.length) return false;
    this.view.id = id;
    this.view.records = bytes.subarray(position, position + recordsLength);
    position += recordsLength;
    return true;
  }
}

/** A fixstr or str8 holding exactly the ASCII string `expected`. */
function expectAsciiStr(expected: string): boolean {
  const head = bytes[position];
  const length = expected.length;
  if (length < 32 ? head !== (0xa0 | length) : length > 0xff || head !== 0xd9 || bytes[position + 1] !== length) return false;
  const start = position + (length < 32 ? 1 : 2);
  if (start + length > bytes.length) return false;
  for (let index = 0; index < length; index++) {
    const code = expected.charCodeAt(index);
    if (code >= 0x80 || bytes[start + index] !== code) return false;
  }
  position = start + length;
  return true;
}

/** A bin8/bin16/bin32 head: the byte count that follows. */
function readBinHead(): number {
  const head = bytes[position++];
  if (head === 0xc4) return readBigEndian(1);
  if (head === 0xc5) return readBigEndian(2);
  if (head === 0xc6) return readBigEndian(4);
  return NOT_READ;
}
