/**
 * @module client/fetch-answer
 * Unpacking one fetch answer for the consumer (client/consumer.ts), in two halves, so the
 * consumer can send its next fetch in between:
 *
 * 1. `planAnswer`: checks each partition's entry, applies partition errors (the reset
 *    policy) and advances each position past the whole batches received, reading only batch
 *    headers. What is left to decode is written down as spans in the reused `FetchScratch`.
 * 2. `decodeAnswer`: verifies each planned batch's checksum and decodes its records into
 *    Messages, skipping those below the requested offset (the broker sends whole batches)
 *    and, after a timestamp start, those older than it. A corrupt batch puts every position
 *    back.
 *
 * Functions over explicit inputs: the consumer owns the cursors and the scratch and hands
 * them in. Also here: the per-partition state both halves work on (`Cursor`) and a fetch's
 * outcome.
 */
import { RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { BATCH_HEADER_BYTES, BATCH_MAGIC_V1, type BatchHeader, decodeRecords } from "../format/record-batch.ts";
import { batchBaseOffsetAt, batchLastOffsetDeltaAt, decodeRecordRangeInto, type RecordFactory, scratchBatchHeader, verifyBatchAt, wholeBatchBytesAt } from "../format/record-decode.ts";
import type { Message, OffsetResetPolicy, StartPosition } from "./consumer.ts";
import { type WireMap, brokerError, isMap, malformed, readArray, readBytes, readInt, readMap } from "./wire.ts";

/** One assigned partition: where the consumer stands in it. */
export interface Cursor {
  topic: string;
  partition: number;
  from: StartPosition | undefined;
  /** Next offset to fetch; -1 until the start position is resolved. */
  position: number;
  /** Next offset after the last processed message; -1 when nothing was processed. */
  processed: number;
  committed: number;
  /** After a timestamp start: skip records older than this until the first newer one. */
  skipBeforeTimestamp: number;
  maxBytes: number;
  /** This partition's entry in the fetch request, updated in place for each fetch (no map per fetch). */
  wire: { topic: string; partition: number; offset: number; maxBytes: number };
}

/** One fetch's answer; `cursors[i]` was asked for at `offsets[i]`. */
export interface FetchOutcome {
  response: WireMap | null;
  error: RunnelError | null;
  cursors: Cursor[];
  offsets: number[];
}

/** A fetch answer being planned (see `planAnswer`): where the walk over its entries stands. */
export interface Planning {
  outcome: FetchOutcome;
  entries: unknown[];
  records: Uint8Array;
  /** Next entry to plan. */
  index: number;
  /** Start of that entry's records in `records`. */
  position: number;
  partitionErrors: number;
}

/**
 * What unpacking reuses from one answer to the next (the consumer has one answer at a time):
 * the planned spans (one per partition with whole batches: its cursor, its records, the offset
 * decoding starts at), a batch header, and the partition being decoded, read by `makeMessage`
 * (one factory, not a closure per partition per fetch).
 */
export interface FetchScratch {
  readonly spanCursors: Cursor[];
  readonly spanBytes: Uint8Array[];
  readonly spanFromOffsets: number[];
  readonly header: BatchHeader;
  decodingTopic: string;
  decodingPartition: number;
  readonly makeMessage: RecordFactory<Message>;
  /**
   * With `reuseMessages`: the Message objects of the last answer, refilled by the next one
   * (`pooled` of them handed out so far); null: a fresh object per record.
   */
  readonly pool: Message[] | null;
  pooled: number;
}

/** `reuseMessages`: decode into the same Message objects answer after answer (Consumer's reuseFetchBuffers). */
export function createFetchScratch(reuseMessages = false): FetchScratch {
  const scratch: FetchScratch = {
    spanCursors: [],
    spanBytes: [],
    spanFromOffsets: [],
    header: scratchBatchHeader(),
    decodingTopic: "",
    decodingPartition: 0,
    makeMessage: reuseMessages ? (offset, timestamp, key, value) => refill(scratch, offset, timestamp, key, value) : (offset, timestamp, key, value) => ({ topic: scratch.decodingTopic, partition: scratch.decodingPartition, offset, timestamp, key, value, headers: null }),
    pool: reuseMessages ? [] : null,
    pooled: 0,
  };
  return scratch;
}

/** The pool's next Message, refilled (a new one only while the pool is smaller than the answer). */
function refill(scratch: FetchScratch, offset: number, timestamp: number, key: Uint8Array | null, value: Uint8Array | null): Message {
  const pool = scratch.pool!;
  let message = pool[scratch.pooled];
  if (message === undefined) {
    message = { topic: scratch.decodingTopic, partition: scratch.decodingPartition, offset, timestamp, key, value, headers: null };
    pool.push(message);
  } else {
    message.topic = scratch.decodingTopic;
    message.partition = scratch.decodingPartition;
    message.offset = offset;
    message.timestamp = timestamp;
    message.key = key;
    message.value = value;
    message.headers = null;
  }
  scratch.pooled++;
  return message;
}

const EMPTY_RECORDS = new Uint8Array(0);

/** Begins planning an answered fetch (`outcome.response` is set); forgets the last answer's spans. */
export function startPlanning(outcome: FetchOutcome, scratch: FetchScratch): Planning {
  const response = outcome.response!;
  const entries = readArray(response.partitions, "fetch", "partitions");
  const records = entries.length === 0 ? EMPTY_RECORDS : readBytes(response.records, "fetch", "records");
  scratch.spanCursors.length = 0;
  scratch.spanBytes.length = 0;
  scratch.spanFromOffsets.length = 0;
  return { outcome, entries, records, index: 0, position: 0, partitionErrors: 0 };
}

/**
 * First half of unpacking a fetch answer: checks the entries, applies partition errors (the
 * reset policy) and advances each position past the whole batches received, reading only
 * batch headers; planned spans go to `scratch.span*`. The records are verified and decoded
 * afterwards, by `decodeAnswer`. Returns null when done, or the cursor of an entry whose reset
 * needs an offset lookup: the caller looks it up and calls again, which goes on after that
 * entry.
 */
export function planAnswer(planning: Planning, scratch: FetchScratch, offsetReset: OffsetResetPolicy): Cursor | null {
  const { outcome, entries, records } = planning;
  while (planning.index < entries.length) {
    const index = planning.index++;
    const item = entries[index];
    // The field name is built only for the error (not a string per entry per fetch).
    const entry = isMap(item) ? item : readMap(item, "fetch", `partitions[${index}]`);
    const recordsBytes = entry.recordsBytes === undefined ? 0 : readRecordsBytes(entry.recordsBytes, index);
    const position = planning.position;
    if (recordsBytes < 0 || position + recordsBytes > records.length) throw malformed("fetch", `partitions[${index}].recordsBytes runs past the records`);
    planning.position += recordsBytes;
    const requested = matchRequested(outcome, index, entry);
    // Answers for a position that moved since (a reset) are stale.
    if (requested < 0 || outcome.cursors[requested]!.position !== outcome.offsets[requested]) continue;
    const cursor = outcome.cursors[requested]!;
    if (entry.error !== undefined) {
      planning.partitionErrors += 1;
      if (onPartitionError(cursor, entry, offsetReset)) return cursor;
      continue;
    }
    const fromOffset = cursor.position;
    const bytes = records.subarray(position, position + recordsBytes);
    if (advance(cursor, bytes)) {
      scratch.spanCursors.push(cursor);
      scratch.spanBytes.push(bytes);
      scratch.spanFromOffsets.push(fromOffset);
    }
  }
  return null;
}

/**
 * Second half: verifies and decodes the planned spans into a new message array (it is handed
 * to the caller) and records its runs: messages[runEnds[i - 1] .. runEnds[i]) came from
 * runCursors[i]'s partition (both arrays are the caller's, refilled). A corrupt batch puts
 * every position back where the answer started (the fetch sent meanwhile becomes stale and is
 * ignored), empties the runs and throws.
 */
/** `into`: a list to fill (emptied first) instead of a new one, with reuseMessages. */
export function decodeAnswer(scratch: FetchScratch, runCursors: Cursor[], runEnds: number[], into: Message[] | null = null): Message[] {
  const messages: Message[] = into ?? [];
  messages.length = 0;
  scratch.pooled = 0;
  runCursors.length = 0;
  runEnds.length = 0;
  try {
    for (let index = 0; index < scratch.spanCursors.length; index++) {
      const cursor = scratch.spanCursors[index]!;
      decodePartition(scratch, cursor, scratch.spanBytes[index]!, scratch.spanFromOffsets[index]!, messages);
      runCursors.push(cursor);
      runEnds.push(messages.length);
    }
  } catch (error) {
    for (let index = 0; index < scratch.spanCursors.length; index++) scratch.spanCursors[index]!.position = scratch.spanFromOffsets[index]!;
    runCursors.length = 0;
    runEnds.length = 0;
    throw error;
  }
  return messages;
}

/** Verifies and decodes one partition's batches: one Message per record from `fromOffset` on. */
function decodePartition(scratch: FetchScratch, cursor: Cursor, bytes: Uint8Array, fromOffset: number, messages: Message[]): void {
  scratch.decodingTopic = cursor.topic;
  scratch.decodingPartition = cursor.partition;
  const header = scratch.header;
  for (let position = 0, total = wholeBatchBytesAt(bytes, 0); total > 0; position += total, total = wholeBatchBytesAt(bytes, position)) {
    verifyBatchAt(bytes, position, total, header);
    if (header.baseOffset + header.lastOffsetDelta < fromOffset) continue;
    // Kafka-written batches (magic 2) take the generic path (record-batch.ts decodeRecords).
    const fast = cursor.skipBeforeTimestamp < 0 && header.magic === BATCH_MAGIC_V1 && decodeRecordRangeInto(bytes, position + BATCH_HEADER_BYTES, position + total, header.baseOffset, header.firstTimestamp, header.recordCount, fromOffset, scratch.makeMessage, messages);
    if (!fast) decodeGeneric(cursor, bytes.subarray(position, position + total), header, fromOffset, messages);
  }
}

/**
 * Applies a partition's error: retriable ones are tried again by the next fetch; out of range
 * resets the position (`offsetReset`). True when the reset needs an offset lookup (the broker
 * gave no usable hint): the caller does it.
 */
function onPartitionError(cursor: Cursor, entry: WireMap, offsetReset: OffsetResetPolicy): boolean {
  const where = `${cursor.topic}/${cursor.partition}`;
  const error = brokerError(entry.error, `fetch of ${where} at offset ${cursor.position}`);
  if (error.code !== "OFFSET_OUT_OF_RANGE") {
    if (error.retriable) return false;
    throw error;
  }
  if (offsetReset === "error") {
    throw new RunnelError("OFFSET_OUT_OF_RANGE", `${where}: offset ${cursor.position} is out of range (the log holds ${String(entry.logStartOffset)}..${String(entry.nextOffset)}); offsetReset is "error"`, {
      details: { topic: cursor.topic, partition: cursor.partition, offset: cursor.position, logStartOffset: entry.logStartOffset, nextOffset: entry.nextOffset },
    });
  }
  const hint = offsetReset === "earliest" ? entry.logStartOffset : entry.nextOffset;
  if (typeof hint !== "number" || !Number.isSafeInteger(hint) || hint < 0) return true;
  cursor.position = hint;
  return false;
}

function readRecordsBytes(value: unknown, index: number): number {
  return typeof value === "number" && Number.isSafeInteger(value) ? value : readInt(value, "fetch", `partitions[${index}].recordsBytes`);
}

/** Index in the request of the partition an answer entry is for (the same index when the broker kept the order); -1 when none. */
function matchRequested(outcome: FetchOutcome, index: number, entry: WireMap): number {
  const same = outcome.cursors[index];
  if (same !== undefined && same.topic === entry.topic && same.partition === entry.partition) return index;
  return outcome.cursors.findIndex((cursor) => cursor.topic === entry.topic && cursor.partition === entry.partition);
}

/**
 * Moves the cursor past the whole batches in `bytes` (headers only). False when there is
 * nothing to decode. Bytes but not one whole batch: the next batch is larger than we asked
 * for, so ask for more.
 */
function advance(cursor: Cursor, bytes: Uint8Array): boolean {
  let whole = 0;
  for (let position = 0, total = wholeBatchBytesAt(bytes, 0); total > 0; position += total, total = wholeBatchBytesAt(bytes, position)) {
    whole += 1;
    const nextOffset = batchBaseOffsetAt(bytes, position) + batchLastOffsetDeltaAt(bytes, position) + 1;
    if (nextOffset > cursor.position) cursor.position = nextOffset;
  }
  if (whole === 0 && bytes.length > 0) cursor.maxBytes = Math.min(cursor.maxBytes * 2, LIMITS.batchBytesMax);
  return whole > 0;
}

/** Any record shape (headers...), and the timestamp start: through the generic decoder. */
function decodeGeneric(cursor: Cursor, batch: Uint8Array, header: BatchHeader, fromOffset: number, messages: Message[]): void {
  for (const record of decodeRecords(batch, header)) {
    if (record.offset < fromOffset) continue;
    if (cursor.skipBeforeTimestamp >= 0) {
      if (record.timestamp < cursor.skipBeforeTimestamp) continue;
      cursor.skipBeforeTimestamp = -1;
    }
    messages.push({ topic: cursor.topic, partition: cursor.partition, offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers });
  }
}
