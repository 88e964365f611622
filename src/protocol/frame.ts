/**
 * @module protocol/frame
 * Length-prefixed framing, sans-IO. A frame is:
 *
 *   off size field
 *     0   4  length   u32 big-endian, 1 .. frameBytesMax
 *     4   L  body     exactly one msgpack value
 *
 * `FrameDecoder` takes TCP chunks as they arrive (a frame may be split across chunks, and one
 * chunk may hold many frames) and hands out whole frame bodies. The declared length is checked
 * against the limit BEFORE anything is allocated, so a peer cannot make the broker allocate
 * what it merely claims. A frame that lies wholly inside one chunk is returned as a view into
 * that chunk (no copy); only a frame that straddles chunks is assembled, into one buffer of
 * exactly its length, allocated once.
 */
import { RunnelError } from "../errors.ts";

export const FRAME_HEADER_BYTES = 4;

/** Thrown when the stream can no longer be framed: the connection must close. */
export class FrameError extends RunnelError {}

export interface FrameDecoderOptions {
  /**
   * Assemble straddling frames into one reused buffer (kept up to ASSEMBLY_BYTES_KEPT_MAX)
   * instead of a new one per frame. A body handed out is then valid only until the next call
   * of `next()`: for a reader that is done with each body before asking for the next (the
   * broker: a request's bins are used synchronously, e.g. a produce batch is appended before
   * dispatch returns). It saves a fresh allocation, and its page faults, per large frame.
   */
  reuseAssembly?: boolean;
  /**
   * With `reuseAssembly`: how many reused buffers take turns (default 1). A body handed out then
   * stays valid until this many more straddling frames have been assembled — the client uses 3,
   * so a consumer can hold one fetch answer's values while the next two arrive.
   */
  assemblyBuffers?: number;
}

/** The reused assembly buffer is kept only up to this size; larger frames get their own. */
export const ASSEMBLY_BYTES_KEPT_MAX = 8 * 1024 * 1024;

export class FrameDecoder {
  readonly frameBytesMax: number;
  private readonly reuseAssembly: boolean;
  private readonly assemblies: Array<Uint8Array | null>;
  private assemblyTurn = 0;
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkPosition = 0;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private body: Uint8Array | null = null;
  private bodyFilled = 0;

  constructor(frameBytesMax: number, options: FrameDecoderOptions = {}) {
    this.frameBytesMax = frameBytesMax;
    this.reuseAssembly = options.reuseAssembly === true;
    this.assemblies = new Array<Uint8Array | null>(Math.max(1, Math.floor(options.assemblyBuffers ?? 1))).fill(null);
  }

  /** Adds a chunk. Call `next()` until it returns null before pushing the next chunk. */
  push(chunk: Uint8Array): void {
    if (this.chunkPosition < this.chunk.length) {
      throw new Error("FrameDecoder.push called before the previous chunk was drained");
    }
    this.chunk = chunk;
    this.chunkPosition = 0;
  }

  /** True while part of a frame (header or body) is held, waiting for more bytes. */
  get hasPartialFrame(): boolean {
    return this.headerFilled > 0 || this.body !== null;
  }

  /** Bytes of the current chunk not yet consumed (frames still to hand out). */
  get unreadBytes(): number {
    return this.chunk.length - this.chunkPosition;
  }

  /** The next whole frame body, or null when more bytes are needed. Throws FrameError. */
  next(): Uint8Array | null {
    if (this.body !== null) return this.continueBody();
    const available = this.chunk.length - this.chunkPosition;
    if (this.headerFilled === 0 && available >= FRAME_HEADER_BYTES) {
      const length = this.checkLength(readU32(this.chunk, this.chunkPosition));
      const start = this.chunkPosition + FRAME_HEADER_BYTES;
      if (this.chunk.length - start >= length) {
        this.chunkPosition = start + length;
        return this.chunk.subarray(start, start + length);
      }
      this.chunkPosition = start;
      return this.startBody(length);
    }
    return this.continueHeader();
  }

  private continueHeader(): Uint8Array | null {
    const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, this.chunk.length - this.chunkPosition);
    if (take <= 0) return null;
    this.header.set(this.chunk.subarray(this.chunkPosition, this.chunkPosition + take), this.headerFilled);
    this.headerFilled += take;
    this.chunkPosition += take;
    if (this.headerFilled < FRAME_HEADER_BYTES) return null;
    this.headerFilled = 0;
    return this.startBody(this.checkLength(readU32(this.header, 0)));
  }

  private startBody(length: number): Uint8Array | null {
    this.body = this.reuseAssembly ? this.assemblyBuffer(length) : new Uint8Array(length);
    this.bodyFilled = 0;
    return this.continueBody();
  }

  /** A view of `length` bytes of the next reused buffer in turn (grown when too small, kept when not too big). */
  private assemblyBuffer(length: number): Uint8Array {
    const turn = this.assemblyTurn;
    this.assemblyTurn = (turn + 1) % this.assemblies.length;
    const kept = this.assemblies[turn] ?? null;
    if (kept !== null && kept.length >= length) return kept.subarray(0, length);
    const buffer = new Uint8Array(length);
    // A larger buffer replaces the one in this turn; the old one is only referenced by bodies
    // handed out before, so it is never written again.
    if (length <= ASSEMBLY_BYTES_KEPT_MAX) this.assemblies[turn] = buffer;
    return buffer;
  }

  private continueBody(): Uint8Array | null {
    const body = this.body;
    if (body === null) return null;
    const take = Math.min(body.length - this.bodyFilled, this.chunk.length - this.chunkPosition);
    body.set(this.chunk.subarray(this.chunkPosition, this.chunkPosition + take), this.bodyFilled);
    this.bodyFilled += take;
    this.chunkPosition += take;
    if (this.bodyFilled < body.length) return null;
    this.body = null;
    return body;
  }

  private checkLength(length: number): number {
    if (length > this.frameBytesMax) {
      throw new FrameError("MESSAGE_TOO_LARGE", `frame of ${length} bytes is over the limit of ${this.frameBytesMax}`, {
        details: { frameBytes: length, frameBytesMax: this.frameBytesMax },
      });
    }
    return length;
  }
}

function readU32(bytes: Uint8Array, position: number): number {
  return (
    ((bytes[position] ?? 0) * 0x100_0000 + ((bytes[position + 1] ?? 0) << 16)) +
    ((bytes[position + 2] ?? 0) << 8) +
    (bytes[position + 3] ?? 0)
  );
}

/** Writes `length` as the u32 big-endian frame header at `position` of `into`. */
export function writeFrameHeader(into: Uint8Array, position: number, length: number): void {
  into[position] = (length >>> 24) & 0xff;
  into[position + 1] = (length >>> 16) & 0xff;
  into[position + 2] = (length >>> 8) & 0xff;
  into[position + 3] = length & 0xff;
}

/** One frame: the 4-byte length then `body`, in a new buffer. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(frame, 0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}
