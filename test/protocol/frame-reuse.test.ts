import { expect, test } from "bun:test";
import { ASSEMBLY_BYTES_KEPT_MAX, FrameDecoder, encodeFrame } from "../../src/protocol/frame.ts";

function body(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, index) => (index * 7 + seed) & 0xff);
}

test("FrameDecoder with reuseAssembly: straddling frames come out right, assembled in one reused buffer", () => {
  const decoder = new FrameDecoder(1 << 24, { reuseAssembly: true });
  const sizes = [5_000, 3_000, 5_000, 40_000, 10];
  const buffers = new Set<ArrayBufferLike>();
  sizes.forEach((size, seed) => {
    const frame = encodeFrame(body(size, seed));
    const got: Uint8Array[] = [];
    for (let at = 0; at < frame.length; at += 1_000) {
      decoder.push(frame.subarray(at, Math.min(frame.length, at + 1_000)));
      for (let next = decoder.next(); next !== null; next = decoder.next()) got.push(next);
    }
    expect(got).toHaveLength(1);
    expect(got[0]).toEqual(body(size, seed)); // checked before the next frame may reuse it
    if (size > 1_000) buffers.add(got[0]!.buffer);
  });
  // 5,000 then 3,000 and 5,000 reuse the first buffer; 40,000 needs a bigger one, kept after.
  expect(buffers.size).toBe(2);
});

test("FrameDecoder with reuseAssembly: frames larger than the kept size get their own buffer", () => {
  const decoder = new FrameDecoder(1 << 24, { reuseAssembly: true });
  const size = ASSEMBLY_BYTES_KEPT_MAX + 1;
  const seen: Uint8Array[] = [];
  for (let round = 0; round < 2; round++) {
    const frame = encodeFrame(body(size, round));
    decoder.push(frame.subarray(0, 100));
    expect(decoder.next()).toBeNull();
    decoder.push(frame.subarray(100));
    const got = decoder.next();
    expect(got).toEqual(body(size, round));
    seen.push(got!);
  }
  expect(seen[0]!.buffer).not.toBe(seen[1]!.buffer);
  expect(seen[0]).toEqual(body(size, 0)); // not overwritten by the second frame
});

test("FrameDecoder without the option hands out bodies that stay valid", () => {
  const decoder = new FrameDecoder(1 << 24);
  const kept: Uint8Array[] = [];
  for (let seed = 0; seed < 3; seed++) {
    const frame = encodeFrame(body(4_000, seed));
    decoder.push(frame.subarray(0, 10));
    decoder.next();
    decoder.push(frame.subarray(10));
    kept.push(decoder.next()!);
  }
  kept.forEach((got, seed) => expect(got).toEqual(body(4_000, seed)));
});

test("FrameDecoder with assemblyBuffers: a body stays intact until that many more straddling frames are assembled", () => {
  const decoder = new FrameDecoder(1 << 24, { reuseAssembly: true, assemblyBuffers: 3 });
  const held: Array<{ seed: number; bytes: Uint8Array }> = [];
  for (let seed = 0; seed < 8; seed++) {
    const frame = encodeFrame(body(4_000, seed));
    for (let at = 0; at < frame.length; at += 1_000) {
      decoder.push(frame.subarray(at, Math.min(frame.length, at + 1_000)));
      for (let next = decoder.next(); next !== null; next = decoder.next()) held.push({ seed, bytes: next });
    }
    // The last three bodies are intact; the one before them shares a buffer with the newest.
    for (const { seed: heldSeed, bytes } of held.slice(-3)) expect(bytes).toEqual(body(4_000, heldSeed));
    if (held.length > 3) expect(held[held.length - 4]!.bytes.buffer).toBe(held[held.length - 1]!.bytes.buffer);
  }
  expect(new Set(held.map(({ bytes }) => bytes.buffer)).size).toBe(3);
});
