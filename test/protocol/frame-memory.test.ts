/**
 * FrameDecoder with a FrameMemory (the broker's budget): a straddling frame is admitted by its
 * declared length before any body byte is taken, then assembled in blocks as its bytes arrive; a
 * refused admission stops the decoder where it is, and it carries on, byte-exact, once there is
 * room.
 */
import { describe, expect, test } from "bun:test";
import { ASSEMBLY_BLOCK_BYTES, encodeFrame, FrameDecoder, type FrameMemory } from "../../src/protocol/frame.ts";
import { prng } from "../support/prng.ts";

/** A budget of `bytesMax` that records what is reserved. */
class CountingMemory implements FrameMemory {
  usedBytes = 0;
  peakBytes = 0;
  constructor(public bytesMax: number) {}
  tryReserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.bytesMax) return false;
    this.usedBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.usedBytes);
    return true;
  }
  release(bytes: number): void {
    this.usedBytes -= bytes;
    expect(this.usedBytes).toBeGreaterThanOrEqual(0);
  }
}

function body(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, index) => (index * 31 + seed) & 0xff);
}

/** Feeds `stream` in random chunks; returns every body, copied as it comes out. */
function decodeAll(decoder: FrameDecoder, stream: Uint8Array, random: () => number, chunkMax: number, onWait?: () => void): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let at = 0; at < stream.length; ) {
    const size = 1 + Math.floor(random() * chunkMax);
    decoder.push(stream.subarray(at, at + size));
    at += size;
    for (;;) {
      const next = decoder.next();
      if (next !== null) {
        bodies.push(next.slice());
        continue;
      }
      if (!decoder.waitingForMemory) break;
      onWait?.();
    }
  }
  return bodies;
}

describe("FrameDecoder with a memory budget", () => {
  test("random frames in random chunks come out byte-exact, with or without reuse, and every reserved byte is released by reset", () => {
    const random = prng(16);
    for (const reuseAssembly of [false, true]) {
      const memory = new CountingMemory(64 * 1024 * 1024);
      const decoder = new FrameDecoder(8 * 1024 * 1024, { memory, reuseAssembly });
      const sizes = Array.from({ length: 60 }, () => Math.floor(random() * (random() < 0.2 ? 2_000_000 : 5_000)));
      const stream = Buffer.concat(sizes.map((size, seed) => encodeFrame(body(size, seed))));
      const bodies = decodeAll(decoder, stream, random, 300_000);
      expect(bodies.length).toBe(sizes.length);
      bodies.forEach((got, seed) => expect(got).toEqual(body(sizes[seed]!, seed)));
      expect(memory.usedBytes).toBe(decoder.reservedBytes);
      decoder.reset();
      expect(memory.usedBytes).toBe(0);
    }
  });

  test("a frame whose declared length does not fit waits before taking any byte of its body, and is admitted whole once it fits", () => {
    const frameBytes = 4 * ASSEMBLY_BLOCK_BYTES;
    const memory = new CountingMemory(frameBytes - 1);
    const decoder = new FrameDecoder(16 * 1024 * 1024, { memory });
    const frame = encodeFrame(body(frameBytes, 3));
    decoder.push(frame.subarray(0, 1_000));
    expect(decoder.next()).toBeNull();
    expect(decoder.waitingForMemory).toBe(true);
    expect(decoder.memoryWantedBytes).toBe(frameBytes);
    expect(decoder.partialFrameBytes).toBe(frameBytes);
    expect(decoder.unreadBytes).toBe(1_000 - 4);
    expect(memory.usedBytes).toBe(0);
    memory.bytesMax = frameBytes;
    expect(decoder.next()).toBeNull();
    expect(decoder.waitingForMemory).toBe(false);
    expect(memory.usedBytes).toBe(frameBytes);
    decoder.push(frame.subarray(1_000));
    expect(decoder.next()).toEqual(body(frameBytes, 3));
    expect(memory.usedBytes).toBe(0);
  });

  test("a refused reservation stops the decoder without losing a byte; it carries on when room is made", () => {
    const random = prng(7);
    const memory = new CountingMemory(ASSEMBLY_BLOCK_BYTES);
    const decoder = new FrameDecoder(4 * 1024 * 1024, { memory });
    const sizes = [3 * ASSEMBLY_BLOCK_BYTES + 5, 100, 2 * ASSEMBLY_BLOCK_BYTES];
    const stream = Buffer.concat(sizes.map((size, seed) => encodeFrame(body(size, seed))));
    let waits = 0;
    // Each time the decoder waits, the budget grows by one block: it must resume where it stopped.
    const bodies = decodeAll(decoder, stream, random, 200_000, () => {
      waits++;
      expect(decoder.memoryWantedBytes).toBeGreaterThan(0);
      memory.bytesMax += ASSEMBLY_BLOCK_BYTES;
    });
    expect(waits).toBeGreaterThan(0);
    bodies.forEach((got, seed) => expect(got).toEqual(body(sizes[seed]!, seed)));
    expect(bodies.length).toBe(sizes.length);
  });

  test("dropAssemblies gives back the kept reuse buffer", () => {
    const memory = new CountingMemory(1 << 30);
    const decoder = new FrameDecoder(1 << 24, { memory, reuseAssembly: true });
    const frame = encodeFrame(body(100_000, 1));
    decoder.push(frame.subarray(0, 10));
    expect(decoder.next()).toBeNull();
    decoder.push(frame.subarray(10));
    expect(decoder.next()).toEqual(body(100_000, 1));
    expect(memory.usedBytes).toBe(100_000);
    decoder.dropAssemblies();
    expect(memory.usedBytes).toBe(0);
  });
});
