/**
 * @module format/kafka-batch
 * Kafka's record batch v2 (magic 2), the format Kafka clients produce and consume: built and
 * read here for tests, tools and (later) the conversion between the two protocols' batches.
 * The broker itself stores these batches whole and never opens their records.
 *
 * Layout: the 61-byte header shared with ours (record-batch.ts; magic 2, crc = CRC-32C of bytes
 * [21, end)), then recordCount records, each:
 *
 *   length: varint            bytes of the record after this field
 *   attributes: int8          unused, 0
 *   timestampDelta: varlong   from the batch's firstTimestamp
 *   offsetDelta: varint       from the batch's baseOffset
 *   keyLength: varint, key    -1 = null
 *   valueLength: varint, value -1 = null
 *   headerCount: varint, then per header: keyLength: varint, key (UTF-8), valueLength: varint, value
 *
 * varint/varlong are zigzag-encoded LEB128. In a compressed batch (attributes bits 0-2) the
 * records, exactly as above, are the decompressed form of the bytes after the header
 * (format/kafka-compression.ts, bounded by LIMITS.decompressedBatchBytesMax).
 */
import { RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { crc32c } from "./crc32c.ts";
import { decompressKafkaRecords } from "./kafka-compression.ts";
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, BATCH_MAGIC_KAFKA, type BatchRecord, CRC_START, FIELD, NO_PRODUCER, type ProducerFields, readBatchHeader, writeInt64 } from "./record-batch.ts";

export interface KafkaRecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: Array<[string, Uint8Array | null]>;
  timestamp: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function corrupt(message: string): RunnelError {
  return new RunnelError("CORRUPT_BATCH", `Kafka batch: ${message}`);
}

/** A growable byte buffer for writing records (no per-byte array pushes). */
class Bytes {
  buffer: Uint8Array;
  length = 0;
  /** A fresh buffer of `capacity` bytes, or `reuse` when it is at least that large (the caller's recycled buffer). */
  constructor(capacity: number, reuse: Uint8Array | null = null) {
    this.buffer = reuse !== null && reuse.length >= capacity ? reuse : new Uint8Array(Math.max(64, capacity));
  }
  private room(count: number): void {
    if (this.length + count <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + count));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }
  byte(value: number): void {
    this.room(1);
    this.buffer[this.length++] = value;
  }
  varint(value: number): void {
    let rest = value >= 0 ? value * 2 : -value * 2 - 1;
    this.room(10);
    while (rest >= 0x80) {
      this.buffer[this.length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.length++] = rest;
  }
  raw(value: Uint8Array): void {
    this.room(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }
  bytes(value: Uint8Array | null): void {
    if (value === null) return this.varint(-1);
    this.varint(value.length);
    this.room(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }
}

/** Bytes of `value` as a zigzag varint. */
function varintBytes(value: number): number {
  let rest = value >= 0 ? value * 2 : -value * 2 - 1;
  let bytes = 1;
  while (rest >= 0x80) {
    rest = Math.floor(rest / 0x80);
    bytes++;
  }
  return bytes;
}

function sizedBytes(value: Uint8Array | null): number {
  return value === null ? 1 : varintBytes(value.length) + value.length;
}

/**
 * Writes one record: its length first. Without headers the length is computed and the fields
 * written straight into `out` (one copy of key and value); with headers the body goes to a
 * scratch buffer first and is copied after its length.
 */
function encodeRecord(out: Bytes, scratch: Bytes, record: KafkaRecordInput, offsetDelta: number, firstTimestamp: number): void {
  const headers = record.headers ?? [];
  if (headers.length === 0) {
    const key = record.key ?? null;
    const timestampDelta = record.timestamp - firstTimestamp;
    out.varint(1 + varintBytes(timestampDelta) + varintBytes(offsetDelta) + sizedBytes(key) + sizedBytes(record.value) + 1);
    out.byte(0);
    out.varint(timestampDelta);
    out.varint(offsetDelta);
    out.bytes(key);
    out.bytes(record.value);
    out.varint(0);
    return;
  }
  scratch.length = 0;
  scratch.byte(0);
  scratch.varint(record.timestamp - firstTimestamp);
  scratch.varint(offsetDelta);
  scratch.bytes(record.key ?? null);
  scratch.bytes(record.value);
  scratch.varint(headers.length);
  for (const [name, value] of headers) {
    scratch.bytes(textEncoder.encode(name));
    scratch.bytes(value);
  }
  out.varint(scratch.length);
  out.raw(scratch.buffer.subarray(0, scratch.length));
}

/**
 * An uncompressed magic 2 batch (baseOffset 0, for the broker to stamp). With `reuse`, the batch
 * is written into that buffer when it is large enough (the result is then a view of it): a
 * producer that recycles its batch buffers once they are acknowledged, as librdkafka does,
 * allocates nothing per batch.
 */
export function encodeKafkaBatch(records: readonly KafkaRecordInput[], producer: ProducerFields = NO_PRODUCER, reuse: Uint8Array | null = null): Uint8Array {
  if (records.length === 0) throw new RunnelError("INVALID_REQUEST", "a batch needs at least one record");
  let firstTimestamp = Number.POSITIVE_INFINITY;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  let estimate = BATCH_HEADER_BYTES;
  for (const record of records) {
    firstTimestamp = Math.min(firstTimestamp, record.timestamp);
    maxTimestamp = Math.max(maxTimestamp, record.timestamp);
    estimate += 24 + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  }
  const out = new Bytes(estimate, reuse);
  // Header fields not set below (baseOffset, leader epoch, attributes) are zero.
  out.buffer.fill(0, 0, BATCH_HEADER_BYTES);
  out.length = BATCH_HEADER_BYTES;
  const scratch = new Bytes(256);
  records.forEach((record, index) => encodeRecord(out, scratch, record, index, firstTimestamp));
  // A view, not a copy: the estimate above leaves at most a few bytes per record unused.
  const bytes = out.buffer.subarray(0, out.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setInt32(FIELD.batchLength, bytes.length - BATCH_LOG_OVERHEAD_BYTES);
  view.setInt8(FIELD.magic, BATCH_MAGIC_KAFKA);
  view.setInt32(FIELD.lastOffsetDelta, records.length - 1);
  writeInt64(view, FIELD.firstTimestamp, firstTimestamp);
  writeInt64(view, FIELD.maxTimestamp, maxTimestamp);
  writeInt64(view, FIELD.producerId, producer.producerId);
  view.setInt16(FIELD.producerEpoch, producer.producerEpoch);
  view.setInt32(FIELD.baseSequence, producer.baseSequence);
  view.setInt32(FIELD.recordCount, records.length);
  view.setUint32(FIELD.crc, crc32c(bytes.subarray(CRC_START)));
  return bytes;
}

class Cursor {
  constructor(
    private readonly bytes: Uint8Array,
    public position: number,
  ) {}
  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 63; shift += 7) {
      if (this.position >= this.bytes.length) throw corrupt("record ends inside a varint");
      const byte = this.bytes[this.position++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
    }
    throw corrupt("varint too long");
  }
  bytesOrNull(): Uint8Array | null {
    const length = this.varint();
    if (length === -1) return null;
    if (length < 0 || length > this.bytes.length - this.position) throw corrupt(`length ${length} passes the record's end`);
    const view = this.bytes.subarray(this.position, this.position + length);
    this.position += length;
    return view;
  }
}

/**
 * The records of one magic 2 batch. Uncompressed: views into `bytes`; compressed: views into
 * the decompressed copy (at most `decompressedBytesMax`). Header names are kept as a map.
 */
export function decodeKafkaRecords(bytes: Uint8Array, decompressedBytesMax?: number): BatchRecord[] {
  const header = readBatchHeader(bytes);
  if (header.magic !== BATCH_MAGIC_KAFKA) throw corrupt(`magic ${header.magic}`);
  if (header.recordCount < 0 || header.recordCount > LIMITS.recordsPerBatchMax) throw corrupt(`record count ${header.recordCount} is out of bounds`);
  const section = bytes.subarray(BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES + header.batchLength);
  const codec = header.attributes & 0x07;
  const records = codec === 0 ? section : decompressKafkaRecords(codec, section, decompressedBytesMax);
  const cursor = new Cursor(records, 0);
  const decoded: BatchRecord[] = [];
  for (let index = 0; index < header.recordCount; index++) {
    cursor.varint(); // record length: the fields below are read one by one
    cursor.position++; // attributes
    const timestamp = header.firstTimestamp + cursor.varint();
    const offset = header.baseOffset + cursor.varint();
    const key = cursor.bytesOrNull();
    const value = cursor.bytesOrNull();
    const headerCount = cursor.varint();
    if (headerCount < 0 || headerCount > records.length - cursor.position) throw corrupt(`header count ${headerCount} passes the record's end`);
    let headers: Record<string, Uint8Array> | null = null;
    for (let item = 0; item < headerCount; item++) {
      headers ??= {};
      const name = textDecoder.decode(cursor.bytesOrNull() ?? new Uint8Array(0));
      headers[name] = cursor.bytesOrNull() ?? new Uint8Array(0);
    }
    decoded.push({ offset, timestamp, key, value, headers });
  }
  return decoded;
}
