/**
 * @module format/snappy
 * A small Snappy decompressor (pure TypeScript, so it works inside `bun build --compile`) for
 * Kafka batches: raw Snappy blocks, as librdkafka writes them, and the xerial "snappy-java"
 * stream the Java client writes. Decompression only; output bounded by `bytesMax`.
 *
 * Raw block: uncompressed length (LEB128 varint), then elements, each led by a tag byte whose
 * low 2 bits say the kind:
 *   00 literal   length-1 in the tag's high 6 bits (60..63: 1..4 more little-endian bytes)
 *   01 copy      length 4..11 = 4 + bits 2-4, offset 11 bits = bits 5-7 << 8 | next byte
 *   10 copy      length 1..64 = 1 + bits 2-7, offset = next 2 bytes little-endian
 *   11 copy      length 1..64 = 1 + bits 2-7, offset = next 4 bytes little-endian
 *
 * xerial stream: 8-byte magic 82 'S' 'N' 'A' 'P' 'P' 'Y' 00, int32 version, int32 compatible
 * version, then chunks of int32 big-endian length + one raw block.
 */
import { RunnelError } from "../errors.ts";
import { InflateBuffer } from "./inflate-buffer.ts";

const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
const XERIAL_HEADER_BYTES = 16;

function corrupt(message: string): RunnelError {
  return new RunnelError("CORRUPT_BATCH", `snappy: ${message}`);
}

function isXerial(bytes: Uint8Array): boolean {
  return bytes.length >= XERIAL_HEADER_BYTES && XERIAL_MAGIC.every((byte, index) => bytes[index] === byte);
}

/** Decompresses raw Snappy or a xerial stream into at most `bytesMax` bytes. */
export function snappyDecompress(bytes: Uint8Array, bytesMax: number): Uint8Array {
  if (!isXerial(bytes)) {
    const out = new InflateBuffer(bytesMax, "snappy", bytes.length * 2);
    decodeBlock(bytes, out);
    return out.bytes();
  }
  const out = new InflateBuffer(bytesMax, "snappy", bytes.length * 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let position = XERIAL_HEADER_BYTES;
  while (position < bytes.length) {
    if (position + 4 > bytes.length) throw corrupt("xerial chunk length cut short");
    const chunkBytes = view.getInt32(position);
    position += 4;
    if (chunkBytes < 0 || position + chunkBytes > bytes.length) throw corrupt(`xerial chunk of ${chunkBytes} bytes passes the end`);
    // Each chunk is an independent block; matches never reach into an earlier chunk.
    const chunkOut = new InflateBuffer(bytesMax - out.length, "snappy", chunkBytes * 2);
    decodeBlock(bytes.subarray(position, position + chunkBytes), chunkOut);
    out.append(chunkOut.bytes());
    position += chunkBytes;
  }
  return out.bytes();
}

/** One raw Snappy block into `out` (which starts empty). */
function decodeBlock(block: Uint8Array, out: InflateBuffer): void {
  let position = 0;
  let declared = 0;
  for (let shift = 0; ; shift += 7) {
    if (shift > 28 || position >= block.length) throw corrupt("bad uncompressed-length varint");
    const byte = block[position++] as number;
    declared += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
  }
  // Checked before anything is allocated: the block says how large it will be.
  out.room(declared);
  while (position < block.length) {
    const tag = block[position++] as number;
    const kind = tag & 0x03;
    if (kind === 0) {
      let length = tag >>> 2;
      if (length >= 60) {
        const extraBytes = length - 59;
        if (position + extraBytes > block.length) throw corrupt("literal length cut short");
        length = 0;
        for (let index = 0; index < extraBytes; index++) length += (block[position + index] as number) * 2 ** (8 * index);
        position += extraBytes;
      }
      length += 1;
      if (position + length > block.length) throw corrupt("literal passes the block's end");
      out.append(block.subarray(position, position + length));
      position += length;
      continue;
    }
    let length: number;
    let distance: number;
    if (kind === 1) {
      if (position + 1 > block.length) throw corrupt("copy cut short");
      length = 4 + ((tag >>> 2) & 0x07);
      distance = ((tag >>> 5) << 8) | (block[position++] as number);
    } else {
      const offsetBytes = kind === 2 ? 2 : 4;
      if (position + offsetBytes > block.length) throw corrupt("copy cut short");
      length = 1 + (tag >>> 2);
      distance = 0;
      for (let index = 0; index < offsetBytes; index++) distance += (block[position + index] as number) * 2 ** (8 * index);
      position += offsetBytes;
    }
    out.copyMatch(distance, length);
  }
  if (out.length !== declared) throw corrupt(`block says ${declared} bytes but holds ${out.length}`);
}
