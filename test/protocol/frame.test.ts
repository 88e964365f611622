import { describe, expect, test } from "bun:test";
import { encodeFrame, FrameDecoder, FrameError } from "../../src/protocol/frame.ts";
import { prng as random } from "../support/prng.ts";

function drain(decoder: FrameDecoder): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let frame = decoder.next(); frame !== null; frame = decoder.next()) frames.push(frame.slice());
  return frames;
}


describe("frame codec", () => {
  test("encodes a body as a u32 big-endian length then the body (fixed bytes)", () => {
    expect([...encodeFrame(new Uint8Array([0x81, 0xa2, 0x69, 0x64, 0x01]))]).toEqual([0, 0, 0, 5, 0x81, 0xa2, 0x69, 0x64, 0x01]);
    expect([...encodeFrame(new Uint8Array(0x01_02_03).subarray(0, 0x010203)).subarray(0, 4)]).toEqual([0x00, 0x01, 0x02, 0x03]);
  });

  test("round trips frames of many sizes pushed in one chunk", () => {
    const bodies = [1, 2, 3, 100, 65_536, 70_000].map((size) => new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff));
    const decoder = new FrameDecoder(1 << 20);
    const stream = Buffer.concat(bodies.map(encodeFrame));
    decoder.push(stream);
    expect(drain(decoder)).toEqual(bodies);
    expect(decoder.hasPartialFrame).toBe(false);
  });

  test("a frame wholly inside a chunk is a view into that chunk (no copy)", () => {
    const chunk = encodeFrame(new Uint8Array([1, 2, 3]));
    const decoder = new FrameDecoder(100);
    decoder.push(chunk);
    const frame = decoder.next() as Uint8Array;
    expect(frame.buffer).toBe(chunk.buffer);
    expect(frame.byteOffset).toBe(4);
  });

  test("every truncated prefix yields no frame and keeps waiting, then completes", () => {
    const body = new Uint8Array(300).map((_, i) => i & 0xff);
    const frame = encodeFrame(body);
    for (let cut = 0; cut < frame.length; cut++) {
      const decoder = new FrameDecoder(1000);
      decoder.push(frame.subarray(0, cut));
      expect(decoder.next()).toBeNull();
      expect(decoder.hasPartialFrame).toBe(cut > 0);
      decoder.push(frame.subarray(cut));
      expect(drain(decoder)).toEqual([body]);
    }
  });

  test("frames split across chunks at random points and coalesced in chunks decode identically (seeded)", () => {
    const next = random(42);
    const bodies = Array.from({ length: 300 }, () => new Uint8Array(1 + Math.floor(next() * 2000)).map(() => Math.floor(next() * 256)));
    const stream = Buffer.concat(bodies.map(encodeFrame));
    const decoder = new FrameDecoder(4096);
    const out: Uint8Array[] = [];
    for (let position = 0; position < stream.length; ) {
      const size = 1 + Math.floor(next() * 5000);
      decoder.push(stream.subarray(position, position + size));
      out.push(...drain(decoder));
      position += size;
    }
    expect(out).toEqual(bodies);
  });

  test("a declared length over the limit is rejected before anything is allocated", () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    let caught: unknown;
    try {
      decoder.next();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect((caught as FrameError).code).toBe("MESSAGE_TOO_LARGE");
    expect((caught as FrameError).details).toEqual({ frameBytes: 0xffff_ffff, frameBytesMax: 1024 });
  });

  test("an over-limit length split across chunks is rejected as soon as its 4 bytes are in", () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(new Uint8Array([0x00, 0x00]));
    expect(decoder.next()).toBeNull();
    decoder.push(new Uint8Array([0x04, 0x01]));
    expect(() => decoder.next()).toThrow(FrameError);
  });

  test("a frame exactly at the limit is accepted", () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(encodeFrame(new Uint8Array(1024)));
    expect(decoder.next()?.length).toBe(1024);
  });

  test("a zero-length frame decodes as an empty body (the message layer rejects it)", () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, 0xc0]));
    expect(drain(decoder).map((frame) => frame.length)).toEqual([0, 1]);
  });
});
