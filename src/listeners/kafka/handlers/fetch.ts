/**
 * @module listeners/kafka/handlers/fetch
 * Fetch (key 1), versions 4-12 (12 flexible). Whole stored batches from each partition asked
 * for, starting with the batch that holds fetchOffset, sent from the segment file with sendfile
 * (the records field is a file slice: codec.ts FileRecords, sent by the listener's outbound queue
 * as the native path does). Kafka clients skip records below the offset they asked for.
 *
 * Sizes: maxBytes bounds the whole answer and partitionMaxBytes each partition's share, except
 * that the first non-empty partition always gets one whole batch (KIP-74). Long poll: answered
 * once minBytes are there or maxWaitMs (clamped to fetchWaitMsMax) passed; produces to a
 * requested partition wake it (broker/partition-notifier.ts).
 *
 * Sessions: none (KIP-227 incremental fetch is not served): the answer's sessionId is 0, which
 * tells the client to send full requests. No transactions: lastStableOffset = high watermark,
 * no aborted transactions. isolationLevel is accepted and has no effect.
 *
 * Native batches: a slice holding batches written by native clients (magic 1) takes the copy
 * path, each such batch rewritten as a magic 2 batch (listeners/kafka/native-batches.ts).
 *
 * Authorization (authorizer acl): read on each topic, else TOPIC_AUTHORIZATION_FAILED (29) on
 * its partitions, decided once when the request arrives (server/access.ts).
 */
import { type RunnelError, toRunnelError } from "../../../errors.ts";
import { deniedTopics } from "../../../server/access.ts";
import type { Partition, ReadSlice } from "../../../log/api.ts";
import type { Sleeper } from "../../../broker/partition-notifier.ts";
import { readWhenWoken, type WokenRead } from "../../../broker/woken-reads.ts";
import { checkCurrentLeaderEpoch, replicatedEpochsOf, UNDEFINED_EPOCH } from "../../../broker/leader-epochs.ts";
import { findPartition } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { kafkaRecordsOf } from "../native-batches.ts";

/** An empty record set, not null: librdkafka refuses a null one ("invalid MessageSetSize -1"), as Kafka never sends it. */
const NO_RECORDS = new Uint8Array(0);

interface FetchPartition {
  partition: number;
  /** v9+; -1 (the default) skips the check. */
  currentLeaderEpoch?: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}
interface FetchTopic {
  topic: string;
  partitions: FetchPartition[];
}
interface Gathered {
  responses: KafkaStruct[];
  slices: ReadSlice[];
  totalBytes: number;
  failed: boolean;
}

export function handleFetch(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct | Promise<KafkaStruct> {
  const config = context.broker.config;
  const waitMs = Math.max(0, Math.min(request.maxWaitMs as number, config.fetchWaitMsMax));
  const deadlineMs = Date.now() + waitMs;
  const topics = fieldAs<FetchTopic[]>(request.topics);
  const minBytes = request.minBytes as number;
  const maxBytes = Math.min(request.maxBytes as number, config.frameBytesMax - 64 * 1024);
  const denied = deniedTopics(context.broker, info.session, "read", topics);
  const first = gather(context, topics, maxBytes, denied);
  const settled = (gathered: Gathered) => gathered.totalBytes >= minBytes || gathered.failed || Date.now() >= deadlineMs || context.broker.isShuttingDown();
  if (settled(first)) return toBody(first);
  const refs = topics.flatMap((topic) => topic.partitions.map((entry) => ({ topic: topic.topic, partition: entry.partition })));
  const answer = Promise.withResolvers<KafkaStruct>();
  const sleeper: Sleeper & WokenRead = {
    // Data arrived: read after the read event (broker/woken-reads.ts); time up or shutdown: now.
    wake(woken) {
      readWhenWoken(sleeper, woken);
    },
    readAgain() {
      try {
        const gathered = gather(context, topics, maxBytes, denied);
        if (settled(gathered) || !park(gathered)) answer.resolve(toBody(gathered));
      } catch (error) {
        answer.reject(error);
      }
    },
  };
  const park = (gathered: Gathered): boolean => {
    if (!context.broker.notifier.park(refs, deadlineMs - Date.now(), sleeper)) return false;
    for (const slice of gathered.slices) slice.release();
    return true;
  };
  if (!park(first)) return toBody(first);
  return answer.promise;
}

function toBody(gathered: Gathered): KafkaStruct {
  return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: gathered.responses };
}

function gather(context: KafkaContext, topics: FetchTopic[], maxBytes: number, denied: ReadonlyMap<string, RunnelError> | null): Gathered {
  const gathered: Gathered = { responses: [], slices: [], totalBytes: 0, failed: false };
  for (const topic of topics) {
    const refusal = denied?.get(topic.topic);
    const partitions = topic.partitions.map((entry) => (refusal === undefined ? readPartition(context, topic.topic, entry, maxBytes, gathered) : refused(entry, refusal, gathered)));
    gathered.responses.push({ topic: topic.topic, partitions });
  }
  return gathered;
}

function refused(entry: FetchPartition, refusal: RunnelError, gathered: Gathered): KafkaStruct {
  gathered.failed = true;
  return { partitionIndex: entry.partition, errorCode: kafkaErrorOf(refusal).errorCode, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, abortedTransactions: null, preferredReadReplica: -1, records: NO_RECORDS };
}

function readPartition(context: KafkaContext, topic: string, entry: FetchPartition, maxBytes: number, gathered: Gathered): KafkaStruct {
  const result: KafkaStruct = { partitionIndex: entry.partition, errorCode: 0, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, abortedTransactions: null, preferredReadReplica: -1, records: NO_RECORDS };
  let partition: Partition;
  try {
    partition = findPartition(context.broker, topic, entry.partition);
  } catch (error) {
    gathered.failed = true;
    return { ...result, errorCode: kafkaErrorOf(error).errorCode };
  }
  // Cluster mode only: a single node has always served Fetch without the epoch check.
  const replicated = replicatedEpochsOf(context.broker.cluster, topic, entry.partition, partition);
  const epochCheck = replicated === undefined ? "ok" : checkCurrentLeaderEpoch(topic, entry.partition, entry.currentLeaderEpoch ?? UNDEFINED_EPOCH, replicated);
  if (epochCheck !== "ok") {
    gathered.failed = true;
    return { ...result, errorCode: epochCheck === "fenced" ? KAFKA_ERROR.FENCED_LEADER_EPOCH : KAFKA_ERROR.UNKNOWN_LEADER_EPOCH };
  }
  // Consumers read below the high watermark (the log end on a single node; docs/cluster.md).
  const highWatermark = partition.highWatermark;
  result.highWatermark = highWatermark;
  result.lastStableOffset = highWatermark;
  result.logStartOffset = partition.logStartOffset;
  try {
    const left = maxBytes - gathered.totalBytes;
    const share = Math.min(entry.partitionMaxBytes, left);
    if (share <= 0 && gathered.totalBytes > 0) return result;
    const slice = partition.read(entry.fetchOffset, Math.max(share, 1), highWatermark);
    if (slice === null) return result;
    if (gathered.totalBytes > 0 && slice.length > left) {
      slice.release();
      return result;
    }
    gathered.totalBytes += slice.length;
    context.broker.metrics?.traffic.recordOut(topic, slice.length);
    const records = kafkaRecordsOf(partition, slice);
    if (!(records instanceof Uint8Array)) gathered.slices.push(slice);
    result.records = records;
    return result;
  } catch (error) {
    gathered.failed = true;
    const failure = toRunnelError(error);
    const errorCode = failure.code === "OFFSET_OUT_OF_RANGE" ? KAFKA_ERROR.OFFSET_OUT_OF_RANGE : kafkaErrorOf(failure).errorCode;
    return { ...result, errorCode };
  }
}

