/**
 * @module format/record-batch
 * The record batch: the unit the client builds, the broker stores unopened and the consumer
 * unpacks. Pure functions on bytes, shared by client and broker; no I/O.
 *
 * Byte layout (all integers big-endian; docs/storage.md is the normative description):
 *
 *   off size field            notes
 *     0   8  baseOffset       i64, stamped by the broker on append (not covered by crc)
 *     8   4  batchLength      i32, bytes after this field: total size = 12 + batchLength
 *    12   4  leaderEpoch      i32, stamped by the broker (replication later; 0 today; not in crc)
 *    16   1  magic            i8, 1 = Runnel batch v1 (msgpack records)
 *    17   4  crc              u32, CRC-32 (IEEE) of bytes [21, end)
 *    21   2  attributes       i16, bits 0-2 compression codec (0 = none); bits 3-15 reserved, 0
 *    23   4  lastOffsetDelta  i32, recordCount - 1
 *    27   8  firstTimestamp   i64, ms since the epoch
 *    35   8  maxTimestamp     i64, ms since the epoch, >= firstTimestamp
 *    43   8  producerId       i64, -1 when the producer is not idempotent
 *    51   2  producerEpoch    i16, -1 when none
 *    53   4  baseSequence     i32, -1 when none
 *    57   4  recordCount      i32, >= 1
 *    61   .. records          recordCount msgpack values, one after another, each
 *                             [timestampDelta: int, key: bin|nil, value: bin|nil,
 *                              headers: map<str, bin>|nil]
 *
 * The header keeps Kafka's RecordBatch v2 positions so the log (which reads only baseOffset,
 * batchLength, magic, crc, lastOffsetDelta and maxTimestamp) holds Kafka-format batches
 * (magic 2, CRC-32C, records per format/kafka-batch.ts) beside ours: checkHeaderFields and
 * batchCrc pick the rules by magic. The crc starts after the fields the broker stamps, so
 * stamping never means recomputing it.
 */
import { decodeMulti, Encoder } from "@msgpack/msgpack";
import { RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { decodeRecordsFast } from "./record-decode.ts";
import { crc32c } from "./crc32c.ts";
import { decodeKafkaRecords } from "./kafka-batch.ts";

export const BATCH_HEADER_BYTES = 61;
export const BATCH_MAGIC_V1 = 1;
/** Kafka's record batch v2 (varint records, CRC-32C): stored whole beside ours (format/kafka-batch.ts). */
export const BATCH_MAGIC_KAFKA = 2;
/** Bytes before batchLength's payload: baseOffset (8) + batchLength (4). */
export const BATCH_LOG_OVERHEAD_BYTES = 12;
export const CRC_START = 21;

export const FIELD = {
  baseOffset: 0,
  batchLength: 8,
  leaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  firstTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
} as const;

const COMPRESSION_MASK = 0x07;
const RESERVED_ATTRIBUTE_MASK = 0xfff8;
export const COMPRESSION = { none: 0 } as const;

export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  leaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  firstTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface RecordInput {
  key?: Uint8Array | string | null;
  value: Uint8Array | string | null;
  headers?: Record<string, Uint8Array | string> | null;
  /** ms since the epoch; defaults to the batch's creation time. */
  timestamp?: number;
}

export interface BatchRecord {
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, Uint8Array> | null;
}

export interface ProducerFields {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

export const NO_PRODUCER: ProducerFields = { producerId: -1, producerEpoch: -1, baseSequence: -1 };

const TWO_POW_32 = 0x1_0000_0000;

/** Writes a safe integer as i64 without allocating a BigInt. */
export function writeInt64(view: DataView, position: number, value: number): void {
  const high = Math.floor(value / TWO_POW_32);
  view.setInt32(position, high);
  view.setUint32(position + 4, value - high * TWO_POW_32);
}

/** Reads an i64 as a number; values beyond 2^53 lose precision, which offsets never reach. */
export function readInt64(view: DataView, position: number): number {
  return view.getInt32(position) * TWO_POW_32 + view.getUint32(position + 4);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function crc32(bytes: Uint8Array): number {
  return Bun.hash.crc32(bytes) >>> 0;
}

/** The checksum a batch of `magic` carries over bytes [CRC_START, end): CRC-32 for ours, CRC-32C for Kafka's. */
export function batchCrc(magic: number, bytesFromCrcStart: Uint8Array): number {
  return magic === BATCH_MAGIC_KAFKA ? crc32c(bytesFromCrcStart) : crc32(bytesFromCrcStart);
}

function corrupt(message: string, details?: Record<string, unknown>): RunnelError {
  return new RunnelError("CORRUPT_BATCH", message, details === undefined ? {} : { details });
}

/** Reads the fixed header at `position` without checking it. */
export function readBatchHeader(bytes: Uint8Array, position = 0): BatchHeader {
  if (bytes.length - position < BATCH_HEADER_BYTES) {
    throw corrupt(`batch header needs ${BATCH_HEADER_BYTES} bytes, got ${bytes.length - position}`);
  }
  const view = viewOf(bytes);
  const at = (field: number) => position + field;
  return {
    baseOffset: readInt64(view, at(FIELD.baseOffset)),
    batchLength: view.getInt32(at(FIELD.batchLength)),
    leaderEpoch: view.getInt32(at(FIELD.leaderEpoch)),
    magic: view.getInt8(at(FIELD.magic)),
    crc: view.getUint32(at(FIELD.crc)),
    attributes: view.getUint16(at(FIELD.attributes)),
    lastOffsetDelta: view.getInt32(at(FIELD.lastOffsetDelta)),
    firstTimestamp: readInt64(view, at(FIELD.firstTimestamp)),
    maxTimestamp: readInt64(view, at(FIELD.maxTimestamp)),
    producerId: readInt64(view, at(FIELD.producerId)),
    producerEpoch: view.getInt16(at(FIELD.producerEpoch)),
    baseSequence: view.getInt32(at(FIELD.baseSequence)),
    recordCount: view.getInt32(at(FIELD.recordCount)),
  };
}

/**
 * Checks that `bytes` is exactly one well-formed batch: length, magic, reserved bits, counts,
 * timestamps and checksum. Throws CORRUPT_BATCH (or MESSAGE_TOO_LARGE) naming what is wrong.
 * The broker calls this before a batch is written; the consumer again after it is read.
 */
export function verifyBatch(bytes: Uint8Array, batchBytesMax: number = LIMITS.batchBytesMax): BatchHeader {
  if (bytes.length > batchBytesMax) {
    throw new RunnelError("MESSAGE_TOO_LARGE", `batch is ${bytes.length} bytes; the limit is ${batchBytesMax}`);
  }
  const header = readBatchHeader(bytes);
  const expectedLength = bytes.length - BATCH_LOG_OVERHEAD_BYTES;
  if (header.batchLength !== expectedLength) {
    throw corrupt(`batchLength says ${header.batchLength} but ${expectedLength} bytes follow it`);
  }
  checkHeaderFields(header);
  const actualCrc = batchCrc(header.magic, bytes.subarray(CRC_START));
  if (actualCrc !== header.crc) {
    throw corrupt(`checksum mismatch: header says ${header.crc}, bytes give ${actualCrc}`);
  }
  return header;
}

/** Header checks that need no payload: shared by verifyBatch and the log's recovery scan. */
export function checkHeaderFields(header: BatchHeader): void {
  if (header.magic === BATCH_MAGIC_KAFKA) return checkKafkaHeaderFields(header);
  if (header.magic !== BATCH_MAGIC_V1) throw corrupt(`unknown magic ${header.magic}; this broker reads magic ${BATCH_MAGIC_V1}`);
  if ((header.attributes & RESERVED_ATTRIBUTE_MASK) !== 0) throw corrupt(`reserved attribute bits are set (0x${header.attributes.toString(16)})`);
  if ((header.attributes & COMPRESSION_MASK) !== COMPRESSION.none) throw corrupt(`compression codec ${header.attributes & COMPRESSION_MASK} is not supported`);
  if (header.recordCount < 1 || header.recordCount > LIMITS.recordsPerBatchMax) throw corrupt(`recordCount ${header.recordCount} is outside 1..${LIMITS.recordsPerBatchMax}`);
  if (header.lastOffsetDelta !== header.recordCount - 1) throw corrupt(`lastOffsetDelta ${header.lastOffsetDelta} does not match recordCount ${header.recordCount}`);
  if (header.maxTimestamp < header.firstTimestamp) throw corrupt(`maxTimestamp ${header.maxTimestamp} is before firstTimestamp ${header.firstTimestamp}`);
  if (header.batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) throw corrupt(`batchLength ${header.batchLength} is shorter than the header`);
}

/** Kafka attributes: bits 0-2 codec (0 none .. 4 zstd), bit 3 timestamp type; transactions (bit 4) and control batches (bit 5) are not served yet. */
const KAFKA_ATTRIBUTES_ALLOWED = 0x000f;
const KAFKA_CODEC_MAX = 4;

/** checkHeaderFields for a Kafka (magic 2) batch: its compressed records are stored as they came. */
function checkKafkaHeaderFields(header: BatchHeader): void {
  if ((header.attributes & ~KAFKA_ATTRIBUTES_ALLOWED) !== 0) throw corrupt(`Kafka batch attributes 0x${header.attributes.toString(16)}: transactional and control batches are not supported`);
  if ((header.attributes & COMPRESSION_MASK) > KAFKA_CODEC_MAX) throw corrupt(`Kafka compression codec ${header.attributes & COMPRESSION_MASK} is unknown`);
  if (header.recordCount < 1 || header.recordCount > LIMITS.recordsPerBatchMax) throw corrupt(`recordCount ${header.recordCount} is outside 1..${LIMITS.recordsPerBatchMax}`);
  if (header.lastOffsetDelta !== header.recordCount - 1) throw corrupt(`lastOffsetDelta ${header.lastOffsetDelta} does not match recordCount ${header.recordCount}`);
  if (header.maxTimestamp < header.firstTimestamp) throw corrupt(`maxTimestamp ${header.maxTimestamp} is before firstTimestamp ${header.firstTimestamp}`);
  if (header.batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) throw corrupt(`batchLength ${header.batchLength} is shorter than the header`);
}

/** The largest timestamp a batch may carry, in ms since the epoch: the wire's integer bound. */
export const TIMESTAMP_MS_MAX = Number.MAX_SAFE_INTEGER;

/**
 * The produce path's timestamp rule (docs/protocol.md, section 3): firstTimestamp and
 * maxTimestamp within 0 .. 2^53-1 and maxTimestamp >= firstTimestamp; CORRUPT_BATCH otherwise.
 * Unlike Kafka there is no -1 for "no timestamp": every record has one (the client stamps the
 * send time). Not part of checkHeaderFields, which recovery and consumers run on stored batches:
 * a batch stored before this rule existed is still read as it is. Reads the bytes directly (no
 * DataView): this runs for every produced batch. A batch too short for a header is left to the
 * log, which refuses it as CORRUPT_BATCH.
 */
export function checkBatchTimestamps(batch: Uint8Array): void {
  if (batch.length < BATCH_HEADER_BYTES) return;
  const first = int64At(batch, FIELD.firstTimestamp);
  const max = int64At(batch, FIELD.maxTimestamp);
  if (first < 0 || first > TIMESTAMP_MS_MAX) throw corrupt(`firstTimestamp ${first} is outside 0..${TIMESTAMP_MS_MAX} (ms since the epoch)`);
  if (max < 0 || max > TIMESTAMP_MS_MAX) throw corrupt(`maxTimestamp ${max} is outside 0..${TIMESTAMP_MS_MAX} (ms since the epoch)`);
  if (max < first) throw corrupt(`maxTimestamp ${max} is before firstTimestamp ${first}`);
}

/** readInt64 on raw bytes: the big-endian i64 at `at`, as a number (exact within ±2^53). */
function int64At(bytes: Uint8Array, at: number): number {
  const high = ((bytes[at] ?? 0) << 24) | ((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0);
  const low = (((bytes[at + 4] ?? 0) << 24) | ((bytes[at + 5] ?? 0) << 16) | ((bytes[at + 6] ?? 0) << 8) | (bytes[at + 7] ?? 0)) >>> 0;
  return high * TWO_POW_32 + low;
}

/** Writes the broker-assigned base offset into the header, in place. The crc is unaffected. */
export function stampBaseOffset(bytes: Uint8Array, baseOffset: number, leaderEpoch = 0): void {
  const view = viewOf(bytes);
  writeInt64(view, FIELD.baseOffset, baseOffset);
  view.setInt32(FIELD.leaderEpoch, leaderEpoch);
}

/**
 * Rewrites a finished batch's producer fields (id, epoch, base sequence) in place and
 * recomputes its crc, which covers them. The idempotent producer uses it when a sealed batch's
 * sequence or epoch has to change before it is first sent.
 */
export function stampProducer(bytes: Uint8Array, producer: ProducerFields): void {
  const view = viewOf(bytes);
  writeInt64(view, FIELD.producerId, producer.producerId);
  view.setInt16(FIELD.producerEpoch, producer.producerEpoch);
  view.setInt32(FIELD.baseSequence, producer.baseSequence);
  view.setUint32(FIELD.crc, crc32(bytes.subarray(CRC_START)));
}

const textEncoder = new TextEncoder();

function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? textEncoder.encode(value) : value;
}

function toHeaderMap(headers: Record<string, Uint8Array | string>): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = toBytes(value);
  return out;
}

const recordEncoder = new Encoder({ ignoreUndefined: true });

/** Encodes one record as the msgpack array [timestampDelta, key, value, headers]. */
export function encodeRecord(record: RecordInput, baseTimestamp: number): Uint8Array {
  const key = record.key === undefined || record.key === null ? null : toBytes(record.key);
  const value = record.value === null ? null : toBytes(record.value);
  const headers = record.headers ? toHeaderMap(record.headers) : null;
  const timestampDelta = (record.timestamp ?? baseTimestamp) - baseTimestamp;
  return recordEncoder.encode([timestampDelta, key, value, headers]);
}

export interface BatchAssembly {
  /** Records already encoded with encodeRecord against `firstTimestamp`. */
  encodedRecords: readonly Uint8Array[];
  recordsBytes: number;
  firstTimestamp: number;
  maxTimestamp: number;
  producer?: ProducerFields;
}

/** Builds a batch (baseOffset 0, to be stamped by the broker) from pre-encoded records. */
export function assembleBatch(assembly: BatchAssembly): Uint8Array {
  const producer = assembly.producer ?? NO_PRODUCER;
  const recordCount = assembly.encodedRecords.length;
  const bytes = new Uint8Array(BATCH_HEADER_BYTES + assembly.recordsBytes);
  const view = viewOf(bytes);
  view.setInt32(FIELD.batchLength, bytes.length - BATCH_LOG_OVERHEAD_BYTES);
  view.setInt8(FIELD.magic, BATCH_MAGIC_V1);
  view.setUint16(FIELD.attributes, COMPRESSION.none);
  view.setInt32(FIELD.lastOffsetDelta, recordCount - 1);
  writeInt64(view, FIELD.firstTimestamp, assembly.firstTimestamp);
  writeInt64(view, FIELD.maxTimestamp, assembly.maxTimestamp);
  writeInt64(view, FIELD.producerId, producer.producerId);
  view.setInt16(FIELD.producerEpoch, producer.producerEpoch);
  view.setInt32(FIELD.baseSequence, producer.baseSequence);
  view.setInt32(FIELD.recordCount, recordCount);
  let position = BATCH_HEADER_BYTES;
  for (const record of assembly.encodedRecords) {
    bytes.set(record, position);
    position += record.length;
  }
  view.setUint32(FIELD.crc, crc32(bytes.subarray(CRC_START)));
  return bytes;
}

/** Encodes records into one batch. `nowMs` is the default timestamp for records without one. */
export function encodeBatch(records: readonly RecordInput[], options: { nowMs?: number; producer?: ProducerFields } = {}): Uint8Array {
  if (records.length === 0) throw new RunnelError("INVALID_REQUEST", "a batch needs at least one record");
  const nowMs = options.nowMs ?? Date.now();
  let firstTimestamp = Number.POSITIVE_INFINITY;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  for (const record of records) {
    const timestamp = record.timestamp ?? nowMs;
    if (timestamp < firstTimestamp) firstTimestamp = timestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
  }
  // firstTimestamp is the smallest, so every delta is >= 0 and msgpack encodes it compactly.
  const encodedRecords = records.map((record) => encodeRecord({ ...record, timestamp: record.timestamp ?? nowMs }, firstTimestamp));
  const recordsBytes = encodedRecords.reduce((sum, record) => sum + record.length, 0);
  const assembly: BatchAssembly = { encodedRecords, recordsBytes, firstTimestamp, maxTimestamp };
  if (options.producer) assembly.producer = options.producer;
  return assembleBatch(assembly);
}

function asBytesOrNull(value: unknown, what: string): Uint8Array | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return value;
  throw corrupt(`record ${what} is not bytes`);
}

/** Decodes a verified batch's records. The values are views into `bytes` (no copies). */
/** The record section of a batch: the bytes after its header. */
export function recordSection(bytes: Uint8Array, header: BatchHeader): Uint8Array {
  return bytes.subarray(BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES + header.batchLength);
}

export function decodeRecords(bytes: Uint8Array, header: BatchHeader = readBatchHeader(bytes), decompressedBytesMax?: number): BatchRecord[] {
  // A batch written by a Kafka client (format/kafka-batch.ts; compressed ones are decompressed, bounded).
  if (header.magic === BATCH_MAGIC_KAFKA) return decodeKafkaRecords(bytes, decompressedBytesMax);
  const section = recordSection(bytes, header);
  // The producer's shape, decoded by hand (format/record-decode.ts); anything else, and every
  // error, takes the generic decoder below.
  const fast = decodeRecordsFast(section, header.baseOffset, header.firstTimestamp, header.recordCount);
  if (fast !== null) return fast;
  const records: BatchRecord[] = [];
  for (const item of decodeMulti(section)) {
    if (!Array.isArray(item) || item.length !== 4 || typeof item[0] !== "number") throw corrupt("record is not [timestampDelta, key, value, headers]");
    const headersValue = item[3];
    let headers: Record<string, Uint8Array> | null = null;
    if (headersValue !== null && headersValue !== undefined) {
      if (typeof headersValue !== "object") throw corrupt("record headers are not a map");
      headers = {};
      for (const [name, value] of Object.entries(headersValue as Record<string, unknown>)) {
        headers[name] = asBytesOrNull(value, `header ${name}`) ?? new Uint8Array(0);
      }
    }
    records.push({
      offset: header.baseOffset + records.length,
      timestamp: header.firstTimestamp + item[0],
      key: asBytesOrNull(item[1], "key"),
      value: asBytesOrNull(item[2], "value"),
      headers,
    });
  }
  if (records.length !== header.recordCount) throw corrupt(`batch says ${header.recordCount} records but holds ${records.length}`);
  return records;
}

export interface BatchSpan {
  header: BatchHeader;
  /** Position of the batch's first byte within the scanned buffer. */
  position: number;
  /** Total bytes of the batch, header included. */
  bytes: number;
}

/**
 * Walks concatenated batches (a fetch response's records, or a log segment's bytes). Stops
 * before a trailing partial batch, which a fetch may legally end with.
 */
export function* scanBatches(bytes: Uint8Array): Generator<BatchSpan> {
  let position = 0;
  while (bytes.length - position >= BATCH_HEADER_BYTES) {
    const header = readBatchHeader(bytes, position);
    const total = BATCH_LOG_OVERHEAD_BYTES + header.batchLength;
    if (header.batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) throw corrupt(`batchLength ${header.batchLength} at position ${position} is shorter than a header`);
    if (position + total > bytes.length) return;
    yield { header, position, bytes: total };
    position += total;
  }
}
