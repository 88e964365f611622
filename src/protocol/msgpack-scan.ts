/**
 * @module protocol/msgpack-scan
 * A structural pre-check of one msgpack value, run on every frame before it is decoded.
 *
 * Why: @msgpack/msgpack allocates `new Array(n)` for an array header before it reads a single
 * element, and keeps one stack entry per nesting level; its per-type length limits alone do
 * not stop a 16 MiB frame of `0x91 0x91 0x91 ...` (sixteen million nested arrays) or an
 * `array32` header claiming four billion elements. This walk reads only headers (a `bin` or
 * `str` body is skipped in O(1)), allocates nothing that depends on the input, and rejects:
 * nesting deeper than `depthMax`, more than `itemsMax` values in all, a declared length longer
 * than the bytes that are left, ext types (unused by the protocol), the never-used byte 0xc1,
 * and trailing bytes after the value.
 */
import { RunnelError } from "../errors.ts";

export interface ScanLimits {
  depthMax: number;
  itemsMax: number;
}

/** Size of the fixed part after the head byte, for heads whose value has a fixed width. */
function fixedWidth(head: number): number {
  if (head <= 0x7f || head >= 0xe0 || head === 0xc0 || head === 0xc2 || head === 0xc3) return 0;
  switch (head) {
    case 0xcc: case 0xd0: return 1;
    case 0xcd: case 0xd1: return 2;
    case 0xca: case 0xce: case 0xd2: return 4;
    case 0xcb: case 0xcf: case 0xd3: return 8;
    default: return -1;
  }
}

function invalid(message: string): RunnelError {
  return new RunnelError("INVALID_REQUEST", `malformed msgpack: ${message}`);
}

class Cursor {
  position = 0;
  constructor(readonly bytes: Uint8Array) {}

  need(count: number): void {
    if (this.bytes.length - this.position < count) throw invalid(`value at byte ${this.position} is truncated`);
  }

  uint(width: 1 | 2 | 4): number {
    this.need(width);
    const bytes = this.bytes;
    const at = this.position;
    this.position += width;
    if (width === 1) return bytes[at] ?? 0;
    if (width === 2) return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
    return (bytes[at] ?? 0) * 0x100_0000 + (((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0));
  }

  skip(count: number): void {
    this.need(count);
    this.position += count;
  }
}

/** Children (array elements, or keys + values) a container head declares; -1 for non-containers. */
function containerChildren(head: number, cursor: Cursor): number {
  if (head >= 0x80 && head <= 0x8f) return (head & 0x0f) * 2;
  if (head >= 0x90 && head <= 0x9f) return head & 0x0f;
  if (head === 0xdc) return cursor.uint(2);
  if (head === 0xdd) return cursor.uint(4);
  if (head === 0xde) return cursor.uint(2) * 2;
  if (head === 0xdf) return cursor.uint(4) * 2;
  return -1;
}

/**
 * Skips a scalar whose head byte was just read; throws on ext, float and 0xc1 — unless
 * `lenient`, which skips floats and ext values too (peekRequestId reads past them).
 */
function skipScalar(head: number, cursor: Cursor, lenient = false): void {
  // No field of this protocol is a float; a whole float would otherwise pass as an int.
  if (!lenient && (head === 0xca || head === 0xcb)) throw invalid(`a float at byte ${cursor.position - 1}: every number in this protocol is an integer, send it as a msgpack int`);
  const width = fixedWidth(head);
  if (width >= 0) return cursor.skip(width);
  if (head >= 0xa0 && head <= 0xbf) return cursor.skip(head & 0x1f);
  switch (head) {
    case 0xc4: case 0xd9: return cursor.skip(cursor.uint(1));
    case 0xc5: case 0xda: return cursor.skip(cursor.uint(2));
    case 0xc6: case 0xdb: return cursor.skip(cursor.uint(4));
    case 0xc1: throw invalid(`byte 0xc1 at ${cursor.position - 1} is never used in msgpack`);
  }
  if (lenient) return skipExt(head, cursor);
  throw invalid(`ext type (head 0x${head.toString(16)}) at byte ${cursor.position - 1} is not used by this protocol`);
}

/** Skips an ext value (fixext 1..16, ext8/16/32: a type byte, then the data). */
function skipExt(head: number, cursor: Cursor): void {
  const fixed = head >= 0xd4 && head <= 0xd8 ? 1 << (head - 0xd4) : -1;
  if (fixed > 0) return cursor.skip(1 + fixed);
  if (head === 0xc7) return cursor.skip(1 + cursor.uint(1));
  if (head === 0xc8) return cursor.skip(1 + cursor.uint(2));
  if (head === 0xc9) return cursor.skip(1 + cursor.uint(4));
  throw invalid(`head 0x${head.toString(16)} at byte ${cursor.position - 1}`);
}

/** Throws INVALID_REQUEST unless `bytes` is exactly one msgpack value within the limits. */
export function scanMsgpack(bytes: Uint8Array, limits: ScanLimits): void {
  if (bytes.length === 0) throw invalid("the frame is empty");
  const cursor = new Cursor(bytes);
  walkValue(cursor, limits, false);
  if (cursor.position !== bytes.length) throw invalid(`${bytes.length - cursor.position} bytes follow the value`);
}

/** Moves the cursor past one value, checking the limits; `lenient` skips floats and ext values. */
function walkValue(cursor: Cursor, limits: ScanLimits, lenient: boolean): void {
  const bytes = cursor.bytes;
  // remaining[i]: values still to read at nesting depth i.
  const remaining: number[] = [1];
  let items = 0;
  while (remaining.length > 0) {
    const top = remaining.length - 1;
    if (remaining[top] === 0) {
      remaining.pop();
      continue;
    }
    remaining[top] = (remaining[top] ?? 0) - 1;
    if (++items > limits.itemsMax) throw invalid(`more than ${limits.itemsMax} values`);
    const head = cursor.uint(1);
    const children = containerChildren(head, cursor);
    if (children < 0) {
      skipScalar(head, cursor, lenient);
      continue;
    }
    // Every child takes at least one byte: a longer claim is a lie, caught before allocation.
    if (children > bytes.length - cursor.position) throw invalid(`container at byte ${cursor.position} claims ${children} values in ${bytes.length - cursor.position} bytes`);
    if (children === 0) continue;
    if (remaining.length >= limits.depthMax) throw invalid(`nesting deeper than ${limits.depthMax}`);
    remaining.push(children);
  }
}

/** Reads the key `id` (in any str encoding) and returns true; else leaves the cursor where it was. */
function readIdKey(cursor: Cursor): boolean {
  const start = cursor.position;
  const head = cursor.uint(1);
  const length = head >= 0xa0 && head <= 0xbf ? head & 0x1f : head === 0xd9 ? cursor.uint(1) : head === 0xda ? cursor.uint(2) : head === 0xdb ? cursor.uint(4) : -1;
  if (length === 2 && cursor.bytes[cursor.position] === 0x69 && cursor.bytes[cursor.position + 1] === 0x64) {
    cursor.skip(2);
    return true;
  }
  cursor.position = start;
  return false;
}

/**
 * The correlation id of a request body that the scan or the decoder refused, when it can still
 * be read — so the error answer carries it (docs/protocol.md, section 1). That is when the body
 * is a map, the entries before `id` walk within the limits (floats and ext values, refused by
 * the scan, are stepped over here), and `id` is an int 0..2^32-1. Otherwise null. Reads headers
 * only, as the scan does, and never throws.
 */
export function peekRequestId(bytes: Uint8Array, limits: ScanLimits): number | null {
  try {
    const cursor = new Cursor(bytes);
    const head = cursor.uint(1);
    if (!((head >= 0x80 && head <= 0x8f) || head === 0xde || head === 0xdf)) return null;
    const entries = containerChildren(head, cursor) / 2;
    for (let entry = 0; entry < entries; entry++) {
      if (readIdKey(cursor)) return readUint32(cursor);
      walkValue(cursor, limits, true); // the key
      walkValue(cursor, limits, true); // its value
    }
    return null;
  } catch {
    return null;
  }
}

/** An int 0..2^32-1 in any msgpack integer encoding, else null. */
function readUint32(cursor: Cursor): number | null {
  const head = cursor.uint(1);
  if (head <= 0x7f) return head;
  if (head === 0xcc || head === 0xd0) return signCheck(head, cursor.uint(1), 0x80);
  if (head === 0xcd || head === 0xd1) return signCheck(head, cursor.uint(2), 0x8000);
  if (head === 0xce || head === 0xd2) return signCheck(head, cursor.uint(4), 0x8000_0000);
  if (head === 0xcf || head === 0xd3) return cursor.uint(4) === 0 ? cursor.uint(4) : null;
  return null;
}

/** A value read as unsigned; null when its head is signed and its top bit set (a negative number). */
function signCheck(head: number, value: number, topBit: number): number | null {
  return head >= 0xd0 && value >= topBit ? null : value;
}
