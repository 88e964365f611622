/**
 * @module server/workers/messages
 * The messages between the log thread (worker-pool.ts) and its network workers
 * (connection-worker.ts). Plain structured-clone objects; frame bodies and answer heads travel
 * as transferred ArrayBuffers (no copy), file ranges as (fd, position, length): descriptors are
 * process-wide, so a worker sendfiles from the segment fd the log opened.
 *
 * A file range stays pinned on the log thread (ReadSlice.release not yet called) until the
 * worker reports its token in `released`: only then may the fd cache or retention close the fd.
 */

import type { WireBody } from "./transfer-frames.ts";

/** What a worker needs to know to serve connections; sent once, as the Worker's first message. */
export interface WorkerSetup {
  kind: "setup";
  workerIndex: number;
  host: string;
  /** The port to listen on with reusePort (0 for the first worker: it picks one and reports it). */
  port: number;
  frameBytesMax: number;
  /** Frame limit before authentication (PRE_AUTHENTICATION_FRAME_BYTES_MAX) when it is required. */
  firstFrameBytesMax: number;
  requestsInFlightMax: number;
  outboundQueueBytesMax: number;
  frameTimeoutMs: number;
  idleTimeoutMs: number;
  zeroCopy: boolean;
}

/** A file range of a fetch answer; `token` names the ReadSlice pinned on the log thread. */
export interface SliceRef {
  token: number;
  fd: number;
  position: number;
  length: number;
  firstOffset: number;
}

/** One answer: the encoded frame (or fetch head), then its file ranges. */
export interface AnswerRef {
  head: Uint8Array;
  slices: SliceRef[];
}

/** The byte counters a worker adds to the broker's stats (server/stats.ts). */
export interface WorkerByteCounts {
  bytesReceived: number;
  bytesSentWrite: number;
  bytesSentSendfile: number;
  bytesSentCopy: number;
  bytesSentProbe: number;
}

/** Log thread -> worker. */
export type ToWorker =
  | WorkerSetup
  /**
   * Answers of `connection`, in request order. `settled` counts requests (answered or not, like a
   * produce with durability none) finished since the last message: the worker's in-flight count.
   * `frameBytesMax`, when present, is the connection's new frame limit (it authenticated).
   * `close`: these are its last answers; send them, then close the connection.
   * `buffers`: ids of the shared frame-body buffers dispatch is done with, back to the worker's
   * pool (transfer-frames.ts); an answers message may carry only these.
   */
  | { kind: "answers"; connection: number; answers: AnswerRef[]; settled: number; frameBytesMax?: number; close?: boolean; buffers?: number[] }
  /** Refuse a connection (over connectionsMax, shutting down): write `frame`, then close. */
  | { kind: "refuse"; connection: number; frame: Uint8Array }
  /** Stop accepting connections (shutdown); established ones carry on. */
  | { kind: "stopListening" }
  /** Close every connection and report `closed` (the end of shutdown). */
  | { kind: "closeAll" };

/** Worker -> log thread. */
export type FromWorker =
  | { kind: "listening"; port: number }
  | { kind: "listenFailed"; message: string; code: string | null }
  | { kind: "open"; connection: number; remoteAddress: string; remotePort: number }
  /**
   * Whole frame bodies read from `connection`, in order: a small one owns its (transferred)
   * buffer, a large one is named by its shared buffer's id (transfer-frames.ts). `forget`: ids of
   * shared buffers the worker's pool dropped, which the log thread drops too.
   */
  | { kind: "frames"; connection: number; bodies: WireBody[]; forget?: number[] }
  /** The connection is gone (either side closed it, or the worker failed it). */
  | { kind: "closed"; connection: number }
  /** Tokens of file ranges sent or dropped. */
  | { kind: "released"; tokens: number[] }
  /** Byte counts since the last report (every STATS_REPORT_MS while they change, and at closeAll). */
  | { kind: "bytes"; bytes: WorkerByteCounts }
  /** Every connection is closed (answer to closeAll). */
  | { kind: "allClosed" };
