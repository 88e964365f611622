/**
 * @module listeners/kafka/codec
 * One reader and one writer for every Kafka message we serve, at any version: they walk a
 * message's definition (definitions.ts) instead of repeating per-version code. Sans-IO: bytes in,
 * plain objects out, and back; nothing here touches a socket.
 *
 * Wire grammar (all integers big-endian; "flexible" = the message's flexible versions, KIP-482):
 *
 *   int8 | int16 | int32 | int64 | bool(1 byte) | uuid(16 bytes)
 *   string   : int16 length (-1 = null) + UTF-8        flexible: uvarint length+1 (0 = null)
 *   bytes    : int32 length (-1 = null) + bytes         flexible: uvarint length+1 (0 = null)
 *   records  : as bytes (a view into the frame; never copied); on output also a file slice
 *   array    : int32 count (-1 = null) + items          flexible: uvarint count+1 (0 = null)
 *   struct   : its fields in order, then (flexible only) the tagged fields:
 *              uvarint n, then n x (uvarint tag, uvarint size, value)
 *
 * Limits: every length and count is checked against the bytes left in the frame BEFORE
 * anything is allocated, so an absurd or negative length is refused (INVALID_REQUEST) whatever
 * the frame size; arrays also stop at KAFKA_ARRAY_ITEMS_MAX. Values: int64 fields are JS
 * numbers (exact within ±2^53, which offsets, ids and timestamps stay in); uuids are 16-byte
 * Uint8Arrays.
 */
import { RunnelError } from "../../errors.ts";
import type { ReadSlice } from "../../log/api.ts";
import { type FieldDef, type MessageDef, inVersions } from "./definitions.ts";

/** Items in one array, whatever the frame size (topics x partitions of a big request stay far below). */
export const KAFKA_ARRAY_ITEMS_MAX = 1_000_000;
const TWO_POW_32 = 0x1_0000_0000;
const UUID_BYTES = 16;
/** A bytes value at least this long is queued as its own output piece instead of copied. */
const UNCOPIED_BYTES_MIN = 4096;

export type KafkaValue = number | boolean | string | Uint8Array | null | KafkaStruct | KafkaValue[] | FileRecords;
export interface KafkaStruct {
  [field: string]: KafkaValue | undefined;
}
/** A records field sent from a log file (sendfile), not from memory. */
export interface FileRecords {
  kind: "file";
  slice: ReadSlice;
}

function malformed(message: string): RunnelError {
  return new RunnelError("INVALID_REQUEST", `malformed Kafka message: ${message}`);
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

export class KafkaReader {
  position: number;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    position = 0,
    private readonly end = bytes.length,
  ) {
    this.position = position;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.end - this.position;
  }

  private need(count: number, what: string): void {
    if (count > this.end - this.position) throw malformed(`${what} needs ${count} bytes, ${this.end - this.position} left`);
  }

  int8(): number {
    this.need(1, "int8");
    return this.view.getInt8(this.position++);
  }
  int16(): number {
    this.need(2, "int16");
    const value = this.view.getInt16(this.position);
    this.position += 2;
    return value;
  }
  int32(): number {
    this.need(4, "int32");
    const value = this.view.getInt32(this.position);
    this.position += 4;
    return value;
  }
  int64(): number {
    this.need(8, "int64");
    const value = this.view.getInt32(this.position) * TWO_POW_32 + this.view.getUint32(this.position + 4);
    this.position += 8;
    return value;
  }
  float64(): number {
    this.need(8, "float64");
    const value = this.view.getFloat64(this.position);
    this.position += 8;
    return value;
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  uuid(): Uint8Array {
    return this.take(UUID_BYTES, "uuid");
  }
  /** Unsigned varint of at most 32 bits (5 bytes). */
  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift <= 28; shift += 7) {
      this.need(1, "varint");
      const byte = this.bytes[this.position++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw malformed("varint longer than 5 bytes");
  }
  take(count: number, what: string): Uint8Array {
    this.need(count, what);
    const view = this.bytes.subarray(this.position, this.position + count);
    this.position += count;
    return view;
  }
  /** A length or count: -1 means null; other negatives and lengths past the frame are refused here. */
  length(flexible: boolean, wide: boolean, what: string, itemBytesMin: number): number {
    const raw = flexible ? this.uvarint() - 1 : wide ? this.int32() : this.int16();
    if (raw < -1) throw malformed(`${what} has negative length ${raw}`);
    if (raw > 0 && raw * itemBytesMin > this.remaining) throw malformed(`${what} declares ${raw} items/bytes but ${this.remaining} bytes are left`);
    return raw;
  }
  string(flexible: boolean, what: string): string | null {
    const length = this.length(flexible, false, what, 1);
    if (length < 0) return null;
    try {
      return textDecoder.decode(this.take(length, what));
    } catch (error) {
      if (error instanceof RunnelError) throw error;
      throw malformed(`${what} is not valid UTF-8`);
    }
  }
  bytesField(flexible: boolean, what: string): Uint8Array | null {
    const length = this.length(flexible, true, what, 1);
    return length < 0 ? null : this.take(length, what);
  }
}

export class KafkaWriter {
  private buffer = new Uint8Array(256);
  private view = new DataView(this.buffer.buffer);
  private position = 0;
  /** Finished pieces before the current buffer (cut at each file slice). */
  private readonly parts: Array<Uint8Array | ReadSlice> = [];
  private partsBytes = 0;

  private room(count: number): void {
    if (this.position + count <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.position + count) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.position));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  int8(value: number): void {
    this.room(1);
    this.view.setInt8(this.position++, value);
  }
  int16(value: number): void {
    this.room(2);
    this.view.setInt16(this.position, value);
    this.position += 2;
  }
  int32(value: number): void {
    this.room(4);
    this.view.setInt32(this.position, value);
    this.position += 4;
  }
  int64(value: number): void {
    this.room(8);
    const high = Math.floor(value / TWO_POW_32);
    this.view.setInt32(this.position, high);
    this.view.setUint32(this.position + 4, value - high * TWO_POW_32);
    this.position += 8;
  }
  float64(value: number): void {
    this.room(8);
    this.view.setFloat64(this.position, value);
    this.position += 8;
  }
  uvarint(value: number): void {
    let rest = value;
    while (rest >= 0x80) {
      this.int8Raw((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    this.int8Raw(rest);
  }
  private int8Raw(byte: number): void {
    this.room(1);
    this.buffer[this.position++] = byte;
  }
  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buffer.set(bytes, this.position);
    this.position += bytes.length;
  }
  length(flexible: boolean, wide: boolean, length: number): void {
    if (flexible) this.uvarint(length + 1);
    else if (wide) this.int32(length);
    else this.int16(length);
  }
  /** Ends the in-memory piece and queues `bytes` after it, not copied (large records fields). */
  part(bytes: Uint8Array): void {
    this.cut();
    this.parts.push(bytes);
    this.partsBytes += bytes.length;
  }
  /** Ends the in-memory piece and queues a file slice after it. */
  slice(slice: ReadSlice): void {
    this.cut();
    this.parts.push(slice);
    this.partsBytes += slice.length;
  }
  private cut(): void {
    const piece = this.buffer.slice(0, this.position);
    this.parts.push(piece);
    this.partsBytes += piece.length;
    this.position = 0;
  }
  /** The output: in-memory pieces and file slices in order, and their total size. */
  finish(): { parts: Array<Uint8Array | ReadSlice>; bytes: number } {
    this.cut();
    return { parts: this.parts, bytes: this.partsBytes };
  }
  /** The output as one array (no file slices allowed): tests and small frames. */
  finishBytes(): Uint8Array {
    if (this.parts.length === 0) return this.buffer.slice(0, this.position);
    const { parts, bytes } = this.finish();
    const joined = new Uint8Array(bytes);
    let position = 0;
    for (const part of parts) {
      if (!(part instanceof Uint8Array)) throw new Error("finishBytes on a writer holding file slices");
      joined.set(part, position);
      position += part.length;
    }
    return joined;
  }
}

// ---- walking a definition ---------------------------------------------------------------

function isFlexible(message: MessageDef, version: number): boolean {
  return message.flexible !== null && version >= message.flexible;
}

/** Smallest bytes one item of an array field can take (the pre-allocation bound). */
function itemBytesMin(field: FieldDef): number {
  switch (field.type) {
    case "[]int32":
      return 4;
    case "[]int64":
      return 8;
    default:
      return 1;
  }
}

export function readStruct(reader: KafkaReader, fields: readonly FieldDef[], version: number, flexible: boolean): KafkaStruct {
  const out: KafkaStruct = {};
  for (const field of fields) {
    if (!inVersions(field.versions, version)) continue;
    if (flexible && field.tag !== undefined && inVersions(field.taggedVersions, version)) continue;
    out[field.name] = readField(reader, field, version, flexible);
  }
  if (flexible) readTaggedFields(reader, fields, version, out);
  return out;
}

function readTaggedFields(reader: KafkaReader, fields: readonly FieldDef[], version: number, out: KafkaStruct): void {
  const count = reader.uvarint();
  if (count > reader.remaining) throw malformed(`${count} tagged fields declared, ${reader.remaining} bytes left`);
  for (let index = 0; index < count; index++) {
    const tag = reader.uvarint();
    const size = reader.uvarint();
    const body = reader.take(size, `tagged field ${tag}`);
    const field = fields.find((candidate) => candidate.tag === tag && inVersions(candidate.taggedVersions, version));
    if (field === undefined) continue; // unknown tags are skipped, as Kafka does
    const inner = new KafkaReader(body);
    out[field.name] = readField(inner, field, version, true);
  }
}

function nullable(field: FieldDef, version: number): boolean {
  return field.nullableVersions !== undefined && inVersions(field.nullableVersions, version);
}

function refuseNull(field: FieldDef, version: number): never {
  throw malformed(`field ${field.name} is null, which version ${version} does not allow`);
}

function readField(reader: KafkaReader, field: FieldDef, version: number, flexible: boolean): KafkaValue {
  switch (field.type) {
    case "int8":
      return reader.int8();
    case "int16":
      return reader.int16();
    case "int32":
      return reader.int32();
    case "int64":
      return reader.int64();
    case "float64":
      return reader.float64();
    case "bool":
      return reader.bool();
    case "uuid":
      return reader.uuid();
    case "string": {
      const value = reader.string(flexible, field.name);
      return value === null && !nullable(field, version) ? refuseNull(field, version) : value;
    }
    case "bytes":
    case "records": {
      const value = reader.bytesField(flexible, field.name);
      return value === null && !nullable(field, version) ? refuseNull(field, version) : value;
    }
    case "struct":
      return readStruct(reader, field.fields ?? [], version, flexible);
    default:
      return readArray(reader, field, version, flexible);
  }
}

function readArray(reader: KafkaReader, field: FieldDef, version: number, flexible: boolean): KafkaValue[] | null {
  const count = reader.length(flexible, true, field.name, itemBytesMin(field));
  if (count < 0) return nullable(field, version) ? null : refuseNull(field, version);
  if (count > KAFKA_ARRAY_ITEMS_MAX) throw malformed(`${field.name} has ${count} items; the limit is ${KAFKA_ARRAY_ITEMS_MAX}`);
  const items: KafkaValue[] = [];
  for (let index = 0; index < count; index++) {
    if (field.type === "[]int32") items.push(reader.int32());
    else if (field.type === "[]int64") items.push(reader.int64());
    else if (field.type === "[]string") {
      const value = reader.string(flexible, field.name);
      if (value === null) throw malformed(`${field.name} holds a null string`);
      items.push(value);
    } else items.push(readStruct(reader, field.fields ?? [], version, flexible));
  }
  return items;
}

export function writeStruct(writer: KafkaWriter, fields: readonly FieldDef[], version: number, flexible: boolean, value: KafkaStruct): void {
  const tagged: FieldDef[] = [];
  for (const field of fields) {
    if (!inVersions(field.versions, version)) continue;
    if (flexible && field.tag !== undefined && inVersions(field.taggedVersions, version)) {
      if (value[field.name] !== undefined) tagged.push(field);
      continue;
    }
    const given = value[field.name];
    // A handler's bug, not the peer's: a null where the version has no null would be read as "" or [].
    if (given === null && !inVersions(field.nullableVersions, version)) throw new Error(`${field.name} is null, which version ${version} does not allow`);
    writeField(writer, field, version, flexible, given === undefined ? defaultOf(field) : given);
  }
  if (!flexible) return;
  writer.uvarint(tagged.length);
  for (const field of tagged.sort((a, b) => (a.tag ?? 0) - (b.tag ?? 0))) {
    const inner = new KafkaWriter();
    writeField(inner, field, version, true, value[field.name] ?? null);
    const bytes = inner.finishBytes();
    writer.uvarint(field.tag ?? 0);
    writer.uvarint(bytes.length);
    writer.raw(bytes);
  }
}

/** What an absent field is written as: its declared default, else zero, empty or null. */
function defaultOf(field: FieldDef): KafkaValue {
  if (field.default !== undefined) return field.default;
  switch (field.type) {
    case "int8":
    case "int16":
    case "int32":
    case "int64":
    case "float64":
      return 0;
    case "bool":
      return false;
    case "uuid":
      return new Uint8Array(UUID_BYTES);
    case "string":
      return "";
    case "bytes":
    case "records":
      return new Uint8Array(0);
    case "struct":
      return {};
    default:
      return [];
  }
}

function writeField(writer: KafkaWriter, field: FieldDef, version: number, flexible: boolean, value: KafkaValue): void {
  switch (field.type) {
    case "int8":
      return writer.int8(value as number);
    case "int16":
      return writer.int16(value as number);
    case "int32":
      return writer.int32(value as number);
    case "int64":
      return writer.int64(value as number);
    case "float64":
      return writer.float64(value as number);
    case "bool":
      return writer.int8(value === true ? 1 : 0);
    case "uuid":
      return writer.raw(value as Uint8Array);
    case "string":
      return writeString(writer, flexible, value as string | null);
    case "bytes":
    case "records":
      return writeBytes(writer, flexible, value as Uint8Array | FileRecords | null);
    case "struct":
      return writeStruct(writer, field.fields ?? [], version, flexible, value as KafkaStruct);
    default:
      return writeArray(writer, field, version, flexible, value as KafkaValue[] | null);
  }
}

function writeString(writer: KafkaWriter, flexible: boolean, value: string | null): void {
  if (value === null) return writer.length(flexible, false, -1);
  const bytes = textEncoder.encode(value);
  writer.length(flexible, false, bytes.length);
  writer.raw(bytes);
}

function writeBytes(writer: KafkaWriter, flexible: boolean, value: Uint8Array | FileRecords | null): void {
  if (value === null) return writer.length(flexible, true, -1);
  if (value instanceof Uint8Array) {
    writer.length(flexible, true, value.length);
    // Large record sets (a produced batch, a converted fetch answer) go out as their own piece.
    return value.length >= UNCOPIED_BYTES_MIN ? writer.part(value) : writer.raw(value);
  }
  writer.length(flexible, true, value.slice.length);
  writer.slice(value.slice);
}

function writeArray(writer: KafkaWriter, field: FieldDef, version: number, flexible: boolean, items: KafkaValue[] | null): void {
  if (items === null) return writer.length(flexible, true, -1);
  writer.length(flexible, true, items.length);
  for (const item of items) {
    if (field.type === "[]int32") writer.int32(item as number);
    else if (field.type === "[]int64") writer.int64(item as number);
    else if (field.type === "[]string") writeString(writer, flexible, item as string);
    else writeStruct(writer, field.fields ?? [], version, flexible, item as KafkaStruct);
  }
}

// ---- messages -----------------------------------------------------------------------------

/** Reads a whole message body; bytes left over are refused (a body of another version, or junk). */
export function decodeMessage(message: MessageDef, version: number, bytes: Uint8Array, position = 0): KafkaStruct {
  const reader = new KafkaReader(bytes, position);
  const value = readStruct(reader, message.fields, version, isFlexible(message, version));
  if (reader.remaining !== 0) throw malformed(`${reader.remaining} bytes left after ${message.name} v${version}`);
  return value;
}

export function encodeMessage(message: MessageDef, version: number, value: KafkaStruct, writer = new KafkaWriter()): KafkaWriter {
  writeStruct(writer, message.fields, version, isFlexible(message, version), value);
  return writer;
}

export { isFlexible };

/**
 * A decoded field seen as the handler's typed view of it. The codec built the value from the
 * message definition, so its shape is the definition's: this cast is the one place that trusts it.
 */
export function fieldAs<T>(value: KafkaValue | undefined): T {
  return value as unknown as T;
}
