/**
 * @module format/batch-builder
 * A streaming record-batch builder: the producer's hot path. Each record is encoded once,
 * straight into one growing buffer that already has room for the batch header, so a batch
 * of thousands of records costs a handful of allocations (the buffer's doublings) instead
 * of one array per record. The output is byte-for-byte what `assembleBatch` makes from
 * `encodeRecord` outputs (a test holds the two together), so the layout stays defined in
 * one place: src/format/record-batch.ts.
 *
 * Record encoding (msgpack, the smallest form of each value, as @msgpack/msgpack writes it):
 *
 *   0x94                                  fixarray of 4
 *   timestampDelta                        int (fixint / u8..u64 / i8..i64)
 *   key                                   bin8|bin16|bin32 <bytes>, or nil (0xc0)
 *   value                                 bin8|bin16|bin32 <bytes>, or nil
 *   headers                               map of (str -> bin), or nil
 */
import { RunnelError } from "../errors.ts";
import { KiB } from "../limits.ts";
import {
  BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, BATCH_MAGIC_V1, COMPRESSION, CRC_START, FIELD, NO_PRODUCER, crc32, writeInt64,
  type ProducerFields, type RecordInput,
} from "./record-batch.ts";

const TWO_POW_32 = 0x1_0000_0000;
/** Worst case of the fixed parts of a record: array marker + i64 delta + two bin32/nil heads + map32 head. */
const RECORD_FIXED_BYTES_MAX = 1 + 9 + 5 + 5 + 5;

export type Bytes = Uint8Array | string;

/**
 * Batch buffers to reuse, in two sizes. A builder starts in a small buffer (a partition that
 * gets a few records should not pin a whole batch of memory) unless a full-size one is idle,
 * and once it outgrows the small one moves to a full-size buffer in a single copy instead of
 * doubling. Settled batches give theirs back, and so does a builder for the small buffer it
 * outgrew, so a busy producer allocates (and zero-fills, and collects) almost no batch memory:
 * with many small batches (lingerMs 0 at a modest rate) the small buffers used to be a fresh
 * allocation per batch, most of the producer's garbage.
 */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly freeSmall: Uint8Array[] = [];
  /** Full-size buffers allocated so far (not taken from the idle ones): a diagnostic. */
  allocated = 0;

  /**
   * `buffersMax`: idle full-size buffers kept by default (a `give` may allow more, `trim` comes
   * back to it). `smallBufferBytes` 0: no small tier (every start below full size allocates).
   */
  constructor(
    readonly bufferBytes: number,
    readonly buffersMax: number,
    readonly smallBufferBytes: number = 0,
    private readonly smallBuffersMax: number = 0,
  ) {}

  /** A full-size buffer (contents undefined). */
  take(): Uint8Array {
    return this.free.pop() ?? this.allocate();
  }

  private allocate(): Uint8Array {
    this.allocated += 1;
    return new Uint8Array(this.bufferBytes);
  }

  /** A buffer of at least `bytes` to start a batch in: an idle full-size one, else a small one. */
  takeStart(bytes: number): Uint8Array {
    if (this.free.length > 0 && bytes <= this.bufferBytes) return this.free.pop()!;
    if (bytes <= this.smallBufferBytes) return this.freeSmall.pop() ?? new Uint8Array(this.smallBufferBytes);
    return new Uint8Array(bytes);
  }

  /**
   * Gives back a buffer nothing refers to any more; others (odd sizes, over the bound) go to the
   * GC. `buffersMax`: this time keep up to that many idle full-size buffers (a busy owner that
   * knows its memory budget has room: see the Producer's settle).
   */
  give(buffer: Uint8Array, buffersMax: number = this.buffersMax): void {
    if (buffer.length === this.bufferBytes) {
      if (this.free.length < buffersMax) this.free.push(buffer);
    } else if (buffer.length === this.smallBufferBytes && this.freeSmall.length < this.smallBuffersMax) {
      this.freeSmall.push(buffer);
    }
  }

  /** Leaves at most `buffersMax` (the default bound) idle full-size buffers; the rest go to the GC. */
  trim(): void {
    if (this.free.length > this.buffersMax) this.free.length = this.buffersMax;
  }

  /** Idle full-size buffers. */
  get idle(): number {
    return this.free.length;
  }

  get idleSmall(): number {
    return this.freeSmall.length;
  }
}

/**
 * Appends records into one batch buffer; `finish()` writes the header and hands the bytes over.
 *
 * `headroomBytes` leaves that many bytes free in front of the batch, in the same buffer: the
 * producer writes the request's envelope there, so envelope and batch go to the socket as one
 * contiguous chunk without copying the batch (client/produce-frame.ts).
 */
export class BatchBuilder {
  private buffer: Uint8Array;
  private view: DataView;
  private position: number;
  private count = 0;
  private firstTimestampMs = 0;
  private maxTimestampMs = 0;
  // State before the last append, so the producer can take back a record that overflowed.
  private undoPosition: number;
  private undoMaxTimestampMs = 0;

  constructor(
    initialBytes: number = 16 * KiB,
    private readonly pool: BufferPool | null = null,
    readonly headroomBytes: number = 0,
  ) {
    // A pooled buffer when one is idle (a busy producer's case); otherwise start small.
    const startBytes = Math.max(initialBytes + headroomBytes, headroomBytes + BATCH_HEADER_BYTES + 64);
    this.buffer = pool !== null ? pool.takeStart(startBytes) : new Uint8Array(startBytes);
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
    this.position = headroomBytes + BATCH_HEADER_BYTES;
    this.undoPosition = this.position;
  }

  /** The whole buffer the batch lives in (for giving back to the pool once the batch is done with). */
  get storage(): Uint8Array {
    return this.buffer;
  }

  get recordCount(): number {
    return this.count;
  }

  /** Bytes the batch would have if finished now, header included (headroom not counted). */
  get byteLength(): number {
    return this.position - this.headroomBytes;
  }

  get firstTimestamp(): number {
    return this.firstTimestampMs;
  }

  /**
   * Encodes one record at the end of the batch and returns the bytes it took. Timestamps are
   * stored as deltas from the first record's, so `timestampMs` must be a safe integer.
   */
  append(record: RecordInput, timestampMs: number): number {
    this.undoPosition = this.position;
    this.undoMaxTimestampMs = this.maxTimestampMs;
    if (this.count === 0) {
      this.firstTimestampMs = timestampMs;
      this.maxTimestampMs = timestampMs;
    } else if (timestampMs > this.maxTimestampMs) {
      this.maxTimestampMs = timestampMs;
    }
    this.reserve(recordBytesMax(record));
    this.writeByte(0x94);
    this.writeInteger(timestampMs - this.firstTimestampMs);
    this.writeBytesOrNil(record.key);
    this.writeBytesOrNil(record.value);
    this.writeHeaders(record.headers);
    this.count += 1;
    return this.position - this.undoPosition;
  }

  /** Takes back the record added by the last `append` (once). */
  undoLast(): void {
    if (this.position === this.undoPosition) return;
    this.position = this.undoPosition;
    this.maxTimestampMs = this.undoMaxTimestampMs;
    this.count -= 1;
  }

  /**
   * Writes the header and checksum and returns the batch (a view of the builder's buffer).
   * The builder must not be used afterwards: the bytes now belong to the caller.
   */
  finish(producer: ProducerFields = NO_PRODUCER): Uint8Array {
    if (this.count === 0) throw new RunnelError("INVALID_REQUEST", "a batch needs at least one record");
    const bytes = this.buffer.subarray(this.headroomBytes, this.position);
    // Every header byte is written: a pooled buffer holds an earlier batch's bytes. Through the
    // builder's own view, shifted by the headroom (no DataView per batch).
    const view = this.view;
    const at = this.headroomBytes;
    writeInt64(view, at + FIELD.baseOffset, 0);
    view.setInt32(at + FIELD.leaderEpoch, 0);
    view.setInt32(at + FIELD.batchLength, bytes.length - BATCH_LOG_OVERHEAD_BYTES);
    view.setInt8(at + FIELD.magic, BATCH_MAGIC_V1);
    view.setUint16(at + FIELD.attributes, COMPRESSION.none);
    view.setInt32(at + FIELD.lastOffsetDelta, this.count - 1);
    writeInt64(view, at + FIELD.firstTimestamp, this.firstTimestampMs);
    writeInt64(view, at + FIELD.maxTimestamp, this.maxTimestampMs);
    writeInt64(view, at + FIELD.producerId, producer.producerId);
    view.setInt16(at + FIELD.producerEpoch, producer.producerEpoch);
    view.setInt32(at + FIELD.baseSequence, producer.baseSequence);
    view.setInt32(at + FIELD.recordCount, this.count);
    view.setUint32(at + FIELD.crc, crc32(bytes.subarray(CRC_START)));
    return bytes;
  }

  private reserve(bytes: number): void {
    const needed = this.position + bytes;
    if (needed <= this.buffer.length) return;
    const pool = this.pool;
    let grown: Uint8Array;
    if (pool !== null && needed <= pool.bufferBytes && this.buffer.length < pool.bufferBytes) {
      grown = pool.take();
    } else {
      let size = this.buffer.length * 2;
      while (size < needed) size *= 2;
      grown = new Uint8Array(size);
    }
    grown.set(this.buffer.subarray(this.headroomBytes, this.position), this.headroomBytes);
    pool?.give(this.buffer); // outgrown: nothing refers to it any more
    this.buffer = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  private writeByte(byte: number): void {
    this.buffer[this.position++] = byte;
  }

  private writeInteger(value: number): void {
    const view = this.view;
    const at = this.position;
    if (value >= 0) {
      if (value < 0x80) return this.writeByte(value);
      if (value < 0x100) { this.buffer[at] = 0xcc; this.buffer[at + 1] = value; this.position += 2; return; }
      if (value < 0x10000) { this.buffer[at] = 0xcd; view.setUint16(at + 1, value); this.position += 3; return; }
      if (value < TWO_POW_32) { this.buffer[at] = 0xce; view.setUint32(at + 1, value); this.position += 5; return; }
      this.buffer[at] = 0xcf;
    } else {
      if (value >= -0x20) return this.writeByte(0xe0 | (value + 0x20));
      if (value >= -0x80) { this.buffer[at] = 0xd0; view.setInt8(at + 1, value); this.position += 2; return; }
      if (value >= -0x8000) { this.buffer[at] = 0xd1; view.setInt16(at + 1, value); this.position += 3; return; }
      if (value >= -0x80000000) { this.buffer[at] = 0xd2; view.setInt32(at + 1, value); this.position += 5; return; }
      this.buffer[at] = 0xd3;
    }
    writeInt64(view, at + 1, value);
    this.position += 9;
  }

  private writeBytesOrNil(value: Bytes | null | undefined): void {
    if (value === null || value === undefined) return this.writeByte(0xc0);
    if (typeof value === "string") return this.writeUtf8(value, BIN_MARKERS);
    this.writeLengthHeader(value.length, BIN_MARKERS);
    this.buffer.set(value, this.position);
    this.position += value.length;
  }

  private writeHeaders(headers: Record<string, Bytes> | null | undefined): void {
    if (!headers) return this.writeByte(0xc0);
    const names = Object.keys(headers);
    const count = names.length;
    if (count < 16) this.writeByte(0x80 | count);
    else if (count < 0x10000) { this.writeByte(0xde); this.view.setUint16(this.position, count); this.position += 2; }
    else { this.writeByte(0xdf); this.view.setUint32(this.position, count); this.position += 4; }
    for (const name of names) {
      this.writeUtf8(name, STR_MARKERS);
      this.writeBytesOrNil(headers[name] ?? null);
    }
  }

  private writeLengthHeader(length: number, markers: LengthMarkers): void {
    const at = this.position;
    if (markers.fix !== 0 && length < 32) { this.buffer[at] = markers.fix | length; this.position += 1; return; }
    if (length < 0x100) { this.buffer[at] = markers.b8; this.buffer[at + 1] = length; this.position += 2; return; }
    if (length < 0x10000) { this.buffer[at] = markers.b16; this.view.setUint16(at + 1, length); this.position += 3; return; }
    this.buffer[at] = markers.b32;
    this.view.setUint32(at + 1, length);
    this.position += 5;
  }

  /**
   * Writes a string as UTF-8 with a minimal length header. The header size is chosen from the
   * worst case (3 bytes per UTF-16 unit); when the real length needs a smaller header, the
   * bytes are moved back (rare: only strings of 11-85 or 86-21845 characters that are mostly ASCII).
   */
  private writeUtf8(text: string, markers: LengthMarkers): void {
    const start = this.position;
    const reserved = headerBytes(text.length * 3, markers);
    const written = this.encodeUtf8(text, start + reserved);
    const needed = headerBytes(written, markers);
    if (needed !== reserved) this.buffer.copyWithin(start + needed, start + reserved, start + reserved + written);
    this.writeLengthHeader(written, markers);
    this.position = start + needed + written;
  }

  /** ASCII fast path without allocating; anything else goes through TextEncoder.encodeInto. */
  private encodeUtf8(text: string, at: number): number {
    const buffer = this.buffer;
    const length = text.length;
    for (let index = 0; index < length; index++) {
      const code = text.charCodeAt(index);
      if (code >= 0x80) return textEncoder.encodeInto(text, buffer.subarray(at)).written;
      buffer[at + index] = code;
    }
    return length;
  }
}

interface LengthMarkers {
  /** fixstr base (0xa0), or 0 when the type has no fix form (bin). */
  fix: number;
  b8: number;
  b16: number;
  b32: number;
}

const BIN_MARKERS: LengthMarkers = { fix: 0, b8: 0xc4, b16: 0xc5, b32: 0xc6 };
const STR_MARKERS: LengthMarkers = { fix: 0xa0, b8: 0xd9, b16: 0xda, b32: 0xdb };
const textEncoder = new TextEncoder();

function headerBytes(length: number, markers: LengthMarkers): number {
  if (markers.fix !== 0 && length < 32) return 1;
  if (length < 0x100) return 2;
  if (length < 0x10000) return 3;
  return 5;
}

function bytesMax(value: Bytes | null | undefined): number {
  if (value === null || value === undefined) return 1;
  return 5 + (typeof value === "string" ? value.length * 3 : value.length);
}

/** An upper bound of a record's encoded size, so one `reserve` covers the whole append. */
export function recordBytesMax(record: RecordInput): number {
  let bytes = RECORD_FIXED_BYTES_MAX + bytesMax(record.key) + bytesMax(record.value);
  const headers = record.headers;
  if (headers) {
    for (const name of Object.keys(headers)) bytes += 5 + name.length * 3 + bytesMax(headers[name]);
  }
  return bytes;
}
