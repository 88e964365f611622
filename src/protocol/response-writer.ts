/**
 * @module protocol/response-writer
 * Hand-written encoders for the two answers of the data path: the produce response and the
 * head of the fetch response. They write the same bytes the generic encoder (@msgpack/msgpack,
 * `ignoreUndefined`) writes for the same objects — shortest integers, keys in insertion order —
 * without walking the objects generically (Object.keys, a type switch per value, a UTF-8 count
 * per string). test/protocol/response-writer.test.ts checks the bytes are identical.
 *
 * They cover the common case only and return null for the rest (an entry carrying an `error`,
 * a non-ASCII topic, a number that is not a safe integer): messages.ts then uses the generic
 * encoder, so an unusual answer is still encoded, just more slowly.
 */
import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame.ts";

/** A produce result without an error: what `writeProduceResponse` encodes. */
export interface ProduceResultOk {
  topic: string;
  partition: number;
  baseOffset: number;
  lastOffset: number;
}

/** A fetch partition entry: `writeFetchHead` encodes those without an error. */
export interface FetchEntryOk {
  topic: string;
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  recordsBytes: number;
  error?: unknown;
}

/** The scratch buffer is kept only up to this size; a larger answer grows it once, then it shrinks back. */
const SCRATCH_BYTES_KEPT_MAX = 1024 * 1024;

/** A msgpack str of an ASCII key, head included: fixed bytes, written with one set(). */
function keyBytes(key: string): Uint8Array {
  return new Uint8Array([0xa0 | key.length, ...new TextEncoder().encode(key)]);
}

const KEY = {
  id: keyBytes("id"),
  results: keyBytes("results"),
  partitions: keyBytes("partitions"),
  topic: keyBytes("topic"),
  partition: keyBytes("partition"),
  baseOffset: keyBytes("baseOffset"),
  lastOffset: keyBytes("lastOffset"),
  logStartOffset: keyBytes("logStartOffset"),
  nextOffset: keyBytes("nextOffset"),
  recordsBytes: keyBytes("recordsBytes"),
};

/** Thrown by the writer for a value it does not encode by hand; caught in this module. */
const NOT_HANDLED = Symbol("not encoded by hand");

/** Appends msgpack values to a reused scratch buffer; `take` copies out the bytes written. */
class Writer {
  private buffer = new Uint8Array(4096);
  private length = 0;

  reset(): void {
    this.length = 0;
    if (this.buffer.length > SCRATCH_BYTES_KEPT_MAX) this.buffer = new Uint8Array(4096);
  }

  get position(): number {
    return this.length;
  }

  private room(bytes: number): Uint8Array {
    if (this.length + bytes > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + bytes));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    return this.buffer;
  }

  skip(bytes: number): void {
    this.room(bytes);
    this.length += bytes;
  }

  u8(value: number): void {
    this.room(1)[this.length++] = value;
  }

  raw(bytes: Uint8Array): void {
    this.room(bytes.length).set(bytes, this.length);
    this.length += bytes.length;
  }

  private u32At(at: number, value: number): void {
    writeFrameHeader(this.buffer, at, value);
  }

  /** A map (or array) head of `count` entries, as the generic encoder writes it. */
  containerHead(count: number, fix: 0x80 | 0x90, head16: 0xde | 0xdc): void {
    if (count < 16) return this.u8(fix | count);
    if (count < 0x1_0000) {
      this.u8(head16);
      this.u8(count >>> 8);
      return this.u8(count & 0xff);
    }
    this.u8(head16 + 1);
    this.skip(4);
    this.u32At(this.length - 4, count);
  }

  /** An ASCII string as fixstr/str8 (topic names are at most 255 bytes); anything else is not handled. */
  ascii(text: string): void {
    const length = text.length;
    if (length > 0xff) throw NOT_HANDLED;
    const buffer = this.room(2 + length);
    if (length < 32) buffer[this.length++] = 0xa0 | length;
    else {
      buffer[this.length++] = 0xd9;
      buffer[this.length++] = length;
    }
    for (let index = 0; index < length; index++) {
      const code = text.charCodeAt(index);
      if (code >= 0x80) throw NOT_HANDLED;
      buffer[this.length++] = code;
    }
  }

  /** A safe integer in the shortest encoding (>= -2^31); anything else is not handled. */
  int(value: number): void {
    if (!Number.isSafeInteger(value)) throw NOT_HANDLED;
    if (value >= 0) {
      if (value < 0x80) return this.u8(value);
      if (value < 0x100) return this.bytesOf(0xcc, value, 1);
      if (value < 0x1_0000) return this.bytesOf(0xcd, value, 2);
      if (value < 0x1_0000_0000) return this.bytesOf(0xce, value, 4);
      this.u8(0xcf);
      this.skip(8);
      this.u32At(this.length - 8, Math.floor(value / 0x1_0000_0000));
      return this.u32At(this.length - 4, value >>> 0);
    }
    if (value >= -0x20) return this.u8(0xe0 | (value + 0x20));
    if (value >= -0x80) return this.bytesOf(0xd0, value & 0xff, 1);
    if (value >= -0x8000) return this.bytesOf(0xd1, value & 0xffff, 2);
    if (value >= -0x8000_0000) return this.bytesOf(0xd2, value >>> 0, 4);
    throw NOT_HANDLED;
  }

  private bytesOf(head: number, value: number, width: 1 | 2 | 4): void {
    const buffer = this.room(1 + width);
    buffer[this.length++] = head;
    for (let shift = (width - 1) * 8; shift >= 0; shift -= 8) buffer[this.length++] = Math.floor(value / 2 ** shift) & 0xff;
  }

  /** The bytes written, copied into a new buffer of exactly that size. */
  take(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  /** Writes `value` as a u32 big-endian at `at` (a frame length). */
  patchU32(at: number, value: number): void {
    this.u32At(at, value);
  }
}

const writer = new Writer();

/**
 * The produce response frame `{id, results: [{topic, partition, baseOffset, lastOffset}...]}`,
 * or null when a result is not of that shape (it carries an error) or not encodable by hand.
 */
export function writeProduceResponse(id: number, results: ReadonlyArray<ProduceResultOk | { error: unknown }>): Uint8Array | null {
  writer.reset();
  try {
    writer.skip(FRAME_HEADER_BYTES);
    writer.u8(0x82);
    writer.raw(KEY.id);
    writer.int(id);
    writer.raw(KEY.results);
    writer.containerHead(results.length, 0x90, 0xdc);
    for (const result of results) {
      if ("error" in result) return null;
      writer.u8(0x84);
      writer.raw(KEY.topic);
      writer.ascii(result.topic);
      writer.raw(KEY.partition);
      writer.int(result.partition);
      writer.raw(KEY.baseOffset);
      writer.int(result.baseOffset);
      writer.raw(KEY.lastOffset);
      writer.int(result.lastOffset);
    }
  } catch (error) {
    if (error === NOT_HANDLED) return null;
    throw error;
  }
  writer.patchU32(0, writer.position - FRAME_HEADER_BYTES);
  return writer.take();
}

/** "records" as a fixstr key, then the bin32 head 0xc6 (its u32 length follows). */
const RECORDS_KEY_AND_BIN32 = new Uint8Array([...keyBytes("records"), 0xc6]);

/**
 * The fetch response head (see encodeFetchResponseHead in messages.ts for the layout): frame
 * length, `0x83`, `id`, `partitions`, then "records" and the bin32 head of `recordsBytes`. Null
 * when an entry carries an error or is not encodable by hand.
 */
export function writeFetchHead(id: number, partitions: readonly FetchEntryOk[], recordsBytes: number): Uint8Array | null {
  writer.reset();
  try {
    writer.skip(FRAME_HEADER_BYTES);
    writer.u8(0x83);
    writer.raw(KEY.id);
    writer.int(id);
    writer.raw(KEY.partitions);
    writer.containerHead(partitions.length, 0x90, 0xdc);
    for (const entry of partitions) {
      if (entry.error !== undefined) return null;
      writer.u8(0x85);
      writer.raw(KEY.topic);
      writer.ascii(entry.topic);
      writer.raw(KEY.partition);
      writer.int(entry.partition);
      writer.raw(KEY.logStartOffset);
      writer.int(entry.logStartOffset);
      writer.raw(KEY.nextOffset);
      writer.int(entry.nextOffset);
      writer.raw(KEY.recordsBytes);
      writer.int(entry.recordsBytes);
    }
  } catch (error) {
    if (error === NOT_HANDLED) return null;
    throw error;
  }
  writer.raw(RECORDS_KEY_AND_BIN32);
  writer.skip(4);
  writer.patchU32(writer.position - 4, recordsBytes);
  writer.patchU32(0, writer.position - FRAME_HEADER_BYTES + recordsBytes);
  return writer.take();
}
