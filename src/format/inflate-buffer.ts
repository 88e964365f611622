/**
 * @module format/inflate-buffer
 * The output of a decompressor that must not outgrow a bound: it doubles as bytes arrive and
 * refuses, before allocating, to pass `bytesMax` — so a small "zip bomb" batch cannot make a
 * consumer allocate more than the bound, however large it claims or expands to be.
 */
import { RunnelError } from "../errors.ts";

export class InflateBuffer {
  buffer: Uint8Array;
  length = 0;

  constructor(
    private readonly bytesMax: number,
    private readonly what: string,
    capacityHint = 4096,
  ) {
    this.buffer = new Uint8Array(Math.min(Math.max(64, capacityHint), bytesMax));
  }

  /** Makes room for `count` more bytes, or throws MESSAGE_TOO_LARGE past the bound. */
  room(count: number): void {
    const needed = this.length + count;
    if (needed <= this.buffer.length) return;
    if (needed > this.bytesMax) throw new RunnelError("MESSAGE_TOO_LARGE", `${this.what}: decompressed records pass ${this.bytesMax} bytes (the bound on one decompressed batch); the batch is refused`);
    const grown = new Uint8Array(Math.min(this.bytesMax, Math.max(needed, this.buffer.length * 2)));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  append(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  /**
   * Copies `count` bytes from `distance` back (an LZ77 match). Byte by byte when the ranges
   * overlap (distance < count repeats a pattern), else one `copyWithin`.
   */
  copyMatch(distance: number, count: number): void {
    if (distance <= 0 || distance > this.length) throw new RunnelError("CORRUPT_BATCH", `${this.what}: a match points ${distance} bytes back, outside the ${this.length} bytes decoded so far`);
    this.room(count);
    const out = this.buffer;
    let from = this.length - distance;
    if (distance >= count) {
      out.copyWithin(this.length, from, from + count);
      this.length += count;
      return;
    }
    for (let index = 0; index < count; index++) out[this.length++] = out[from++] as number;
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
