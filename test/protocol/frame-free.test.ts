/**
 * FrameDecoder freeing buffers at once (issue 17 part 3): the broker's decoder (one with a
 * FrameMemory) frees the buffers it lets go of instead of leaving them to the collector; the
 * client's keeps every body it handed out readable.
 */
import { describe, expect, test } from "bun:test";
import { ASSEMBLY_BLOCK_BYTES, encodeFrame, FrameDecoder, type FrameMemory } from "../../src/protocol/frame.ts";

const unlimited: FrameMemory = { tryReserve: () => true, release: () => {} };

function body(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, index) => (index * 13 + seed) & 0xff);
}

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
