/**
 * @module server/workers/transfer-frames
 * The network worker's framing (the wire format of protocol/frame.ts: u32 big-endian length,
 * then the body), built for handing bodies to another thread without a copy: a small body comes
 * out in an ArrayBuffer of its own, which postMessage transfers; a large one is assembled in a
 * pooled SharedArrayBuffer the log thread also holds, so it crosses as (id, length), and the log
 * thread gives the id back once dispatch is done with the bytes (BufferPool, SharedBodies).
 *
 * Why not FrameDecoder: its bodies are views into a read chunk or into a reused assembly buffer,
 * neither of which can be transferred away; and a fresh buffer per large frame costs its
 * allocation and page faults every time (the log thread's connections avoid that with
 * reuseAssembly, which the pool stands in for here). Why shared buffers rather than transferring
 * pooled ones there and back: see BufferPool.
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

/**
 * A large body as it crosses to the log thread: which pooled shared buffer holds it and how long
 * it is. `buffer` rides along only the first time that buffer crosses (the log thread keeps it
 * in its SharedBodies by id from then on).
 */
export interface SharedBody {
  sharedId: number;
  length: number;
  buffer?: SharedArrayBuffer;
}

/** A frame body on its way to the log thread: a small one in its own (transferred) buffer, or a large one in a shared buffer. */
export type WireBody = Uint8Array | SharedBody;

/** A body being assembled: its bytes, and its pooled buffer's id (null: a buffer of its own). */
interface Assembly {
  view: Uint8Array;
  sharedId: number | null;
}

/**
 * Large body buffers of one worker, shared by its connections. They are SharedArrayBuffers the
 * log thread also holds (by id), so a body crosses as (id, length) and comes back as its id:
 * measured on this Bun, a 1 MiB body transferred there and back cost ~80-100 us of CPU per
 * request (both threads), the same body by id ~8-10 us, and posting a view of a shared buffer
 * each time as much as transferring. A buffer is sent once, the first time it is used.
 */
export class BufferPool {
  private readonly free = new Map<number, number[]>();
  /** Every pooled buffer, free or lent to the log thread, by id. */
  private readonly buffers = new Map<number, SharedArrayBuffer>();
  /** Buffers the log thread has been sent (and so holds). */
  private readonly announced = new Set<number>();
  /** Buffers dropped from the pool that the log thread must drop too. */
  private forgotten: number[] = [];
  private nextId = 1;

  /** A buffer of at least `length` bytes (pooled when it is large), holding the body at its start. */
  take(length: number): Assembly {
    if (length < POOLED_BYTES_MIN || length > ASSEMBLY_BYTES_KEPT_MAX) return { view: new Uint8Array(length), sharedId: null };
    const size = sizeClassOf(length);
    let sharedId = this.free.get(size)?.pop();
    if (sharedId === undefined) {
      sharedId = this.nextId++;
      this.buffers.set(sharedId, new SharedArrayBuffer(size));
    }
    return { view: new Uint8Array(this.buffers.get(sharedId)!, 0, length), sharedId };
  }

  /** How an assembled body crosses to the log thread. */
  toWire(assembly: Assembly): WireBody {
    const { view, sharedId } = assembly;
    if (sharedId === null) return view;
    if (this.announced.has(sharedId)) return { sharedId, length: view.length };
    this.announced.add(sharedId);
    return { sharedId, length: view.length, buffer: this.buffers.get(sharedId)! };
  }

  /** Takes back buffers the log thread is done with; ones over the count per size are dropped (and forgotten there). */
  giveBack(ids: readonly number[]): void {
    for (const sharedId of ids) {
      const buffer = this.buffers.get(sharedId);
      if (buffer === undefined) continue;
      const size = buffer.byteLength;
      let list = this.free.get(size);
      if (list === undefined) this.free.set(size, (list = []));
      if (list.length < POOLED_BUFFERS_PER_SIZE) {
        list.push(sharedId);
        continue;
      }
      this.buffers.delete(sharedId);
      if (this.announced.delete(sharedId)) this.forgotten.push(sharedId);
    }
  }

  /** Ids the log thread should drop, for the next message to it (undefined: none). */
  takeForgotten(): number[] | undefined {
    if (this.forgotten.length === 0) return undefined;
    const ids = this.forgotten;
    this.forgotten = [];
    return ids;
  }
}

/**
 * The log thread's side of the workers' shared buffers, one per worker: turns a SharedBody into
 * a view of the buffer, and a spent view back into its id.
 */
export class SharedBodies {
  private readonly buffers = new Map<number, SharedArrayBuffer>();
  private readonly ids = new WeakMap<ArrayBufferLike, number>();

  open(body: WireBody): Uint8Array {
    if (body instanceof Uint8Array) return body;
    if (body.buffer !== undefined) {
      this.buffers.set(body.sharedId, body.buffer);
      this.ids.set(body.buffer, body.sharedId);
    }
    const buffer = this.buffers.get(body.sharedId);
    if (buffer === undefined) throw new Error(`network worker sent shared buffer ${body.sharedId}, which it never announced`);
    return new Uint8Array(buffer, 0, body.length);
  }

  /** The id of the shared buffer `body` lies in (undefined: a buffer of its own). */
  idOf(body: Uint8Array): number | undefined {
    return this.ids.get(body.buffer);
  }

  forget(ids: readonly number[]): void {
    for (const sharedId of ids) {
      const buffer = this.buffers.get(sharedId);
      if (buffer !== undefined) this.ids.delete(buffer);
      this.buffers.delete(sharedId);
    }
  }

  get size(): number {
    return this.buffers.size;
  }
}

export class TransferFrames {
  /** Longest body taken; raised once the connection authenticates. */
  frameBytesMax: number;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private body: Assembly | null = null;
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
  push(chunk: Uint8Array, bodies: WireBody[]): void {
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

  private startBody(length: number, bodies: WireBody[]): void {
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

  private fillBody(chunk: Uint8Array, position: number, bodies: WireBody[]): number {
    this.body ??= this.pool.take(this.bodyLength);
    const take = Math.min(this.bodyLength - this.bodyFilled, chunk.length - position);
    this.body.view.set(chunk.subarray(position, position + take), this.bodyFilled);
    this.bodyFilled += take;
    if (this.bodyFilled === this.bodyLength) {
      bodies.push(this.pool.toWire(this.body));
      this.body = null;
      this.bodyLength = 0;
    }
    return position + take;
  }

  /** Drops the partial frame (the connection closed). */
  reset(): void {
    // A pooled buffer taken for the dropped body goes back (it never reached the log thread).
    if (this.body !== null && this.body.sharedId !== null) this.pool.giveBack([this.body.sharedId]);
    this.body = null;
    this.bodyLength = 0;
    this.headerFilled = 0;
  }
}
