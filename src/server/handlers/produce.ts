/**
 * @module server/handlers/produce
 * `produce`: appends each batch, in request order, to its partition and answers with one result
 * per batch — `{topic, partition, baseOffset, lastOffset}` or `{topic, partition, error}`. A
 * failed batch does not stop the ones after it. Missing topics are created when
 * `autoCreateTopics` is on.
 *
 * Durability: `written` answers once every append returned (bytes in the page cache); `synced`
 * awaits Partition.sync() for each partition touched — the log group-commits, so one fdatasync
 * covers every batch waiting on that partition; `none` sends no answer at all. `replicated`
 * (cluster, docs/cluster.md) answers once the partition's high watermark covers the batch with
 * at least minInsyncReplicas in the ISR (cluster/replica-manager.ts); on a single node it is
 * `written`. In a cluster only the leader appends: elsewhere a batch gets NOT_LEADER.
 *
 * Idempotence: a batch carrying a producer id is checked by the partition first; a retry of a
 * stored batch is answered with the offsets it got the first time (and, for `synced`, still
 * waits for a sync); a sequence gap or a fenced epoch is that batch's error
 * (OUT_OF_ORDER_SEQUENCE, INVALID_PRODUCER_EPOCH). Before that, a producer id this broker never
 * issued (at or above the initProducer counter, broker/producer-ids.ts) is refused here with
 * UNKNOWN_PRODUCER_ID and never reaches the log: the partition would otherwise start tracking
 * sequences for an id that initProducer may later hand to someone else. Both request decoders
 * (the fast one and the generic one) end in this handler, so both refuse it alike.
 *
 * Timestamps: a batch's firstTimestamp and maxTimestamp must lie in 0 .. 2^53-1 with max >= first
 * (record-batch.ts checkBatchTimestamps; CORRUPT_BATCH), checked here rather than in the log's
 * header check so that batches stored before the rule still recover and read.
 *
 * Non-obvious: each `batch` is a view into the request frame (msgpack bin), stamped with its
 * base offset in place and written from there; the frame stays alive because append is
 * synchronous. The record bytes are never parsed here beyond the header and checksum check
 * the log does; the producer-id check reads the 8 bytes of that one header field, and only a
 * batch about to be refused for it is verified here first (so a damaged batch still gets
 * CORRUPT_BATCH, as the log would answer).
 *
 * Auto-creation (the rare path): when a batch names a missing topic, the request first copies its
 * batches (the frame buffer is reused once dispatch returns), creates the missing topics off the
 * event loop (server/topic-creation.ts: per-request cap, rate, limits — a refused topic's batches
 * get that error), then appends as usual. The connection applies none of its later requests
 * meanwhile (appliedLater), so appends on one connection keep their order.
 *
 * Authorization (authorizer acl, server/access.ts): each batch needs write on its topic, else
 * that batch gets AUTHORIZATION_FAILED (whether or not the topic exists); a missing topic is
 * auto-created only for a principal that may create it, else its batches get UNKNOWN_TOPIC.
 */
import type { Session } from "../../security/session.ts";
import { RunnelError, toRunnelError } from "../../errors.ts";
import { BATCH_HEADER_BYTES, checkBatchTimestamps, FIELD, NO_PRODUCER, verifyBatch } from "../../format/record-batch.ts";
import type { Partition } from "../../log/api.ts";
import { encodeProduceResponseFrame, type ProduceBatchResult, type RequestOf, toWireError } from "../../protocol/messages.ts";
import { appliedLater, type BrokerContext, NO_REPLY, type Reply } from "../context.ts";
import { autoCreateTopics, missingTopics } from "../topic-creation.ts";
import { deniedTopics, mayCreateTopic } from "../access.ts";
import { partitionForProduce } from "../topic-rules.ts";

/** Above this many distinct partitions a Set finds repeats faster than a scan of the list. */
const PARTITIONS_SCANNED_MAX = 8;

type ProduceEntry = RequestOf<"produce">["batches"][number];
const NO_FAILURES: ReadonlyMap<string, RunnelError> = new Map();

export function handleProduce(context: BrokerContext, request: RequestOf<"produce">, id: number, session: Session): Reply | Promise<Reply> {
  const denied = deniedTopics(context, session, "write", request.batches) ?? NO_FAILURES;
  if (context.config.autoCreateTopics && namesMissingTopic(context, request.batches)) return produceAfterCreating(context, request, id, session, denied);
  return produceNow(context, request, id, denied);
}

/** The hot path's check: one map lookup per batch. */
function namesMissingTopic(context: BrokerContext, batches: readonly ProduceEntry[]): boolean {
  for (const entry of batches) if (!context.log.hasTopic(entry.topic)) return true;
  return false;
}

function produceAfterCreating(context: BrokerContext, request: RequestOf<"produce">, id: number, session: Session, denied: ReadonlyMap<string, RunnelError>): Promise<Reply> {
  // Copies: the batches are views into the connection's frame buffer, reused after dispatch.
  const copy: RequestOf<"produce"> = { ...request, batches: request.batches.map((entry) => ({ ...entry, batch: entry.batch.slice() })) };
  const missing = missingTopics(context, copy.batches.map((entry) => entry.topic)).filter((topic) => !denied.has(topic) && mayCreateTopic(context, session, topic));
  let markApplied: () => void = () => {};
  const applied = new Promise<void>((resolve) => {
    markApplied = resolve;
  });
  const reply = autoCreateTopics(context, missing)
    .then((failures) => {
      try {
        for (const [topic, refusal] of denied) failures.set(topic, refusal);
        return produceNow(context, copy, id, failures);
      } finally {
        // Appended (or refused): later requests may go on while a synced answer waits.
        markApplied();
      }
    })
    .finally(() => markApplied());
  return appliedLater(reply, applied);
}

/**
 * Lists produceNow reuses when it answers at once (`written`, `none`): encoded into the answer
 * before it returns, so no list per request is garbage. Answers that wait (synced, replicated)
 * keep lists of their own.
 */
const scratch = { results: [] as ProduceBatchResult[], appendedTo: [] as Array<Partition | null>, touched: [] as Partition[] };

function produceNow(context: BrokerContext, request: RequestOf<"produce">, id: number, createFailures: ReadonlyMap<string, RunnelError>): Reply | Promise<Reply> {
  const answersNow = request.durability === "written" || request.durability === "none";
  const results: ProduceBatchResult[] = answersNow ? emptied(scratch.results) : [];
  // appendedTo[i]: the partition batch i was appended to, or null when it failed.
  const appendedTo: Array<Partition | null> = answersNow ? emptied(scratch.appendedTo) : [];
  const replicated = request.durability === "replicated";
  for (const entry of request.batches) appendedTo.push(appendBatch(context, entry, results, createFailures, replicated));
  const touched = distinctPartitions(appendedTo, answersNow ? emptied(scratch.touched) : []);
  for (const partition of touched) context.notifier.notify(partition.topic, partition.index);
  if (request.durability === "none") return releaseScratch(NO_REPLY);
  if (replicated && touched.length > 0 && context.replication) return answerWhenReplicated(context, appendedTo, results, id);
  if (request.durability === "written" || replicated || touched.length === 0) return releaseScratch({ kind: "frame", frame: encodeProduceResponseFrame(id, results) });
  return answerWhenSynced(context, touched, appendedTo, results, id);
}

function emptied<T>(list: T[]): T[] {
  list.length = 0;
  return list;
}

/** Lets go of what the scratch lists point at (partitions, topic names) once the answer is encoded. */
function releaseScratch(reply: Reply): Reply {
  scratch.results.length = 0;
  scratch.appendedTo.length = 0;
  scratch.touched.length = 0;
  return reply;
}

/** Apart from produceNow so that its closure is not a scope object on every written produce (bench/alloc.bench.ts). */
function answerWhenReplicated(context: BrokerContext, appendedTo: ReadonlyArray<Partition | null>, results: ProduceBatchResult[], id: number): Promise<Reply> {
  return replicateAll(context, appendedTo, results).then(() => ({ kind: "frame", frame: encodeProduceResponseFrame(id, results) }));
}

/** Apart from produceNow so that its closure is not a scope object on every written produce (bench/alloc.bench.ts). */
function answerWhenSynced(context: BrokerContext, touched: Partition[], appendedTo: ReadonlyArray<Partition | null>, results: ProduceBatchResult[], id: number): Promise<Reply> {
  return syncAll(context, touched, appendedTo, results).then(() => ({ kind: "frame", frame: encodeProduceResponseFrame(id, results) }));
}

/** Appends one batch and pushes its result; returns its partition, or null when it failed. */
function appendBatch(context: BrokerContext, entry: ProduceEntry, results: ProduceBatchResult[], createFailures: ReadonlyMap<string, RunnelError>, replicated: boolean): Partition | null {
  try {
    const createFailure = createFailures.size === 0 ? undefined : createFailures.get(entry.topic);
    if (createFailure !== undefined) throw createFailure;
    const partition = partitionForProduce(context, entry.topic, entry.partition);
    if (entry.batch.length > context.config.batchBytesMax) {
      throw new RunnelError("MESSAGE_TOO_LARGE", `batch is ${entry.batch.length} bytes; the limit is ${context.config.batchBytesMax}`);
    }
    checkBatchTimestamps(entry.batch);
    // Leadership first: a follower answers NOT_LEADER (retriable: the client finds the leader),
    // whoever issued the batch's producer id.
    const replication = context.replication ?? null;
    replication?.beforeAppend(entry.topic, entry.partition, replicated);
    refuseUnissuedProducer(context, entry.batch);
    const appended = partition.append(entry.batch);
    replication?.afterAppend(entry.topic, entry.partition);
    if (appended.duplicate === true) {
      context.stats.batchesDuplicate++;
    } else {
      context.stats.batchesAppended++;
      context.stats.bytesAppended += entry.batch.length;
      context.metrics?.traffic.recordIn(entry.topic, entry.batch.length, appended.lastOffset - appended.baseOffset + 1);
    }
    results.push({ topic: entry.topic, partition: entry.partition, baseOffset: appended.baseOffset, lastOffset: appended.lastOffset });
    return partition;
  } catch (error) {
    results.push({ topic: entry.topic, partition: entry.partition, error: toWireError(toRunnelError(error)) });
    return null;
  }
}

/** Throws UNKNOWN_PRODUCER_ID for an idempotent batch whose producer id this broker never issued. */
function refuseUnissuedProducer(context: BrokerContext, batch: Uint8Array): void {
  const producerId = producerIdOf(batch);
  if (producerId < 0 || context.producerIds.isIssued(producerId)) return;
  // Cold path: a batch damaged in the id field must read as CORRUPT_BATCH, not as a stranger.
  verifyBatch(batch, context.config.batchBytesMax);
  throw new RunnelError("UNKNOWN_PRODUCER_ID", `producer id ${producerId} was never issued by this broker; call initProducer for an id`, {
    details: { producerId },
  });
}

/**
 * The header's producerId (i64 big-endian), or NO_PRODUCER's -1 when the batch is too short to
 * hold a header (the log refuses it as CORRUPT_BATCH). Read byte by byte rather than through
 * readBatchHeader: this runs for every batch, and a DataView plus a header object per batch is
 * garbage the broker's GC pays for. Same arithmetic as record-batch's readInt64.
 */
function producerIdOf(batch: Uint8Array): number {
  if (batch.length < BATCH_HEADER_BYTES) return NO_PRODUCER.producerId;
  const at = FIELD.producerId;
  const high = ((batch[at] ?? 0) << 24) | ((batch[at + 1] ?? 0) << 16) | ((batch[at + 2] ?? 0) << 8) | (batch[at + 3] ?? 0);
  if (high < 0) return NO_PRODUCER.producerId; // any negative id: not idempotent, as the log reads it
  const low = (((batch[at + 4] ?? 0) << 24) | ((batch[at + 5] ?? 0) << 16) | ((batch[at + 6] ?? 0) << 8) | (batch[at + 7] ?? 0)) >>> 0;
  return high * 0x1_0000_0000 + low;
}

/** The partitions batches were appended to, each once, in first-append order. */
function distinctPartitions(appendedTo: ReadonlyArray<Partition | null>, distinct: Partition[]): Partition[] {
  let seen: Set<Partition> | null = null;
  for (const partition of appendedTo) {
    if (partition === null) continue;
    if (seen === null && distinct.length >= PARTITIONS_SCANNED_MAX) seen = new Set(distinct);
    if (seen !== null ? seen.has(partition) : distinct.includes(partition)) continue;
    distinct.push(partition);
    seen?.add(partition);
  }
  return distinct;
}

/**
 * Awaits, per partition touched, the high watermark past its last batch (replica-manager.ts
 * waitReplicated); a partition whose wait fails turns its batches into that error.
 */
async function replicateAll(context: BrokerContext, appendedTo: ReadonlyArray<Partition | null>, results: ProduceBatchResult[]): Promise<void> {
  const replication = context.replication!;
  const endOffsets = new Map<Partition, number>();
  appendedTo.forEach((partition, index) => {
    const result = results[index];
    if (partition === null || result === undefined || !("lastOffset" in result)) return;
    endOffsets.set(partition, Math.max(endOffsets.get(partition) ?? 0, result.lastOffset + 1));
  });
  const touched = [...endOffsets];
  const outcomes = await Promise.allSettled(touched.map(([partition, endOffset]) => replication.waitReplicated(partition.topic, partition.index, endOffset)));
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "fulfilled") return;
    const error = toWireError(toRunnelError(outcome.reason));
    const partition = touched[index]![0];
    appendedTo.forEach((appended, resultIndex) => {
      const result = results[resultIndex];
      if (appended === partition && result !== undefined) results[resultIndex] = { topic: result.topic, partition: result.partition, error };
    });
  });
}

/** Awaits one group-committed sync per partition; a failed sync turns its batches into errors. */
async function syncAll(context: BrokerContext, touched: Partition[], appendedTo: ReadonlyArray<Partition | null>, results: ProduceBatchResult[]): Promise<void> {
  const outcomes = await Promise.allSettled(touched.map((partition) => partition.sync()));
  context.stats.syncs += touched.length;
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "fulfilled") return;
    const error = toWireError(toRunnelError(outcome.reason));
    const partition = touched[index];
    appendedTo.forEach((appended, resultIndex) => {
      const result = results[resultIndex];
      if (appended === partition && result !== undefined) results[resultIndex] = { topic: result.topic, partition: result.partition, error };
    });
  });
}
