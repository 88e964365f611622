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
 * that chunk (no copy); only a frame that straddles chunks is assembled: into one buffer of
 * exactly its length, allocated once — or, given a FrameMemory (the broker), admitted first: its
 * declared length is reserved from that memory budget before any byte of its body is taken, and
 * it is assembled in blocks allocated as its bytes arrive, so what a peer merely declares costs
 * budget but no memory, and what it sends is bounded broker-wide.
 */
import { RunnelError } from "../errors.ts";

export const FRAME_HEADER_BYTES = 4;

/** Thrown when the stream can no longer be framed: the connection must close. */
export class FrameError extends RunnelError {}

/**
 * Where a decoder reserves the bytes of the frames it assembles (the broker's memory budget,
 * server/memory-budget.ts). `tryReserve` answers false when there is no room: the decoder then
 * stops where it is (`waitingForMemory`) until the caller calls `next()` again.
 */
export interface FrameMemory {
  /** Reserves `bytes` more for a frame whose declared length is `frameBytes`. */
  tryReserve(bytes: number, frameBytes: number): boolean;
  release(bytes: number): void;
  /** Whether an assembled buffer may be kept for reuse now (false under memory pressure). */
  mayKeep?(): boolean;
}

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
  /**
   * Reserve assembly bytes here. With it, a straddling frame's declared length is reserved
   * before any byte of its body is taken (a refusal stops the decoder: `waitingForMemory`), so a
   * frame once admitted can always complete — reserving only what has arrived would let many
   * large frames each take part of the budget and none finish. Its bytes go into blocks of at
   * most ASSEMBLY_BLOCK_BYTES, each allocated when its first byte arrives, so a length that is
   * declared but never sent costs no memory; a frame of more than one block is copied into one
   * buffer of its length when complete (or straight into a kept reuse buffer large enough, which
   * needs no reservation: it is already held). Reservations are released when the body is handed
   * out (or its buffer dropped from reuse: `dropAssemblies`), and all of them by `reset`. Without
   * `memory`, the body is allocated at its declared length (the client, which trusts its broker
   * and wants no second copy).
   */
  memory?: FrameMemory;
}

/** The reused assembly buffer is kept only up to this size; larger frames get their own. */
export const ASSEMBLY_BYTES_KEPT_MAX = 8 * 1024 * 1024;
/** Assembly block size (with `memory`): what a peer can make the decoder allocate ahead of its bytes. */
export const ASSEMBLY_BLOCK_BYTES = 256 * 1024;

const EMPTY = new Uint8Array(0);

/**
 * Frees the memory behind `bytes` now instead of at the engine's next collection, when `bytes`
 * is the whole of its ArrayBuffer: detaching a buffer (`transfer(0)`) makes JSC drop its
 * contents at once. Every view of it reads as empty afterwards, so only for bytes nobody reads
 * again. Returns whether it freed them.
 */
export function freeBytesNow(bytes: Uint8Array): boolean {
  const buffer = bytes.buffer;
  if (bytes.length === 0 || bytes.byteOffset !== 0 || !(buffer instanceof ArrayBuffer) || buffer.byteLength !== bytes.length || buffer.detached) return false;
  buffer.transfer(0);
  return true;
}

export class FrameDecoder {
  /**
   * Longest frame taken. A connection may change it between frames: one that has not
   * authenticated yet gets a small limit (security/authenticator.ts PRE_AUTHENTICATION_FRAME_BYTES_MAX).
   */
  frameBytesMax: number;
  private readonly reuseAssembly: boolean;
  private readonly memory: FrameMemory | null;
  private readonly assemblies: Array<Uint8Array | null>;
  private assemblyTurn = 0;
  private chunk: Uint8Array = EMPTY;
  private chunkPosition = 0;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** A straddling frame is being assembled: into `body`, or into `blocks` when `useBlocks`. */
  private inBody = false;
  private body: Uint8Array = EMPTY;
  private useBlocks = false;
  /** With blocks: the frame's declared length is reserved (it was admitted). */
  private admitted = false;
  private blocks: Uint8Array[] = [];
  private bodyLength = 0;
  private bodyFilled = 0;
  /** `body` is the kept reuse buffer of turn `bodyTurn` (its bytes are counted as kept). */
  private bodyIsKept = false;
  private bodyTurn = 0;
  /** Bytes reserved from `memory`: kept reuse buffers plus the admitted frame being assembled. */
  private heldBytes = 0;
  private waiting = false;
  private wantedBytes = 0;

  constructor(frameBytesMax: number, options: FrameDecoderOptions = {}) {
    this.frameBytesMax = frameBytesMax;
    this.reuseAssembly = options.reuseAssembly === true;
    this.memory = options.memory ?? null;
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
    return this.headerFilled > 0 || this.inBody;
  }

  /** Bytes of the current chunk not yet consumed (frames still to hand out). */
  get unreadBytes(): number {
    return this.chunk.length - this.chunkPosition;
  }

  /** True when the last `next()` stopped because `memory` refused a reservation. */
  get waitingForMemory(): boolean {
    return this.waiting;
  }

  /** While waiting for memory: the reservation that was refused. */
  get memoryWantedBytes(): number {
    return this.waiting ? this.wantedBytes : 0;
  }

  /** While waiting for memory: the declared length of the frame being assembled. */
  get partialFrameBytes(): number {
    return this.inBody ? this.bodyLength : 0;
  }

  /** Bytes this decoder holds reserved from `memory`. */
  get reservedBytes(): number {
    return this.heldBytes;
  }

  /** The next whole frame body, or null when more bytes (or memory) are needed. Throws FrameError. */
  next(): Uint8Array | null {
    if (this.inBody) return this.continueBody();
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

  /** Forgets the kept reuse buffers (not one being filled) and releases their bytes. */
  dropAssemblies(): void {
    for (let turn = 0; turn < this.assemblies.length; turn++) {
      const kept = this.assemblies[turn] ?? null;
      if (kept === null || (this.inBody && this.bodyIsKept && this.bodyTurn === turn)) continue;
      this.assemblies[turn] = null;
      this.releaseHeld(kept.length);
      // The broker's decoder (with memory): bodies handed out of it are done with by now.
      if (this.memory !== null) freeBytesNow(kept);
    }
  }

  /** Drops everything held (the connection closed): the partial frame, the chunk, the kept buffers. */
  reset(): void {
    // The broker's decoder (with memory) frees what it held now; nothing reads a closed connection's frames.
    if (this.memory !== null) this.freeHeld();
    this.assemblies.fill(null);
    this.inBody = false;
    this.body = EMPTY;
    this.blocks = [];
    this.chunk = EMPTY;
    this.chunkPosition = 0;
    this.headerFilled = 0;
    this.waiting = false;
    this.releaseHeld(this.heldBytes);
  }

  private freeHeld(): void {
    for (const kept of this.assemblies) if (kept !== null) freeBytesNow(kept);
    for (const block of this.blocks) freeBytesNow(block);
    if (this.inBody && !this.bodyIsKept) freeBytesNow(this.body);
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
    this.inBody = true;
    this.bodyLength = length;
    this.bodyFilled = 0;
    this.bodyTurn = this.assemblyTurn;
    this.assemblyTurn = (this.assemblyTurn + 1) % this.assemblies.length;
    const kept = this.reuseAssembly ? (this.assemblies[this.bodyTurn] ?? null) : null;
    this.bodyIsKept = kept !== null && kept.length >= length;
    this.useBlocks = !this.bodyIsKept && this.memory !== null;
    this.admitted = false;
    if (this.bodyIsKept) this.body = kept as Uint8Array;
    else this.body = this.useBlocks ? EMPTY : new Uint8Array(length);
    return this.continueBody();
  }

  private continueBody(): Uint8Array | null {
    if (this.useBlocks && !this.admitted && !this.admit()) return null;
    while (this.bodyFilled < this.bodyLength && this.chunkPosition < this.chunk.length) {
      const target = this.useBlocks ? this.nextBlock() : this.body;
      const offset = this.useBlocks ? this.bodyFilled % ASSEMBLY_BLOCK_BYTES : this.bodyFilled;
      // A kept reuse buffer may be longer than the frame: bound by what the frame still needs.
      const take = Math.min(target.length - offset, this.bodyLength - this.bodyFilled, this.chunk.length - this.chunkPosition);
      target.set(this.chunk.subarray(this.chunkPosition, this.chunkPosition + take), offset);
      this.bodyFilled += take;
      this.chunkPosition += take;
    }
    if (this.bodyFilled < this.bodyLength) return null;
    return this.finishBody();
  }

  /** Reserves the frame's declared length; false (waiting) when memory refuses. */
  private admit(): boolean {
    if (!(this.memory as FrameMemory).tryReserve(this.bodyLength, this.bodyLength)) {
      this.waiting = true;
      this.wantedBytes = this.bodyLength;
      return false;
    }
    this.waiting = false;
    this.admitted = true;
    this.heldBytes += this.bodyLength;
    return true;
  }

  /** The block the next byte goes to, allocated when its first byte arrives (covered by the admission). */
  private nextBlock(): Uint8Array {
    const index = Math.floor(this.bodyFilled / ASSEMBLY_BLOCK_BYTES);
    const existing = this.blocks[index];
    if (existing !== undefined) return existing;
    const block = new Uint8Array(Math.min(ASSEMBLY_BLOCK_BYTES, this.bodyLength - index * ASSEMBLY_BLOCK_BYTES));
    this.blocks.push(block);
    return block;
  }

  /** Hands out the assembled body; keeps its buffer for reuse when allowed, else releases it. */
  private finishBody(): Uint8Array {
    this.inBody = false;
    this.waiting = false;
    const buffer = this.useBlocks ? this.joinBlocks() : this.body;
    this.body = EMPTY;
    if (this.bodyIsKept) return buffer.subarray(0, this.bodyLength);
    if (this.reuseAssembly && buffer.length > 0 && buffer.length <= ASSEMBLY_BYTES_KEPT_MAX && this.memory?.mayKeep?.() !== false) {
      // A larger buffer replaces the one in this turn; the old one is only referenced by bodies
      // handed out before, so it is never written again.
      const old = this.assemblies[this.bodyTurn] ?? null;
      this.assemblies[this.bodyTurn] = buffer;
      if (old !== null && this.memory !== null) {
        this.releaseHeld(old.length);
        freeBytesNow(old);
      }
      return buffer;
    }
    if (this.memory !== null) this.releaseHeld(buffer.length);
    return buffer;
  }

  /**
   * The blocks as one buffer. It takes over the frame's reservation: for a moment both exist
   * (one frame's worth, not counted twice), then the blocks are garbage.
   */
  private joinBlocks(): Uint8Array {
    const blocks = this.blocks;
    this.blocks = [];
    if (blocks.length === 0) return EMPTY;
    if (blocks.length === 1) return blocks[0] as Uint8Array;
    const joined = new Uint8Array(this.bodyLength);
    let position = 0;
    for (const block of blocks) {
      joined.set(block, position);
      position += block.length;
      freeBytesNow(block);
    }
    return joined;
  }

  private releaseHeld(bytes: number): void {
    if (this.memory === null || bytes <= 0) return;
    const released = Math.min(bytes, this.heldBytes);
    this.heldBytes -= released;
    this.memory.release(released);
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
