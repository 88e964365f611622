/**
 * @module server/outbound
 * One connection's outbound queue: encoded frames and file ranges (fetch records), sent in
 * order. Bun's `socket.write` does not buffer — it returns how many bytes it took — so what it
 * does not take stays here, and `flush` runs again from the socket's `drain` callback.
 *
 * File ranges go out with sendfile(2) from the segment fd to the socket fd (zero copy), or,
 * where sendfile is unavailable or switched off, through a bounded read buffer (copy path).
 *
 * Non-obvious: when sendfile meets a full socket buffer (EAGAIN), Bun did not make that write
 * and so will not call `drain` later. We then offer the next byte of the file to
 * `socket.write`: it either returns 0, which arms `drain`, or takes the byte and we carry on
 * one byte further (counted as bytesSentProbe, not as copy-path bytes). Nothing ever spins or
 * polls on a timer.
 *
 * Memory: every byte counted in `queuedBytes` is also charged to the broker-wide budget
 * (server/memory-budget.ts) and released as it is sent or discarded.
 *
 * A peer that goes away mid-answer makes sendfile fail with EPIPE or ECONNRESET: that is the
 * client leaving, reported as "closed" like a failed socket.write — not a storage error.
 *
 * Gathered writes (issue 17, "fetch answer in one wake-up"): a reply whose head and records
 * together fit in `gatherBytesMax` is not sent as head + sendfile. Its records are pread into a
 * scratch buffer after the head, and consecutive such items queued behind it (more answers,
 * produce acks) join the same buffer, which goes out in ONE socket.write: one syscall and one
 * wake-up of the peer instead of two per answer (the peer woke for the head, then again for the
 * records). Copying a few KiB costs less than the second syscall and wake-up; larger ranges
 * keep sendfile (zero copy where it pays: the crossover is measured in docs/architecture.md).
 * The scratch buffer is shared by every connection of this thread: it is only used inside one
 * synchronous flush, and what socket.write did not take is not kept from it — the items are
 * left as if sent by their own paths up to that byte (head position, file `sent`), and the rest
 * goes out by those paths (sendfile or copy) on drain.
 */
import type { Socket } from "bun";
import type { ReadSlice } from "../log/api.ts";
import { ERRNO, libc, SENDFILE_WOULD_BLOCK, SyscallError } from "../native/libc.ts";
import type { MemoryBudget } from "./memory-budget.ts";
import { socketFd } from "./socket-fd.ts";
import type { BrokerStats } from "./stats.ts";

/** Copy-path read size: bounds the memory a copy-path fetch holds per connection. */
const COPY_CHUNK_BYTES = 256 * 1024;
/** sendfile moves at most this per call (Linux caps a call near 2 GiB anyway). */
const SENDFILE_CALL_BYTES_MAX = 1 << 30;
/**
 * Head + records of a reply up to this many bytes go out in one gathered write instead of head +
 * sendfile (module note). Measured crossover: bench/fetch-answer-crossover.ts.
 */
export const GATHER_BYTES_MAX_DEFAULT = 64 * 1024;
/** errnos of a sendfile to a socket whose peer is gone. */
const PEER_GONE_ERRNOS: ReadonlySet<number> = new Set([ERRNO.EPIPE, ERRNO.ECONNRESET, ERRNO.ENOTCONN]);

const NO_SLICES: readonly ReadSlice[] = [];

/** `gather`: may join a gathered write (it belongs to a reply small enough, module note). */
type BytesItem = { kind: "bytes"; bytes: Uint8Array; position: number; endsReply: boolean; gather: boolean };
type FileItem = { kind: "file"; slice: ReadSlice; sent: number; buffer: Uint8Array | null; bufferPosition: number; endsReply: boolean; gather: boolean };
type Item = BytesItem | FileItem;

export type FlushResult = "empty" | "blocked" | "closed";

export class OutboundQueue {
  private readonly items: Item[] = [];
  private head = 0;
  /** Bytes held in memory (frames and copy buffers); file ranges cost no memory. */
  queuedBytes = 0;
  /** Replies queued and not yet wholly sent (they count as in flight). */
  repliesQueued = 0;
  private readonly probe = new Uint8Array(1);

  constructor(
    private readonly socket: Socket<unknown>,
    private readonly stats: BrokerStats,
    private readonly zeroCopy: boolean,
    private readonly memory: MemoryBudget | null = null,
    /** Replies up to this many bytes (head + records) go out in gathered writes; 0: never. */
    private readonly gatherBytesMax = GATHER_BYTES_MAX_DEFAULT,
  ) {}

  get isEmpty(): boolean {
    return this.head >= this.items.length;
  }

  /** Queues one reply: its encoded bytes, then file slices sent after them (released once sent). */
  pushReply(bytes: Uint8Array, slices: readonly ReadSlice[] = NO_SLICES): void {
    // Loops, not filter/forEach: no array, function or scope per reply (bench/alloc.bench.ts).
    let lastSent = -1;
    let recordsBytes = 0;
    for (let index = 0; index < slices.length; index++) {
      const length = slices[index]!.length;
      recordsBytes += length;
      if (length > 0) lastSent = index;
    }
    const gather = bytes.length + recordsBytes <= this.gatherBytesMax;
    this.items.push({ kind: "bytes", bytes, position: 0, endsReply: lastSent < 0, gather });
    this.addQueued(bytes.length);
    for (let index = 0; index < slices.length; index++) {
      const slice = slices[index]!;
      if (slice.length === 0) slice.release();
      else this.items.push({ kind: "file", slice, sent: 0, buffer: null, bufferPosition: 0, endsReply: index === lastSent, gather });
    }
    this.repliesQueued++;
  }

  /** Writes until everything is sent, the socket is full ("blocked": wait for drain) or closed. */
  flush(): FlushResult {
    while (this.head < this.items.length) {
      const item = this.items[this.head];
      if (item === undefined) break;
      const gatherable = this.gatherCount();
      if (gatherable > 1) {
        // Sets each gathered item's progress; the loop below then retires the items wholly sent
        // without another syscall (their writes find nothing left).
        const gathered = this.writeGathered(gatherable);
        if (gathered !== "empty") return gathered;
      }
      const result = item.kind === "bytes" ? this.writeBytes(item) : this.writeFile(item);
      if (result !== "empty") return result;
      if (item.kind === "file") item.slice.release();
      if (item.endsReply) this.repliesQueued--;
      this.items[this.head++] = undefined as unknown as Item;
    }
    this.items.length = 0;
    this.head = 0;
    return "empty";
  }

  /** Drops everything queued and releases every slice (connection closed). */
  discard(): void {
    for (let index = this.head; index < this.items.length; index++) {
      const item = this.items[index];
      if (item?.kind === "file") item.slice.release();
    }
    this.items.length = 0;
    this.head = 0;
    this.addQueued(-this.queuedBytes);
    this.repliesQueued = 0;
  }

  /** Changes queuedBytes and the budget's charge together. */
  private addQueued(delta: number): void {
    this.queuedBytes += delta;
    if (this.memory === null || delta === 0) return;
    if (delta > 0) this.memory.charge(delta);
    else this.memory.release(-delta);
  }

  /**
   * How many items from the head can go out in one gathered write: untouched items of small
   * replies, in order, while they fit in gatherBytesMax together. A lone frame is just written.
   */
  private gatherCount(): number {
    let count = 0;
    let bytes = 0;
    for (let index = this.head; index < this.items.length; index++) {
      const item = this.items[index]!;
      if (!item.gather) break;
      const length = item.kind === "bytes" ? item.bytes.length : item.slice.length;
      if ((item.kind === "bytes" ? item.position : item.sent) !== 0 || bytes + length > this.gatherBytesMax) break;
      bytes += length;
      count++;
    }
    return count;
  }

  /**
   * Writes the gatherable items at the head in one socket.write (module note): frames copied,
   * records pread, into the thread's scratch buffer. Each item is then marked sent up to what
   * the write took; the rest, if any, goes out later by the item's own path.
   */
  private writeGathered(count: number): FlushResult {
    const scratch = gatherScratch(this.gatherBytesMax);
    let length = 0;
    for (let index = this.head; index < this.head + count; index++) {
      const item = this.items[index]!;
      if (item.kind === "bytes") scratch.set(item.bytes, length);
      else readSlice(item.slice, scratch, length);
      length += item.kind === "bytes" ? item.bytes.length : item.slice.length;
    }
    const written = this.socket.write(scratch, 0, length);
    if (written < 0) return "closed";
    this.markGathered(count, written);
    return written === length ? "empty" : "blocked";
  }

  /** Advances the first `count` items by the `written` bytes a gathered write took, in order. */
  private markGathered(count: number, written: number): void {
    let left = written;
    for (let index = this.head; index < this.head + count && left > 0; index++) {
      const item = this.items[index]!;
      if (item.kind === "bytes") {
        const taken = Math.min(left, item.bytes.length);
        this.bytesSent(item, taken);
        left -= taken;
      } else {
        const taken = Math.min(left, item.slice.length);
        item.sent = taken;
        this.stats.bytesSentGathered += taken;
        left -= taken;
      }
    }
  }

  private writeBytes(item: BytesItem): FlushResult {
    const left = item.bytes.length - item.position;
    if (left === 0) return "empty";
    const written = this.socket.write(item.bytes, item.position, left);
    if (written < 0) return "closed";
    this.bytesSent(item, written);
    return written === left ? "empty" : "blocked";
  }

  /** `count` more bytes of a frame were handed to the kernel (by its own write or a gathered one). */
  private bytesSent(item: BytesItem, count: number): void {
    item.position += count;
    this.addQueued(-count);
    this.stats.bytesSentWrite += count;
  }

  private writeFile(item: FileItem): FlushResult {
    const fd = this.zeroCopy && libc.sendfile !== null && item.buffer === null ? socketFd(this.socket) : null;
    return fd === null ? this.copyFile(item) : this.sendFile(item, fd);
  }

  private sendFile(item: FileItem, socketFdNumber: number): FlushResult {
    const sendfile = libc.sendfile;
    if (sendfile === null) return this.copyFile(item);
    const slice = item.slice;
    while (item.sent < slice.length) {
      const count = Math.min(slice.length - item.sent, SENDFILE_CALL_BYTES_MAX);
      const sent = sendToPeer(sendfile, socketFdNumber, slice.fd, slice.position + item.sent, count);
      if (sent === PEER_GONE) return "closed";
      if (sent === SENDFILE_WOULD_BLOCK) {
        const probed = this.probeOneByte(item);
        if (probed !== "empty") return probed;
        continue;
      }
      if (sent === 0) throw new Error(`segment ended ${slice.length - item.sent} bytes before the slice did`);
      item.sent += sent;
      this.stats.bytesSentSendfile += sent;
    }
    return "empty";
  }

  /** EAGAIN from sendfile: hand one byte to socket.write so Bun arms `drain` (see module note). */
  private probeOneByte(item: FileItem): FlushResult {
    const read = libc.pread(item.slice.fd, this.probe, item.slice.position + item.sent);
    if (read !== 1) throw new Error("segment ended before the slice did");
    const written = this.socket.write(this.probe, 0, 1);
    if (written < 0) return "closed";
    if (written === 0) return "blocked";
    item.sent += 1;
    this.stats.bytesSentProbe += 1;
    return "empty";
  }

  private copyFile(item: FileItem): FlushResult {
    const slice = item.slice;
    while (item.sent < slice.length) {
      if (item.buffer === null || item.bufferPosition >= item.buffer.length) this.fill(item);
      const buffer = item.buffer as Uint8Array;
      const left = buffer.length - item.bufferPosition;
      const written = this.socket.write(buffer, item.bufferPosition, left);
      if (written < 0) return "closed";
      item.bufferPosition += written;
      item.sent += written;
      this.addQueued(-written);
      this.stats.bytesSentCopy += written;
      if (written < left) return "blocked";
    }
    item.buffer = null;
    return "empty";
  }

  private fill(item: FileItem): void {
    const slice = item.slice;
    const size = Math.min(COPY_CHUNK_BYTES, slice.length - item.sent);
    const buffer = item.buffer !== null && item.buffer.length === size ? item.buffer : new Uint8Array(size);
    const read = libc.pread(slice.fd, buffer, slice.position + item.sent);
    if (read !== size) throw new Error(`segment ended ${size - read} bytes before the slice did`);
    item.buffer = buffer;
    item.bufferPosition = 0;
    this.addQueued(size);
  }
}

let scratchBuffer: Uint8Array | null = null;

/** This thread's gathered-write buffer (module note), grown to `bytes` when first needed. */
function gatherScratch(bytes: number): Uint8Array {
  if (scratchBuffer === null || scratchBuffer.length < bytes) scratchBuffer = new Uint8Array(bytes);
  return scratchBuffer;
}

/** Reads a whole slice into `into` at `intoOffset`; a segment shorter than the slice is a bug. */
function readSlice(slice: ReadSlice, into: Uint8Array, intoOffset: number): void {
  const read = libc.preadInto(slice.fd, into, intoOffset, slice.length, slice.position);
  if (read !== slice.length) throw new Error(`segment ended ${slice.length - read} bytes before the slice did`);
}

const PEER_GONE = -2;

/** sendfile, with a vanished peer (EPIPE, ECONNRESET, ENOTCONN) answered as PEER_GONE. */
function sendToPeer(sendfile: NonNullable<typeof libc.sendfile>, socketFdNumber: number, fileFd: number, position: number, count: number): number {
  try {
    return sendfile(socketFdNumber, fileFd, position, count);
  } catch (error) {
    if (error instanceof SyscallError && error.syscall === "sendfile" && PEER_GONE_ERRNOS.has(error.errno)) return PEER_GONE;
    throw error;
  }
}
