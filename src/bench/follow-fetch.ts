/**
 * @module bench/follow-fetch
 * A consumer for throughput benchmarks that costs the client as little as the wire allows: it
 * follows one partition with one fetch in flight and never assembles an answer. Of each answer
 * frame it copies only the first HEAD_PREFIX_BYTES (the map head up to and including the
 * `records` bin32 prefix, and the first batch's base offset), then counts the records bytes as
 * they stream past without copying them. bench/cores.ts uses it so that the client processes,
 * not the broker, are no longer what bounds a multi-core figure.
 *
 * Why it can skip the batches: the benchmark's producers send identical batches of a known
 * stored size, so an answer of R record bytes holds R / batchBytes batches and moves the offset
 * by that many times recordsPerBatch. Both halves of that are checked on every answer: R must be
 * a whole number of batches, and the first batch's base offset must be the offset asked for
 * (docs/protocol.md, fetch: `records` is the last key, always bin32).
 */
import { decode, encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import { encodeFrame, FRAME_HEADER_BYTES } from "../protocol/frame.ts";

/** Bytes of an answer copied to find its records: a one-partition fetch head is under 100. */
const HEAD_PREFIX_BYTES = 512;
/** `a7 "records" c6`: the fixstr key of the last entry, then the bin32 marker. */
const RECORDS_KEY = new Uint8Array([0xa7, ...new TextEncoder().encode("records"), 0xc6]);

export interface FollowOptions {
  /** Stored size of each batch (all alike). */
  batchBytes: number;
  recordsPerBatch: number;
  /** The fetch's maxBytes. */
  fetchBytesMax: number;
  /** No new fetch is sent after this time (Date.now()). */
  endMs: number;
}

/** The index of `needle` in `haystack[0, end)`, or -1. */
function indexOf(haystack: Uint8Array, end: number, needle: Uint8Array): number {
  outer: for (let start = 0; start + needle.length <= end; start++) {
    for (let index = 0; index < needle.length; index++) if (haystack[start + index] !== needle[index]) continue outer;
    return start;
  }
  return -1;
}

/** Follows one partition from offset 0; resolves with the record bytes fetched once the socket closes. */
export class FetchFollower {
  offset = 0;
  bytes = 0;
  private nextId = 1;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** Bytes of the current frame not yet taken (-1: reading a frame header). */
  private frameLeft = -1;
  private frameLength = 0;
  private readonly prefix = new Uint8Array(HEAD_PREFIX_BYTES);
  private prefixFilled = 0;
  private prefixWanted = 0;
  private recordsBytes = 0;

  constructor(
    private readonly topic: string,
    private readonly partition: number,
    private readonly options: FollowOptions,
  ) {}

  fetchFrame(): Uint8Array {
    const request = { id: this.nextId++, op: "fetch", maxWaitMs: 200, minBytes: 1, maxBytes: this.options.fetchBytesMax, partitions: [{ topic: this.topic, partition: this.partition, offset: this.offset }] };
    return encodeFrame(encode(request));
  }

  /** Takes one chunk of the answer stream; returns how many answers it completed. */
  push(chunk: Uint8Array): number {
    let answers = 0;
    let position = 0;
    while (position < chunk.length) {
      if (this.frameLeft < 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - position);
        this.header.set(chunk.subarray(position, position + take), this.headerFilled);
        this.headerFilled += take;
        position += take;
        if (this.headerFilled < FRAME_HEADER_BYTES) break;
        this.headerFilled = 0;
        this.frameLength = new DataView(this.header.buffer).getUint32(0);
        this.frameLeft = this.frameLength;
        this.prefixFilled = 0;
        this.prefixWanted = Math.min(this.frameLength, HEAD_PREFIX_BYTES);
      }
      const take = Math.min(this.frameLeft, chunk.length - position);
      if (this.prefixFilled < this.prefixWanted) {
        const copied = Math.min(take, this.prefixWanted - this.prefixFilled);
        this.prefix.set(chunk.subarray(position, position + copied), this.prefixFilled);
        this.prefixFilled += copied;
        if (this.prefixFilled === this.prefixWanted) this.readHead();
        position += copied;
        this.frameLeft -= copied;
      } else {
        position += take;
        this.frameLeft -= take;
      }
      if (this.frameLeft === 0) {
        this.frameLeft = -1;
        this.onAnswer();
        answers++;
      }
    }
    return answers;
  }

  /** Finds the records' length in the copied head and checks the first batch is the one asked for. */
  private readHead(): void {
    const at = indexOf(this.prefix, this.prefixFilled, RECORDS_KEY);
    if (at < 0) {
      const detail = this.prefixFilled === this.frameLength ? JSON.stringify(decode(this.prefix.subarray(0, this.prefixFilled))) : `no records in the first ${HEAD_PREFIX_BYTES} bytes`;
      throw new Error(`fetch of partition ${this.partition} at ${this.offset} failed: ${detail}`);
    }
    const view = new DataView(this.prefix.buffer);
    const recordsAt = at + RECORDS_KEY.length + 4;
    this.recordsBytes = view.getUint32(at + RECORDS_KEY.length);
    if (recordsAt + this.recordsBytes !== this.frameLength) throw new Error(`fetch answer: records (${this.recordsBytes} bytes at ${recordsAt}) do not end the ${this.frameLength}-byte frame`);
    if (this.recordsBytes % this.options.batchBytes !== 0) throw new Error(`fetch answer: ${this.recordsBytes} record bytes are not whole batches of ${this.options.batchBytes}`);
    if (this.recordsBytes > 0) {
      if (recordsAt + 8 > this.prefixFilled) throw new Error("fetch answer: the head is too long to check the first batch");
      const baseOffset = Number(view.getBigInt64(recordsAt));
      if (baseOffset !== this.offset) throw new Error(`fetch answer: the first batch starts at ${baseOffset}, ${this.offset} was asked for`);
    }
  }

  private onAnswer(): void {
    this.bytes += this.recordsBytes;
    this.offset += (this.recordsBytes / this.options.batchBytes) * this.options.recordsPerBatch;
  }
}

/** Connects to 127.0.0.1:port and follows `partition` of `topic` until options.endMs; resolves with the record bytes fetched. */
export function followPartition(port: number, topic: string, partition: number, options: FollowOptions): Promise<number> {
  const follower = new FetchFollower(topic, partition, options);
  const done = Promise.withResolvers<number>();
  const send = (socket: Socket<undefined>): void => {
    // A fetch frame is ~60 bytes: the socket takes it whole or the connection is broken.
    if (socket.write(follower.fetchFrame()) <= 0) socket.end();
  };
  void Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      binaryType: "uint8array",
      open: send,
      close: () => done.resolve(follower.bytes),
      error: (_socket, error) => done.reject(error),
      data: (socket, chunk) => {
        try {
          if (follower.push(chunk) === 0) return;
        } catch (error) {
          done.reject(error);
          socket.end();
          return;
        }
        if (Date.now() < options.endMs) send(socket);
        else socket.end();
      },
    },
  });
  return done.promise;
}
