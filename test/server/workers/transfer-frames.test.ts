/**
 * The network worker's framing and its shared body buffers (src/server/workers/transfer-frames.ts):
 * bodies come out whole however the stream is cut, a large one crosses to the log thread as the
 * id of a shared buffer (sent along once), comes back by id and is reused, and a pool over its
 * count forgets the buffer on both sides.
 */
import { describe, expect, test } from "bun:test";
import { encodeFrame, FrameError } from "../../../src/protocol/frame.ts";
import { BufferPool, POOLED_BYTES_MIN, SharedBodies, TransferFrames, type WireBody } from "../../../src/server/workers/transfer-frames.ts";

function bodyOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (index * 31 + seed) & 0xff);
}

/** Feeds `stream` in chunks of `chunkBytes`; returns the bodies as the log thread opens them. */
function cross(frames: TransferFrames, shared: SharedBodies, stream: Uint8Array, chunkBytes: number): { wire: WireBody[]; bodies: Uint8Array[] } {
  const wire: WireBody[] = [];
  for (let at = 0; at < stream.length; at += chunkBytes) frames.push(stream.subarray(at, at + chunkBytes), wire);
  return { wire, bodies: wire.map((body) => shared.open(body)) };
}

describe("TransferFrames with a shared BufferPool", () => {
  test("small and large bodies come out whole whatever the chunk size", () => {
    const small = bodyOf(100, 1);
    const large = bodyOf(POOLED_BYTES_MIN + 5000, 2);
    const stream = new Uint8Array([...encodeFrame(small), ...encodeFrame(large), ...encodeFrame(new Uint8Array(0))]);
    for (const chunkBytes of [1, 7, 4096, stream.length]) {
      const pool = new BufferPool();
      const { wire, bodies } = cross(new TransferFrames(1 << 20, pool), new SharedBodies(), stream, chunkBytes);
      expect(wire[0]).toBeInstanceOf(Uint8Array);
      expect(wire[1]).not.toBeInstanceOf(Uint8Array);
      expect(bodies).toEqual([small, large, new Uint8Array(0)]);
    }
  });

  test("a large body's buffer is sent once, comes back by id and holds the next body", () => {
    const pool = new BufferPool();
    const shared = new SharedBodies();
    const frames = new TransferFrames(1 << 20, pool);
    const first = cross(frames, shared, encodeFrame(bodyOf(POOLED_BYTES_MIN * 2, 3)), 65536);
    const sent = first.wire[0] as { sharedId: number; buffer?: SharedArrayBuffer };
    expect(sent.buffer).toBeInstanceOf(SharedArrayBuffer);
    const sharedId = shared.idOf(first.bodies[0]!);
    expect(sharedId).toBe(sent.sharedId);
    pool.giveBack([sharedId!]);
    const second = cross(frames, shared, encodeFrame(bodyOf(POOLED_BYTES_MIN * 2, 4)), 65536);
    expect(second.wire[0]).toEqual({ sharedId: sent.sharedId, length: POOLED_BYTES_MIN * 2 });
    expect(second.bodies[0]).toEqual(bodyOf(POOLED_BYTES_MIN * 2, 4));
    expect(shared.size).toBe(1);
  });

  test("buffers given back past the pool's count are forgotten on both sides", () => {
    const pool = new BufferPool();
    const shared = new SharedBodies();
    const frames = new TransferFrames(1 << 20, pool);
    const bodies = Array.from({ length: 20 }, (_, index) => cross(frames, shared, encodeFrame(bodyOf(POOLED_BYTES_MIN, index)), 1 << 20).bodies[0]!);
    expect(shared.size).toBe(20);
    pool.giveBack(bodies.map((body) => shared.idOf(body)!));
    const forget = pool.takeForgotten() ?? [];
    expect(forget.length).toBe(4);
    shared.forget(forget);
    expect(shared.size).toBe(16);
    expect(pool.takeForgotten()).toBeUndefined();
  });

  test("a dropped partial body gives its buffer back to the pool", () => {
    const pool = new BufferPool();
    const shared = new SharedBodies();
    const frames = new TransferFrames(1 << 20, pool);
    const partial = encodeFrame(bodyOf(POOLED_BYTES_MIN, 5)).subarray(0, 1000);
    expect(cross(frames, shared, partial, 1000).wire).toEqual([]);
    frames.reset();
    const next = cross(frames, shared, encodeFrame(bodyOf(POOLED_BYTES_MIN, 6)), 1 << 20);
    // The buffer taken for the dropped body is the one the next body gets (id 1, announced now).
    expect((next.wire[0] as { sharedId: number }).sharedId).toBe(1);
    expect(next.bodies[0]).toEqual(bodyOf(POOLED_BYTES_MIN, 6));
  });

  test("a frame over the limit is refused from its header, before anything is allocated", () => {
    const frames = new TransferFrames(1000, new BufferPool());
    const header = encodeFrame(new Uint8Array(2000)).subarray(0, 4);
    expect(() => frames.push(header, [])).toThrow(FrameError);
  });
});
