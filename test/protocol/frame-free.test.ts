/**
 * FrameDecoder and buffers reused or freed at once (issue 17 part 3): `detachChunk` lets a
 * caller reuse the memory of a chunk it pushed, and the broker's decoder (one with a
 * FrameMemory) frees the buffers it lets go of instead of leaving them to the collector.
 */
import { describe, expect, test } from "bun:test";
import { ASSEMBLY_BLOCK_BYTES, encodeFrame, FrameDecoder, type FrameMemory } from "../../src/protocol/frame.ts";

const unlimited: FrameMemory = { tryReserve: () => true, release: () => {} };

function body(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, index) => (index * 13 + seed) & 0xff);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe("FrameDecoder.detachChunk", () => {
  test("the decoder keeps its unread bytes when the pushed buffer is then overwritten", () => {
    const decoder = new FrameDecoder(1 << 20, { memory: unlimited, reuseAssembly: true });
    const stream = concat([encodeFrame(body(100, 1)), encodeFrame(body(200, 2)), encodeFrame(body(300, 3))]);
    const shared = new Uint8Array(stream.length);
    shared.set(stream);
    decoder.push(shared);
    expect(decoder.next()).toEqual(body(100, 1));
    // A caller that must stop here (backpressure) and will reuse `shared` for its next read.
    decoder.detachChunk();
    shared.fill(0xee);
    expect(decoder.next()).toEqual(body(200, 2));
    expect(decoder.next()).toEqual(body(300, 3));
    expect(decoder.next()).toBeNull();
    expect(decoder.unreadBytes).toBe(0);
  });

  test("a header split across a detached chunk and the next one still decodes", () => {
    const decoder = new FrameDecoder(1 << 20);
    const frame = encodeFrame(body(50, 9));
    const shared = frame.slice(0, 2);
    decoder.push(shared);
    expect(decoder.next()).toBeNull();
    decoder.detachChunk();
    shared.fill(0);
    decoder.push(frame.slice(2));
    expect(decoder.next()).toEqual(body(50, 9));
  });
});

describe("FrameDecoder with memory frees the buffers it lets go of", () => {
  test("a reuse buffer replaced by a larger one is freed: bodies handed out of it read as empty", () => {
    const decoder = new FrameDecoder(1 << 24, { memory: unlimited, reuseAssembly: true });
    const feed = (frame: Uint8Array): Uint8Array | null => {
      decoder.push(frame.subarray(0, 10));
      expect(decoder.next()).toBeNull();
      decoder.push(frame.subarray(10));
      return decoder.next();
    };
    const first = feed(encodeFrame(body(ASSEMBLY_BLOCK_BYTES / 2, 1)));
    expect(first).toEqual(body(ASSEMBLY_BLOCK_BYTES / 2, 1));
    const second = feed(encodeFrame(body(ASSEMBLY_BLOCK_BYTES * 3, 2)));
    expect(second).toEqual(body(ASSEMBLY_BLOCK_BYTES * 3, 2));
    expect(first!.length).toBe(0);
    // The larger buffer is the one kept and reused now.
    const third = feed(encodeFrame(body(ASSEMBLY_BLOCK_BYTES, 3)));
    expect(third).toEqual(body(ASSEMBLY_BLOCK_BYTES, 3));
    expect(third!.buffer).toBe(second!.buffer);
  });

  test("dropping the kept buffers and a reset free them; a decoder without memory (the client) frees nothing", () => {
    const frame = encodeFrame(body(ASSEMBLY_BLOCK_BYTES * 2, 4));
    const assemble = (decoder: FrameDecoder): Uint8Array => {
      decoder.push(frame.subarray(0, 1000));
      expect(decoder.next()).toBeNull();
      decoder.push(frame.subarray(1000));
      const got = decoder.next();
      expect(got).toEqual(body(ASSEMBLY_BLOCK_BYTES * 2, 4));
      return got!;
    };
    const broker = new FrameDecoder(1 << 24, { memory: unlimited, reuseAssembly: true });
    const dropped = assemble(broker);
    broker.dropAssemblies();
    expect(dropped.length).toBe(0);
    const reset = assemble(broker);
    broker.reset();
    expect(reset.length).toBe(0);

    const client = new FrameDecoder(1 << 24, { reuseAssembly: true });
    const kept = assemble(client);
    client.dropAssemblies();
    client.reset();
    expect(kept.length).toBe(ASSEMBLY_BLOCK_BYTES * 2);
  });
});
