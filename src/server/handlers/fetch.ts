/**
 * @module server/handlers/fetch
 * `fetch`: whole batches from several partitions, each from its own offset, answered as
 * `{id, partitions: [{topic, partition, logStartOffset, nextOffset, recordsBytes, error?}],
 * records: bin32}` where `records` concatenates each partition's batches in request order.
 *
 * Sizes: `maxBytes` bounds the whole response's records (and a partition's own `maxBytes` its
 * share), except that the first non-empty partition always gets at least one whole batch, so a
 * consumer makes progress past a batch larger than its budget. The frame never passes
 * frameBytesMax: trailing slices are dropped (recordsBytes 0) if the head and records would.
 *
 * Long poll (Kafka's rule, docs/protocol.md): answered once `minBytes` record bytes are there or
 * `maxWaitMs` (any int, clamped to fetchWaitMsMax) has passed. With fewer than `minBytes` found
 * and no partition error, the fetch parks on the partition notifier; each produce that appends
 * to one of its partitions wakes it to read again, and it parks again while still short. A fetch that need not wait is answered without a
 * Promise, so its answer leaves in the same turn of the event loop as its request arrived.
 *
 * A fetch woken by data reads again after the whole read event (broker/woken-reads.ts), so its
 * answer carries every produce request that arrived with the one that woke it.
 *
 * Non-obvious: the reply carries ReadSlices (fd, position, length), not bytes; the connection
 * sends them with sendfile after the head and releases each once sent. A slice's first batch may
 * start below the offset asked for (it is the batch holding that offset): clients skip records
 * below their offset. OFFSET_OUT_OF_RANGE carries the partition's logStartOffset and nextOffset
 * both in the entry and in `error.details`.
 * Authorization (authorizer acl): each partition needs read on its topic, else its entry carries
 * AUTHORIZATION_FAILED (server/access.ts), decided once when the request arrives.
 */
import type { Session } from "../../security/session.ts";
import { RunnelError, toRunnelError } from "../../errors.ts";
import type { TrafficCounters } from "../../broker/metrics.ts";
import type { ReadSlice } from "../../log/api.ts";
import { encodeFetchResponseHead, FETCH_HEAD_RESERVE_BYTES, type FetchPartitionResult, type RequestOf, toWireError } from "../../protocol/messages.ts";
import type { BrokerContext, Reply } from "../context.ts";
import type { Sleeper } from "../../broker/partition-notifier.ts";
import { readWhenWoken } from "../../broker/woken-reads.ts";
import { findPartition } from "../topic-rules.ts";
import { deniedTopics } from "../access.ts";

type Gathered = { results: FetchPartitionResult[]; slices: Array<ReadSlice | null>; totalBytes: number; failed: boolean };
/** The topics the session may not read, with their errors; null for none (the common case). */
type Denied = ReadonlyMap<string, RunnelError> | null;

/**
 * Answers at once (a Reply, no Promise) when the first read settles it — the common case of a
 * consumer that is behind — so the answer is queued and sent in the same turn of the event loop
 * as its request; only a fetch that must wait returns a Promise (the long poll).
 */
export function handleFetch(context: BrokerContext, request: RequestOf<"fetch">, id: number, session: Session): Reply | Promise<Reply> {
  const waitMs = Math.min(request.maxWaitMs, context.config.fetchWaitMsMax);
  const deadlineMs = Date.now() + waitMs;
  const denied = deniedTopics(context, session, "read", request.partitions);
  const gathered = gather(context, request, denied);
  if (isSettled(context, request, gathered, deadlineMs)) return toReply(context, id, gathered);
  return longPoll(context, request, id, gathered, deadlineMs);
}

function isSettled(context: BrokerContext, request: RequestOf<"fetch">, gathered: Gathered, deadlineMs: number): boolean {
  return gathered.totalBytes >= request.minBytes || gathered.failed || deadlineMs - Date.now() <= 0 || context.isShuttingDown();
}

/**
 * Parks on the notifier until a produce appends to a requested partition or the deadline passes,
 * then reads again. Answers at once with what it has when the notifier is full.
 */
function longPoll(context: BrokerContext, request: RequestOf<"fetch">, id: number, first: Gathered, deadlineMs: number): Reply | Promise<Reply> {
  const parked = new ParkedFetch(context, request, id, deadlineMs);
  if (!parked.park(first)) return toReply(context, id, first);
  return parked.answer.promise;
}

/**
 * A fetch parked on the notifier: its own Sleeper, so parking allocates this object, its
 * Promise and the notifier's waiter, and nothing per wake-up but the new read.
 */
class ParkedFetch implements Sleeper {
  readonly answer = Promise.withResolvers<Reply>();

  constructor(
    private readonly context: BrokerContext,
    private readonly request: RequestOf<"fetch">,
    private readonly id: number,
    private readonly deadlineMs: number,
  ) {}

  /** Parks, releasing what `gathered` holds (it is read again on waking); false, holding on to it, when the notifier is full. */
  park(gathered: Gathered): boolean {
    if (!this.context.notifier.park(this.request.partitions, this.deadlineMs - Date.now(), this)) return false;
    for (const slice of gathered.slices) slice?.release();
    return true;
  }

  /** Called by the notifier. Data arrived: reads again after the read event (broker/woken-reads.ts). Time up or shutdown: now. */
  wake(woken: boolean): void {
    readWhenWoken(this, woken);
  }

  /** Reads again, then answers or parks again. */
  readAgain(): void {
    try {
      const { context, request, id } = this;
      const gathered = gather(context, request);
      if (isSettled(context, request, gathered, this.deadlineMs) || !this.park(gathered)) this.answer.resolve(toReply(context, id, gathered));
    } catch (error) {
      // The notifier's caller (a produce, the timer) must not see a fetch's failure; dispatch turns it into an error reply.
      this.answer.reject(error);
    }
  }
}

/**
 * The one Gathered every fetch reads into, and its result objects: a gathering is always used up
 * synchronously — answered (toReply copies the slices out and encodes the results into the head)
 * or parked (its slices released; a woken fetch gathers afresh) — before the next one starts, so
 * nothing per fetch is garbage here (bench/alloc.bench.ts).
 */
const scratch: Gathered = { results: [], slices: [], totalBytes: 0, failed: false };
const spareResults: FetchPartitionResult[] = [];

/** A result object for partition `index` of the gathering, reset (error removed). */
function resultFor(index: number, topic: string, partition: number): FetchPartitionResult {
  const result = (spareResults[index] ??= { topic, partition, logStartOffset: -1, nextOffset: -1, recordsBytes: 0 });
  result.topic = topic;
  result.partition = partition;
  result.logStartOffset = -1;
  result.nextOffset = -1;
  result.recordsBytes = 0;
  if (result.error !== undefined) delete result.error;
  return result;
}

function gather(context: BrokerContext, request: RequestOf<"fetch">, denied: Denied = null): Gathered {
  const budget = Math.min(request.maxBytes, context.config.frameBytesMax - FETCH_HEAD_RESERVE_BYTES);
  const gathered = scratch;
  gathered.results.length = 0;
  gathered.slices.length = 0;
  gathered.totalBytes = 0;
  gathered.failed = false;
  for (const entry of request.partitions) {
    const result = resultFor(gathered.results.length, entry.topic, entry.partition);
    let slice: ReadSlice | null = null;
    try {
      const refusal = denied?.get(entry.topic);
      if (refusal !== undefined) throw refusal;
      const partition = findPartition(context, entry.topic, entry.partition);
      result.logStartOffset = partition.logStartOffset;
      // Consumers read below the high watermark (= nextOffset on a single node; docs/cluster.md).
      const highWatermark = partition.highWatermark;
      result.nextOffset = highWatermark;
      const left = budget - gathered.totalBytes;
      const partitionBytesMax = Math.min(entry.maxBytes ?? left, left);
      // The first non-empty partition always gets one batch, whatever the budget says.
      if (partitionBytesMax > 0 || gathered.totalBytes === 0) slice = partition.read(entry.offset, Math.max(partitionBytesMax, 1), highWatermark);
      if (slice !== null && gathered.totalBytes > 0 && slice.length > left) {
        slice.release();
        slice = null;
      }
    } catch (error) {
      const failure = toRunnelError(error);
      result.error = toWireError(failure);
      if (failure.code === "OFFSET_OUT_OF_RANGE") copyOffsets(result, failure);
      gathered.failed = true;
    }
    result.recordsBytes = slice?.length ?? 0;
    gathered.totalBytes += result.recordsBytes;
    gathered.results.push(result);
    gathered.slices.push(slice);
  }
  return gathered;
}

function copyOffsets(result: FetchPartitionResult, failure: RunnelError): void {
  const details = failure.details ?? {};
  if (typeof details.logStartOffset === "number") result.logStartOffset = details.logStartOffset;
  if (typeof details.nextOffset === "number") result.nextOffset = details.nextOffset;
}

/** Encodes the head; drops trailing slices while head + records would pass the frame limit. */
function toReply(context: BrokerContext, id: number, gathered: Gathered): Reply {
  const frameBytesMax = context.config.frameBytesMax;
  let head = encodeFetchResponseHead(id, gathered.results, gathered.totalBytes);
  for (let index = gathered.slices.length - 1; head.length + gathered.totalBytes > frameBytesMax && index >= 0; index--) {
    const slice = gathered.slices[index];
    const result = gathered.results[index];
    if (slice === null || slice === undefined || result === undefined) continue;
    slice.release();
    gathered.slices[index] = null;
    gathered.totalBytes -= slice.length;
    result.recordsBytes = 0;
    if (gathered.totalBytes === 0) {
      result.error = toWireError(new RunnelError("MESSAGE_TOO_LARGE", `the batch at offset ${slice.firstOffset} does not fit in a ${frameBytesMax}-byte frame`));
    }
    head = encodeFetchResponseHead(id, gathered.results, gathered.totalBytes);
  }
  if (context.metrics !== null) countTraffic(context.metrics.traffic, gathered.results);
  return { kind: "fetch", head, slices: presentSlices(gathered.slices) };
}

/** The slices that are there (a loop, not filter(): no function object per answer). */
function presentSlices(slices: ReadonlyArray<ReadSlice | null>): ReadSlice[] {
  const present: ReadSlice[] = [];
  for (const slice of slices) if (slice !== null) present.push(slice);
  return present;
}

/** Bytes out per topic (broker/metrics.ts), counted once per answer as it is sent. */
function countTraffic(traffic: TrafficCounters, results: readonly FetchPartitionResult[]): void {
  for (const result of results) if (result.recordsBytes > 0) traffic.recordOut(result.topic, result.recordsBytes);
}
