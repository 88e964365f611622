/**
 * @module bench/raw-fetch
 * The raw consumer of `runnel bench consume --raw`: fetch requests whose batches are only
 * counted from their headers (records never decoded), with two fetches in flight on one
 * connection (one each from 4 consumers up, see rawFetchesInFlight) so the broker is sending the
 * next answer while this side reads the current one.
 *
 * Why speculate: one partition's next offset is known only once its answer is in, so a strictly
 * sequential loop leaves the wire idle for a full round trip (request, broker wake-up and
 * turnaround, first bytes back) per fetch: 30-40% of each 1 MiB fetch's time on the 2-core VM.
 * The second fetch is therefore sent at a *predicted* offset: where the one before it should
 * end, judged by how many offsets the last answer carried. The protocol is unchanged (see
 * docs/protocol.md, fetch, "Pipelining"); only this reader's bookkeeping knows it guessed.
 *
 * Correctness does not depend on the guess. Every answer is checked against `expected`, the
 * next offset not yet counted for that partition: records below it are skipped (a guess too
 * low: the overlap is fetched twice and counted once), and an answer whose first batch starts
 * above it is dropped whole (a guess too high: a gap), after which the next request asks for
 * `expected` itself. Guesses never pass the partition's last known nextOffset (a fetch there
 * returns nothing rather than OFFSET_OUT_OF_RANGE). Bytes are counted only for batches that
 * carried new offsets, so duplicates never inflate MB/s.
 */
import { Connection } from "../client/connection.ts";
import { readArray, readBytes, readInt, readMap, type WireMap } from "../client/wire.ts";
import { BATCH_LOG_OVERHEAD_BYTES, readBatchHeader } from "../format/record-batch.ts";
import type { ConsumerGroup, Meter, WorkloadOptions } from "./workloads.ts";

/** Fetches in flight per connection at most: 2 keeps the broker busy while an answer is read. */
export const RAW_FETCHES_IN_FLIGHT = 2;
/**
 * Fetches in flight per bench process: with 4 consumers, one each already keeps the broker busy,
 * and a second each measured 5-20% slower (more answers waiting in socket buffers, colder copies).
 */
const RAW_FETCHES_IN_FLIGHT_PER_PROCESS = 4;

/** Fetches each of `consumers` raw consumers keeps in flight. */
export function rawFetchesInFlight(consumers: number): number {
  return Math.max(1, Math.min(RAW_FETCHES_IN_FLIGHT, Math.floor(RAW_FETCHES_IN_FLIGHT_PER_PROCESS / Math.max(1, consumers))));
}

/** One partition's bookkeeping. */
export interface Track {
  partition: number;
  /** Next offset not yet counted. */
  expected: number;
  /** Offsets per answer, from the last answer that carried new data (0: not known yet). */
  stride: number;
  /** The partition's nextOffset in the latest answer (-1: not known yet). */
  highWatermark: number;
}

interface InFlight {
  /** 0: asked for `expected`; n: asked n strides further on (a guess). */
  ahead: number;
  offsets: number[];
  answer: Promise<WireMap>;
}

/** What one answer's batches held for a partition, measured against `expected`. */
export interface Counted {
  /** New records (offsets >= expected). */
  records: number;
  /** Bytes of the batches that held new records. */
  bytes: number;
  /** Offset after the last batch (-1: no whole batch). */
  endOffset: number;
  /** Base offset of the first batch (-1: no whole batch). */
  firstOffset: number;
}

/** Reads until the group stops or a fetch at the expected offsets brings nothing new (caught up). */
export async function rawFetchLoop(options: WorkloadOptions, partitions: number[], group: ConsumerGroup, meter: Meter): Promise<void> {
  if (partitions.length === 0) return;
  const depth = rawFetchesInFlight(options.consumers);
  // Reused answer buffers: an answer is read before `depth` + 1 more are assembled.
  const connection = new Connection({ broker: options.broker, clientId: "runnel-bench-raw", ...(options.tls === undefined ? {} : { tls: options.tls }) }, depth + 1);
  const tracks: Track[] = partitions.map((partition) => ({ partition, expected: 0, stride: 0, highWatermark: -1 }));
  const inFlight: InFlight[] = [];
  try {
    while (!group.check()) {
      while (inFlight.length < depth && (inFlight.length === 0 || canSpeculate(tracks))) {
        inFlight.push(sendFetch(connection, options, tracks, inFlight.length));
      }
      const next = inFlight.shift()!;
      const newRecords = readAnswer(await next.answer, next.offsets, tracks, meter);
      // An answer at the offsets still expected that brought nothing: these partitions hold no more.
      if (newRecords === 0 && next.ahead === 0) break;
    }
  } finally {
    // Speculative fetches still in flight are answered before the connection closes; their
    // failures (the group stopped mid-way) are of no interest.
    for (const pending of inFlight) pending.answer.catch(() => undefined);
    await connection.close();
  }
}

/** Asks each partition for its `expected` offset moved on by `ahead` answers' worth of offsets. */
function sendFetch(connection: Connection, options: WorkloadOptions, tracks: Track[], ahead: number): InFlight {
  const offsets = tracks.map((track) => predictOffset(track, ahead));
  const answer = connection.request("fetch", {
    partitions: tracks.map((track, index) => ({ topic: options.topic, partition: track.partition, offset: offsets[index]!, maxBytes: options.fetchBytes })),
    maxBytes: options.fetchBytes * tracks.length,
    // A guess has no reason to wait: one at the partition's end answers empty at once.
    maxWaitMs: ahead === 0 ? 100 : 0,
    minBytes: 1,
  });
  return { ahead, offsets, answer };
}

/** `expected` + `ahead` strides, never past the last known nextOffset. */
export function predictOffset(track: Track, ahead: number): number {
  const guess = track.expected + track.stride * ahead;
  return track.highWatermark < 0 ? track.expected : Math.min(guess, Math.max(track.expected, track.highWatermark));
}

/** Counts one answer's new records into `meter`; returns how many there were. */
function readAnswer(response: WireMap, offsets: number[], tracks: Track[], meter: Meter): number {
  const entries = readArray(response.partitions, "fetch", "partitions");
  const records = entries.length === 0 ? new Uint8Array(0) : readBytes(response.records, "fetch", "records");
  let position = 0;
  let newRecords = 0;
  for (const [index, item] of entries.entries()) {
    const entry = readMap(item, "fetch", "partition");
    const length = readInt(entry.recordsBytes ?? 0, "fetch", "recordsBytes");
    const track = tracks[index];
    const asked = offsets[index];
    if (track !== undefined && asked !== undefined) newRecords += applyEntry(track, asked, entry, countNew(records, position, length, track.expected), meter);
    position += length;
  }
  return newRecords;
}

function applyEntry(track: Track, asked: number, entry: WireMap, counted: Counted, meter: Meter): number {
  const highWatermark = entry.nextOffset;
  if (typeof highWatermark === "number" && highWatermark > track.highWatermark) track.highWatermark = highWatermark;
  if (counted.endOffset < 0 || counted.firstOffset > track.expected) {
    // A guess too high (a gap), or one that found nothing: nothing here is counted, and
    // guessing stops until a fetch at `expected` itself has answered.
    if (asked > track.expected) track.stride = 0;
    return 0;
  }
  meter.completed += counted.records;
  meter.bytes += counted.bytes; // raw: batch bytes as fetched, headers included
  if (counted.endOffset > track.expected) {
    track.stride = counted.endOffset - Math.max(asked, counted.firstOffset);
    track.expected = counted.endOffset;
  }
  return counted.records;
}

/** Walks the batch headers in records[position, position + length) against `expected`. */
export function countNew(records: Uint8Array, position: number, length: number, expected: number): Counted {
  const counted: Counted = { records: 0, bytes: 0, endOffset: -1, firstOffset: -1 };
  const end = position + length;
  while (position + BATCH_LOG_OVERHEAD_BYTES <= end) {
    const header = readBatchHeader(records, position);
    const total = BATCH_LOG_OVERHEAD_BYTES + header.batchLength;
    if (position + total > end) break;
    const batchEnd = header.baseOffset + header.lastOffsetDelta + 1;
    if (counted.firstOffset < 0) counted.firstOffset = header.baseOffset;
    if (batchEnd > expected) {
      counted.records += batchEnd - Math.max(header.baseOffset, expected);
      counted.bytes += total;
    }
    counted.endOffset = batchEnd;
    position += total;
  }
  return counted;
}

/** Guess only with a stride for every partition and while some partition is behind its nextOffset. */
function canSpeculate(tracks: Track[]): boolean {
  return tracks.every((track) => track.stride > 0) && tracks.some((track) => track.expected < track.highWatermark);
}
