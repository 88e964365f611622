/**
 * @module server/handlers/produce
 * `produce`: appends each batch, in request order, to its partition and answers with one result
 * per batch — `{topic, partition, baseOffset, lastOffset}` or `{topic, partition, error}`. A
 * failed batch does not stop the ones after it. Missing topics are created when
 * `autoCreateTopics` is on.
 *
 * Durability: `written` answers once every append returned (bytes in the page cache); `synced`
 * awaits Partition.sync() for each partition touched — the log group-commits, so one fdatasync
 * covers every batch waiting on that partition; `none` sends no answer at all.
 *
 * Idempotence: a batch carrying a producer id is checked by the partition first; a retry of a
 * stored batch is answered with the offsets it got the first time (and, for `synced`, still
 * waits for a sync); a sequence gap or a fenced epoch is that batch's error
 * (OUT_OF_ORDER_SEQUENCE, INVALID_PRODUCER_EPOCH).
 *
 * Non-obvious: each `batch` is a view into the request frame (msgpack bin), stamped with its
 * base offset in place and written from there; the frame stays alive because append is
 * synchronous. The record bytes are never parsed here beyond the header and checksum check
 * the log does.
 */
import { RunnelError, toRunnelError } from "../../errors.ts";
import type { Partition } from "../../log/api.ts";
import { type RequestOf, toWireError, type WireError } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, NO_REPLY, type Reply } from "../context.ts";
import { partitionForProduce } from "../topic-rules.ts";

type BatchResult =
  | { topic: string; partition: number; baseOffset: number; lastOffset: number }
  | { topic: string; partition: number; error: WireError };

export function handleProduce(context: BrokerContext, request: RequestOf<"produce">, id: number): Reply | Promise<Reply> {
  const results: BatchResult[] = [];
  const touched = new Map<Partition, number[]>();
  for (const entry of request.batches) {
    try {
      const partition = partitionForProduce(context, entry.topic, entry.partition);
      if (entry.batch.length > context.config.batchBytesMax) {
        throw new RunnelError("MESSAGE_TOO_LARGE", `batch is ${entry.batch.length} bytes; the limit is ${context.config.batchBytesMax}`);
      }
      const appended = partition.append(entry.batch);
      if (appended.duplicate === true) {
        context.stats.batchesDuplicate++;
      } else {
        context.stats.batchesAppended++;
        context.stats.bytesAppended += entry.batch.length;
      }
      const indexes = touched.get(partition) ?? [];
      indexes.push(results.length);
      touched.set(partition, indexes);
      results.push({ topic: entry.topic, partition: entry.partition, baseOffset: appended.baseOffset, lastOffset: appended.lastOffset });
    } catch (error) {
      results.push({ topic: entry.topic, partition: entry.partition, error: toWireError(toRunnelError(error)) });
    }
  }
  for (const partition of touched.keys()) context.notifier.notify(partition.topic, partition.index);
  if (request.durability === "none") return NO_REPLY;
  if (request.durability === "written" || touched.size === 0) return frameReply(id, { results });
  return syncAll(context, touched, results).then(() => frameReply(id, { results }));
}

/** Awaits one group-committed sync per partition; a failed sync turns its batches into errors. */
async function syncAll(context: BrokerContext, touched: Map<Partition, number[]>, results: BatchResult[]): Promise<void> {
  const partitions = [...touched.keys()];
  const outcomes = await Promise.allSettled(partitions.map((partition) => partition.sync()));
  context.stats.syncs += partitions.length;
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "fulfilled") return;
    const error = toWireError(toRunnelError(outcome.reason));
    const partition = partitions[index] as Partition;
    for (const resultIndex of touched.get(partition) ?? []) {
      const result = results[resultIndex] as BatchResult;
      results[resultIndex] = { topic: result.topic, partition: result.partition, error };
    }
  });
}
