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
/** errnos of a sendfile to a socket whose peer is gone. */
const PEER_GONE_ERRNOS: ReadonlySet<number> = new Set([ERRNO.EPIPE, ERRNO.ECONNRESET, ERRNO.ENOTCONN]);

const NO_SLICES: readonly ReadSlice[] = [];

type BytesItem = { kind: "bytes"; bytes: Uint8Array; position: number; endsReply: boolean };
type FileItem = { kind: "file"; slice: ReadSlice; sent: number; buffer: Uint8Array | null; bufferPosition: number; endsReply: boolean };
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
  ) {}

  get isEmpty(): boolean {
    return this.head >= this.items.length;
  }

  /** Queues one reply: its encoded bytes, then file slices sent after them (released once sent). */
  pushReply(bytes: Uint8Array, slices: readonly ReadSlice[] = NO_SLICES): void {
    // Loops, not filter/forEach: no array, function or scope per reply (bench/alloc.bench.ts).
    let lastSent = -1;
    for (let index = 0; index < slices.length; index++) if (slices[index]!.length > 0) lastSent = index;
    this.items.push({ kind: "bytes", bytes, position: 0, endsReply: lastSent < 0 });
    this.addQueued(bytes.length);
    for (let index = 0; index < slices.length; index++) {
      const slice = slices[index]!;
      if (slice.length === 0) slice.release();
      else this.items.push({ kind: "file", slice, sent: 0, buffer: null, bufferPosition: 0, endsReply: index === lastSent });
    }
    this.repliesQueued++;
  }

  /** Writes until everything is sent, the socket is full ("blocked": wait for drain) or closed. */
  flush(): FlushResult {
    while (this.head < this.items.length) {
      const item = this.items[this.head];
      if (item === undefined) break;
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

  private writeBytes(item: BytesItem): FlushResult {
    const left = item.bytes.length - item.position;
    const written = this.socket.write(item.bytes, item.position, left);
    if (written < 0) return "closed";
    item.position += written;
    this.addQueued(-written);
    this.stats.bytesSentWrite += written;
    return written === left ? "empty" : "blocked";
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
