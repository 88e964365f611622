/**
 * @module format/lz4
 * A small LZ4 frame decompressor (pure TypeScript, so it works inside `bun build --compile`)
 * for Kafka batches, which carry their records as LZ4 frames (KIP-57: the standard frame
 * format). Decompression only; output bounded by `bytesMax`. Checksums inside the frame (header,
 * block, content xxHash32) are skipped, not verified: the batch's CRC-32C already covers these
 * bytes and was checked.
 *
 * Frame: magic 04 22 4D 18, FLG (version 01 in bits 7-6; bit 4 block checksums; bit 3 content
 * size; bit 2 content checksum; bit 0 dictionary id), BD (block max size in bits 6-4),
 * [content size u64], [dict id u32], header checksum u8; then blocks, each u32 little-endian
 * size (high bit set = stored uncompressed; 0 = end mark), data, [block checksum u32]; after
 * the end mark [content checksum u32]. Skippable frames (magic 5x 2A 4D 18) are skipped.
 * Several frames may follow one another.
 *
 * Block: sequences of token (literal length in the high nibble, match length - 4 in the low;
 * 15 means more length bytes follow, each added, until one is not 255), literals, then (except
 * after the last literals) a u16 little-endian match offset.
 */
import { RunnelError } from "../errors.ts";
import { InflateBuffer } from "./inflate-buffer.ts";

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_BYTES_MAX_BY_CODE: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };
const FLAG_BLOCK_CHECKSUM = 0x10;
const FLAG_CONTENT_SIZE = 0x08;
const FLAG_CONTENT_CHECKSUM = 0x04;
const FLAG_DICT_ID = 0x01;
const UNCOMPRESSED_BIT = 0x80000000;

function corrupt(message: string): RunnelError {
  return new RunnelError("CORRUPT_BATCH", `lz4: ${message}`);
}

/** Decompresses one or more LZ4 frames into at most `bytesMax` bytes. */
export function lz4Decompress(bytes: Uint8Array, bytesMax: number): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new InflateBuffer(bytesMax, "lz4", bytes.length * 3);
  let position = 0;
  while (position < bytes.length) {
    if (position + 4 > bytes.length) throw corrupt("frame magic cut short");
    const magic = view.getUint32(position, true);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      const skipBytes = position + 8 <= bytes.length ? view.getUint32(position + 4, true) : -1;
      if (skipBytes < 0 || position + 8 + skipBytes > bytes.length) throw corrupt("skippable frame cut short");
      position += 8 + skipBytes;
      continue;
    }
    if (magic !== FRAME_MAGIC) throw corrupt(`magic 0x${magic.toString(16)} is not an LZ4 frame`);
    position = decodeFrame(bytes, view, position + 4, out);
  }
  return out.bytes();
}

/** One frame after its magic; returns the position after it. */
function decodeFrame(bytes: Uint8Array, view: DataView, start: number, out: InflateBuffer): number {
  let position = start;
  if (position + 3 > bytes.length) throw corrupt("frame header cut short");
  const flags = bytes[position] as number;
  const blockDescriptor = bytes[position + 1] as number;
  if (flags >>> 6 !== 1) throw corrupt(`frame version ${flags >>> 6}`);
  const blockBytesMax = BLOCK_BYTES_MAX_BY_CODE[(blockDescriptor >>> 4) & 0x07];
  if (blockBytesMax === undefined) throw corrupt(`block size code ${(blockDescriptor >>> 4) & 0x07}`);
  position += 2 + ((flags & FLAG_CONTENT_SIZE) !== 0 ? 8 : 0) + ((flags & FLAG_DICT_ID) !== 0 ? 4 : 0) + 1;
  const blockChecksumBytes = (flags & FLAG_BLOCK_CHECKSUM) !== 0 ? 4 : 0;
  for (;;) {
    if (position + 4 > bytes.length) throw corrupt("block size cut short");
    const word = view.getUint32(position, true);
    position += 4;
    if (word === 0) break;
    const blockBytes = (word & ~UNCOMPRESSED_BIT) >>> 0;
    if (blockBytes > blockBytesMax || position + blockBytes + blockChecksumBytes > bytes.length) throw corrupt(`block of ${blockBytes} bytes passes the frame's end or its ${blockBytesMax}-byte bound`);
    const block = bytes.subarray(position, position + blockBytes);
    if ((word & UNCOMPRESSED_BIT) !== 0) out.append(block);
    else decodeBlock(block, out);
    position += blockBytes + blockChecksumBytes;
  }
  return position + ((flags & FLAG_CONTENT_CHECKSUM) !== 0 ? 4 : 0);
}

/** Reads an LZ4 length continuation (bytes added until one is not 255). */
function extendLength(block: Uint8Array, cursor: { position: number }, base: number): number {
  let length = base;
  for (;;) {
    if (cursor.position >= block.length) throw corrupt("length cut short");
    const byte = block[cursor.position++] as number;
    length += byte;
    if (byte !== 255) return length;
  }
}

/** One compressed block, appended to `out` (matches may reach into earlier blocks: linked mode). */
function decodeBlock(block: Uint8Array, out: InflateBuffer): void {
  const cursor = { position: 0 };
  while (cursor.position < block.length) {
    const token = block[cursor.position++] as number;
    let literalBytes = token >>> 4;
    if (literalBytes === 15) literalBytes = extendLength(block, cursor, 15);
    if (cursor.position + literalBytes > block.length) throw corrupt("literals pass the block's end");
    out.append(block.subarray(cursor.position, cursor.position + literalBytes));
    cursor.position += literalBytes;
    if (cursor.position === block.length) return; // the last sequence has literals only
    if (cursor.position + 2 > block.length) throw corrupt("match offset cut short");
    const distance = (block[cursor.position] as number) | ((block[cursor.position + 1] as number) << 8);
    cursor.position += 2;
    let matchBytes = token & 0x0f;
    if (matchBytes === 15) matchBytes = extendLength(block, cursor, 15);
    out.copyMatch(distance, matchBytes + 4);
  }
}
