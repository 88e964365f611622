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
 * varint/varlong are zigzag-encoded LEB128. Only uncompressed batches are decoded here.
 */
import { RunnelError } from "../errors.ts";
import { crc32c } from "./crc32c.ts";
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

class Bytes {
  readonly out: number[] = [];
  varint(value: number): void {
    let rest = value >= 0 ? value * 2 : -value * 2 - 1;
    while (rest >= 0x80) {
      this.out.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.out.push(rest);
  }
  bytes(value: Uint8Array | null): void {
    if (value === null) return this.varint(-1);
    this.varint(value.length);
    for (const byte of value) this.out.push(byte);
  }
}

function encodeRecord(record: KafkaRecordInput, offsetDelta: number, firstTimestamp: number): number[] {
  const body = new Bytes();
  body.out.push(0);
  body.varint(record.timestamp - firstTimestamp);
  body.varint(offsetDelta);
  body.bytes(record.key ?? null);
  body.bytes(record.value);
  const headers = record.headers ?? [];
  body.varint(headers.length);
  for (const [name, value] of headers) {
    body.bytes(textEncoder.encode(name));
    body.bytes(value);
  }
  const framed = new Bytes();
  framed.varint(body.out.length);
  return framed.out.concat(body.out);
}

/** An uncompressed magic 2 batch (baseOffset 0, for the broker to stamp). */
export function encodeKafkaBatch(records: readonly KafkaRecordInput[], producer: ProducerFields = NO_PRODUCER): Uint8Array {
  if (records.length === 0) throw new RunnelError("INVALID_REQUEST", "a batch needs at least one record");
  const firstTimestamp = Math.min(...records.map((record) => record.timestamp));
  const maxTimestamp = Math.max(...records.map((record) => record.timestamp));
  const encoded = records.flatMap((record, index) => encodeRecord(record, index, firstTimestamp));
  const bytes = new Uint8Array(BATCH_HEADER_BYTES + encoded.length);
  const view = new DataView(bytes.buffer);
  view.setInt32(FIELD.batchLength, bytes.length - BATCH_LOG_OVERHEAD_BYTES);
  view.setInt8(FIELD.magic, BATCH_MAGIC_KAFKA);
  view.setInt32(FIELD.lastOffsetDelta, records.length - 1);
  writeInt64(view, FIELD.firstTimestamp, firstTimestamp);
  writeInt64(view, FIELD.maxTimestamp, maxTimestamp);
  writeInt64(view, FIELD.producerId, producer.producerId);
  view.setInt16(FIELD.producerEpoch, producer.producerEpoch);
  view.setInt32(FIELD.baseSequence, producer.baseSequence);
  view.setInt32(FIELD.recordCount, records.length);
  bytes.set(encoded, BATCH_HEADER_BYTES);
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

/** The records of one uncompressed magic 2 batch (views into `bytes`). Header names are kept as a map. */
export function decodeKafkaRecords(bytes: Uint8Array): BatchRecord[] {
  const header = readBatchHeader(bytes);
  if (header.magic !== BATCH_MAGIC_KAFKA) throw corrupt(`magic ${header.magic}`);
  if ((header.attributes & 0x07) !== 0) throw corrupt(`compression codec ${header.attributes & 0x07} is not decoded here`);
  const cursor = new Cursor(bytes.subarray(0, BATCH_LOG_OVERHEAD_BYTES + header.batchLength), BATCH_HEADER_BYTES);
  const records: BatchRecord[] = [];
  for (let index = 0; index < header.recordCount; index++) {
    cursor.varint(); // record length: the fields below are read one by one
    cursor.position++; // attributes
    const timestamp = header.firstTimestamp + cursor.varint();
    const offset = header.baseOffset + cursor.varint();
    const key = cursor.bytesOrNull();
    const value = cursor.bytesOrNull();
    const headerCount = cursor.varint();
    let headers: Record<string, Uint8Array> | null = null;
    for (let item = 0; item < headerCount; item++) {
      headers ??= {};
      const name = textDecoder.decode(cursor.bytesOrNull() ?? new Uint8Array(0));
      headers[name] = cursor.bytesOrNull() ?? new Uint8Array(0);
    }
    records.push({ offset, timestamp, key, value, headers });
  }
  return records;
}
