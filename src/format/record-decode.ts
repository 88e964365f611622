/**
 * @module format/record-decode
 * The consumer's hot path: decodes a batch's record section by hand for the one shape the
 * producer writes — `[timestampDelta: int, key: bin|nil, value: bin|nil, headers: nil]` — with
 * no generic msgpack machinery (no decoder state stack, no array per record). Keys and values
 * are views into the batch, as before. Anything else (headers present, strings where bytes
 * belong, a malformed record, a count that does not match) returns null, and the caller falls
 * back to the generic decoder, which keeps the one definition of what is valid and of each
 * error's message. About 3x faster than the generic path on 100-byte records
 * (bench/client-decode.bench.ts).
 *
 * Also the consumer's allocation-free walk over a fetch answer's batches (`wholeBatchBytesAt`,
 * `verifyBatchAt`): a header object, a DataView and a subarray per batch per pass were most of
 * the consumer's per-fetch garbage, and so of its GC pauses (architecture.md, L1). They defer
 * to record-batch.ts for every decision that fails: that file keeps the one definition of a
 * valid batch and of each error's message.
 */
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, type BatchHeader, type BatchRecord, CRC_START, FIELD, checkHeaderFields, crc32, scanBatches, verifyBatch } from "./record-batch.ts";
import { LIMITS } from "../limits.ts";

/**
 * Records of `section` (the bytes after the batch header), or null when the fast path does not
 * apply. `baseOffset`/`firstTimestamp` come from the verified header.
 */
export function decodeRecordsFast(section: Uint8Array, baseOffset: number, firstTimestamp: number, recordCount: number): BatchRecord[] | null {
  const records: BatchRecord[] = [];
  const ok = decodeRecordsFastInto(section, baseOffset, firstTimestamp, recordCount, 0, makeBatchRecord, records);
  return ok ? records : null;
}

function makeBatchRecord(offset: number, timestamp: number, key: Uint8Array | null, value: Uint8Array | null): BatchRecord {
  return { offset, timestamp, key, value, headers: null };
}

/** Builds the caller's object for one record (the Consumer builds its Message directly). */
export type RecordFactory<T> = (offset: number, timestamp: number, key: Uint8Array | null, value: Uint8Array | null) => T;

/**
 * The fast path, appending `make(...)` for each record at or above `fromOffset` to `out`: no
 * intermediate record object, so the consumer allocates one object per message, not two.
 * Returns false when the fast path does not apply; `out` is then as it was on entry.
 */
export function decodeRecordsFastInto<T>(section: Uint8Array, baseOffset: number, firstTimestamp: number, recordCount: number, fromOffset: number, make: RecordFactory<T>, out: T[]): boolean {
  return decodeRecordRangeInto(section, 0, section.length, baseOffset, firstTimestamp, recordCount, fromOffset, make, out);
}

/**
 * `decodeRecordsFastInto` over `section[start, end)` of a larger buffer (a whole fetch answer),
 * so the caller needs no subarray per batch.
 */
export function decodeRecordRangeInto<T>(section: Uint8Array, start: number, end: number, baseOffset: number, firstTimestamp: number, recordCount: number, fromOffset: number, make: RecordFactory<T>, out: T[]): boolean {
  const lengthOnEntry = out.length;
  let position = start;
  for (let index = 0; index < recordCount; index++) {
    if (position >= end || section[position] !== 0x94) return rollBack(out, lengthOnEntry);
    position += 1;
    const delta = readInteger(section, position, end);
    if (delta === null) return rollBack(out, lengthOnEntry);
    position = cursor;
    const key = readBytes(section, position, end);
    if (key === undefined) return rollBack(out, lengthOnEntry);
    position = cursor;
    const value = readBytes(section, position, end);
    if (value === undefined) return rollBack(out, lengthOnEntry);
    position = cursor;
    if (position >= end || section[position] !== 0xc0) return rollBack(out, lengthOnEntry); // headers present: generic path
    position += 1;
    const offset = baseOffset + index;
    if (offset >= fromOffset) out.push(make(offset, firstTimestamp + delta, key, value));
  }
  return position === end || rollBack(out, lengthOnEntry);
}

function rollBack<T>(out: T[], length: number): false {
  out.length = length;
  return false;
}

/** Position after the last value read; module state instead of a result object per value. */
let cursor = 0;

function readInteger(bytes: Uint8Array, at: number, end: number): number | null {
  const head = bytes[at]!;
  if (head <= 0x7f) {
    cursor = at + 1;
    return head;
  }
  if (head >= 0xe0) {
    cursor = at + 1;
    return head - 0x100;
  }
  const width = head === 0xcc || head === 0xd0 ? 1 : head === 0xcd || head === 0xd1 ? 2 : head === 0xce || head === 0xd2 ? 4 : head === 0xcf || head === 0xd3 ? 8 : 0;
  if (width === 0 || at + 1 + width > end) return null;
  cursor = at + 1 + width;
  // Read byte by byte: a DataView here was an allocation per record with a delta above 127 ms.
  const first = at + 1;
  switch (head) {
    case 0xcc: return bytes[first]!;
    case 0xcd: return uint16At(bytes, first);
    case 0xce: return uint32At(bytes, first);
    case 0xd0: return (bytes[first]! << 24) >> 24;
    case 0xd1: return (uint16At(bytes, first) << 16) >> 16;
    case 0xd2: return uint32At(bytes, first) | 0;
    default: {
      // 64-bit: only values a double holds exactly are taken here; the rest go the generic way.
      const high = head === 0xcf ? uint32At(bytes, first) : uint32At(bytes, first) | 0;
      const value = high * 0x1_0000_0000 + uint32At(bytes, first + 4);
      return Number.isSafeInteger(value) ? value : null;
    }
  }
}

function uint16At(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

/** Big-endian u32 (the batch header's and msgpack's byte order). */
function uint32At(bytes: Uint8Array, at: number): number {
  return bytes[at]! * 0x100_0000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}

function int32At(bytes: Uint8Array, at: number): number {
  return uint32At(bytes, at) | 0;
}

/** A big-endian i64 as a number, as record-batch's readInt64 reads it. */
function int64At(bytes: Uint8Array, at: number): number {
  return int32At(bytes, at) * 0x1_0000_0000 + uint32At(bytes, at + 4);
}

/** A bin (as a view) or nil; undefined when it is anything else or runs past the end. */
function readBytes(bytes: Uint8Array, at: number, end: number): Uint8Array | null | undefined {
  if (at >= end) return undefined;
  const head = bytes[at]!;
  if (head === 0xc0) {
    cursor = at + 1;
    return null;
  }
  let length: number;
  let start: number;
  if (head === 0xc4) {
    if (at + 2 > end) return undefined;
    length = bytes[at + 1]!;
    start = at + 2;
  } else if (head === 0xc5) {
    if (at + 3 > end) return undefined;
    length = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    start = at + 3;
  } else if (head === 0xc6) {
    if (at + 5 > end) return undefined;
    length = bytes[at + 1]! * 0x100_0000 + ((bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!);
    start = at + 5;
  } else {
    return undefined;
  }
  if (start + length > end) return undefined;
  cursor = start + length;
  return bytes.subarray(start, start + length);
}

// ------------------------------------------------------------ batches without objects

/**
 * Bytes of the whole batch starting at `position` of concatenated batches, or 0 when what is
 * left is not a whole batch (a fetch may legally end with a partial one): `scanBatches`'s walk,
 * one step, with no header object. A batchLength too short for a header throws CORRUPT_BATCH,
 * through scanBatches itself, with its message.
 */
export function wholeBatchBytesAt(bytes: Uint8Array, position: number): number {
  if (bytes.length - position < BATCH_HEADER_BYTES) return 0;
  const batchLength = int32At(bytes, position + FIELD.batchLength);
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) {
    for (const _span of scanBatches(bytes)) continue; // throws at this batch
    throw new Error(`scanBatches accepted batchLength ${batchLength} at position ${position}`);
  }
  const total = BATCH_LOG_OVERHEAD_BYTES + batchLength;
  return position + total > bytes.length ? 0 : total;
}

/** baseOffset of the batch at `position` (unchecked, like readBatchHeader). */
export function batchBaseOffsetAt(bytes: Uint8Array, position: number): number {
  return int64At(bytes, position + FIELD.baseOffset);
}

/** lastOffsetDelta of the batch at `position` (unchecked). */
export function batchLastOffsetDeltaAt(bytes: Uint8Array, position: number): number {
  return int32At(bytes, position + FIELD.lastOffsetDelta);
}

/** A header object to fill again and again (`verifyBatchAt`). */
export function scratchBatchHeader(): BatchHeader {
  return { baseOffset: 0, batchLength: 0, leaderEpoch: 0, magic: 0, crc: 0, attributes: 0, lastOffsetDelta: 0, firstTimestamp: 0, maxTimestamp: 0, producerId: 0, producerEpoch: 0, baseSequence: 0, recordCount: 0 };
}

/**
 * `verifyBatch` of `bytes[position, position + total)` (total from `wholeBatchBytesAt`), filling
 * `into` instead of returning a new header. Exactly as strict: the same checks (the header's
 * through record-batch's own checkHeaderFields); any failure is thrown by verifyBatch itself.
 */
export function verifyBatchAt(bytes: Uint8Array, position: number, total: number, into: BatchHeader): BatchHeader {
  readBatchHeaderInto(bytes, position, into);
  let valid = total <= LIMITS.batchBytesMax && into.batchLength === total - BATCH_LOG_OVERHEAD_BYTES;
  if (valid) {
    try {
      checkHeaderFields(into);
    } catch {
      valid = false;
    }
  }
  if (valid && crc32(bytes.subarray(position + CRC_START, position + total)) === into.crc) return into;
  return verifyBatch(bytes.subarray(position, position + total)); // throws, with its message
}

/** record-batch's readBatchHeader into an existing object (bounds checked by the caller). */
function readBatchHeaderInto(bytes: Uint8Array, position: number, into: BatchHeader): void {
  into.baseOffset = int64At(bytes, position + FIELD.baseOffset);
  into.batchLength = int32At(bytes, position + FIELD.batchLength);
  into.leaderEpoch = int32At(bytes, position + FIELD.leaderEpoch);
  into.magic = (bytes[position + FIELD.magic]! << 24) >> 24;
  into.crc = uint32At(bytes, position + FIELD.crc);
  into.attributes = uint16At(bytes, position + FIELD.attributes);
  into.lastOffsetDelta = int32At(bytes, position + FIELD.lastOffsetDelta);
  into.firstTimestamp = int64At(bytes, position + FIELD.firstTimestamp);
  into.maxTimestamp = int64At(bytes, position + FIELD.maxTimestamp);
  into.producerId = int64At(bytes, position + FIELD.producerId);
  into.producerEpoch = (uint16At(bytes, position + FIELD.producerEpoch) << 16) >> 16;
  into.baseSequence = int32At(bytes, position + FIELD.baseSequence);
  into.recordCount = int32At(bytes, position + FIELD.recordCount);
}
