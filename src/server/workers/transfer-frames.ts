/**
 * @module server/workers/transfer-frames
 * The network worker's framing (the wire format of protocol/frame.ts: u32 big-endian length,
 * then the body), built for handing bodies to another thread: every body comes out in an
 * ArrayBuffer of its own, so postMessage can transfer it (no copy), and large ones come from a
 * pool the log thread refills by transferring the buffers back once dispatch is done with them.
 *
 * Why not FrameDecoder: its bodies are views into a read chunk or into a reused assembly buffer,
 * neither of which can be transferred away; and a fresh buffer per large frame costs its
 * allocation and page faults every time (the log thread's connections avoid that with
 * reuseAssembly, which the pool stands in for here).
 *
 * Limits: the declared length is checked against frameBytesMax before anything is allocated
 * (MESSAGE_TOO_LARGE, as FrameDecoder says it); a body is allocated at its declared length only
 * when its first byte arrives. The pool keeps at most POOLED_BUFFERS_PER_SIZE buffers of each
 * power-of-two size from POOLED_BYTES_MIN up, and none above ASSEMBLY_BYTES_KEPT_MAX.
 */
import { ASSEMBLY_BYTES_KEPT_MAX, FRAME_HEADER_BYTES, FrameError } from "../../protocol/frame.ts";

/** Bodies below this are copied out of their chunk into a fresh small buffer (cheap), not pooled. */
export const POOLED_BYTES_MIN = 64 * 1024;
/** Buffers kept per size class: enough for the frames of one connection's in-flight window in flight. */
const POOLED_BUFFERS_PER_SIZE = 16;

function sizeClassOf(length: number): number {
  return length <= POOLED_BYTES_MIN ? POOLED_BYTES_MIN : 2 ** Math.ceil(Math.log2(length));
}

/** Large body buffers of one worker, shared by its connections. */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  /** A buffer of at least `length` bytes (pooled when it is large), holding the body at its start. */
  take(length: number): Uint8Array {
    if (length < POOLED_BYTES_MIN || length > ASSEMBLY_BYTES_KEPT_MAX) return new Uint8Array(length);
    const buffer = this.free.get(sizeClassOf(length))?.pop() ?? new ArrayBuffer(sizeClassOf(length));
    return new Uint8Array(buffer, 0, length);
  }

  /** Takes back buffers the log thread is done with; ones of no pooled size, or over the count, are dropped. */
  giveBack(buffers: readonly ArrayBuffer[]): void {
    for (const buffer of buffers) {
      const size = buffer.byteLength;
      if (size < POOLED_BYTES_MIN || size > ASSEMBLY_BYTES_KEPT_MAX || sizeClassOf(size) !== size) continue;
      let list = this.free.get(size);
      if (list === undefined) this.free.set(size, (list = []));
      if (list.length < POOLED_BUFFERS_PER_SIZE) list.push(buffer);
    }
  }
}

export class TransferFrames {
  /** Longest body taken; raised once the connection authenticates. */
  frameBytesMax: number;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private body: Uint8Array | null = null;
  private bodyLength = 0;
  private bodyFilled = 0;

  constructor(
    frameBytesMax: number,
    private readonly pool: BufferPool,
  ) {
    this.frameBytesMax = frameBytesMax;
  }

  /** True while part of a frame (header or body) is held, waiting for more bytes. */
  get hasPartialFrame(): boolean {
    return this.headerFilled > 0 || this.bodyLength > 0;
  }

  /** Takes one chunk; pushes every body it completes onto `bodies`. Throws FrameError (the connection must close). */
  push(chunk: Uint8Array, bodies: Uint8Array[]): void {
    let position = 0;
    while (position < chunk.length) {
      if (this.bodyLength > 0) {
        position = this.fillBody(chunk, position, bodies);
        continue;
      }
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - position);
      this.header.set(chunk.subarray(position, position + take), this.headerFilled);
      this.headerFilled += take;
      position += take;
      if (this.headerFilled < FRAME_HEADER_BYTES) return;
      this.headerFilled = 0;
      this.startBody(new DataView(this.header.buffer).getUint32(0), bodies);
    }
  }

  private startBody(length: number, bodies: Uint8Array[]): void {
    if (length > this.frameBytesMax) {
      throw new FrameError("MESSAGE_TOO_LARGE", `frame of ${length} bytes is over the limit of ${this.frameBytesMax}`, {
        details: { frameBytes: length, frameBytesMax: this.frameBytesMax },
      });
    }
    if (length === 0) {
      bodies.push(new Uint8Array(0));
      return;
    }
    this.bodyLength = length;
    this.bodyFilled = 0;
  }

  private fillBody(chunk: Uint8Array, position: number, bodies: Uint8Array[]): number {
    this.body ??= this.pool.take(this.bodyLength);
    const take = Math.min(this.bodyLength - this.bodyFilled, chunk.length - position);
    this.body.set(chunk.subarray(position, position + take), this.bodyFilled);
    this.bodyFilled += take;
    if (this.bodyFilled === this.bodyLength) {
      bodies.push(this.body);
      this.body = null;
      this.bodyLength = 0;
    }
    return position + take;
  }

  /** Drops the partial frame (the connection closed). */
  reset(): void {
    this.body = null;
    this.bodyLength = 0;
    this.headerFilled = 0;
  }
}
