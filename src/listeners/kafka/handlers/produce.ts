/**
 * @module listeners/kafka/handlers/produce
 * Produce (key 0), versions 0-9 (9+ flexible; advertised from 0 so old librdkafka still
 * negotiates compression). Each partition's records are Kafka record batches (magic 2); each
 * batch is stored whole — compressed ones as they came — after the log checks its header and
 * CRC-32C, and stamps baseOffset and partitionLeaderEpoch in place (record-batch.ts,
 * log/partition.ts). The answer gives the first batch's base offset.
 *
 * A batch with maxTimestamp -1 (unset, as Sarama before 1.26 sends) gets it filled in, as Kafka's
 * log validator does (format/kafka-max-timestamp.ts).
 *
 * Refused: magic 0/1 message sets (UNSUPPORTED_FOR_MESSAGE_FORMAT, 43, with a message saying so),
 * transactional batches (a transactional id: INVALID_REQUEST). A producer id this broker never
 * issued: UNKNOWN_PRODUCER_ID (59), as on the native path. Idempotent batches go through the same
 * producer state as native ones; a retry is answered with its original offsets.
 *
 * acks=0: no response at all (Kafka's rule). acks=1 and acks=-1 answer once the batches are in
 * the page cache: one node has no followers to wait for, and Kafka itself does not fsync before
 * acknowledging (flush.ms / flush.messages apply as for native produce). In a cluster
 * (docs/cluster.md) only the leader appends (else NOT_LEADER_OR_FOLLOWER, 6), and acks=-1
 * answers once the high watermark covers the batches with at least minInsyncReplicas in the ISR:
 * NOT_ENOUGH_REPLICAS (19) before appending, NOT_ENOUGH_REPLICAS_AFTER_APPEND (20) after,
 * REQUEST_TIMED_OUT (7) past replicatedAckTimeoutMs — the native `replicated` level.
 * Any other acks value: INVALID_REQUIRED_ACKS (21), nothing stored. Missing topics are created
 * when autoCreateTopics is on, off the event loop (server/topic-creation.ts) before anything is
 * appended; a topic not created gets its error on each of its partitions.
 * Authorization (authorizer acl): write on each topic, else TOPIC_AUTHORIZATION_FAILED (29) on its
 * partitions; a missing topic is auto-created only with create permission (server/access.ts).
 */
import { RunnelError } from "../../../errors.ts";
import { autoCreateTopics, missingTopics } from "../../../server/topic-creation.ts";
import { BATCH_LOG_OVERHEAD_BYTES, BATCH_MAGIC_KAFKA, FIELD, readInt64 } from "../../../format/record-batch.ts";
import { fillMissingMaxTimestamp } from "../../../format/kafka-max-timestamp.ts";
import type { Partition } from "../../../log/api.ts";
import { partitionForProduce } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { deniedTopics, mayCreateTopic } from "../../../server/access.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

interface PartitionData {
  index: number;
  records: Uint8Array | null;
}
interface TopicData {
  name: string;
  partitionData: PartitionData[];
}

const VALID_ACKS: ReadonlySet<number> = new Set([0, 1, -1]);

const NO_FAILURES: ReadonlyMap<string, RunnelError> = new Map();

export function handleProduce(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): KafkaStruct | null | Promise<KafkaStruct | null> {
  const topics = fieldAs<TopicData[]>(request.topicData);
  const denied = deniedTopics(context.broker, info.session, "write", topics.map((topic) => ({ topic: topic.name }))) ?? NO_FAILURES;
  const creatable = (topic: string) => !denied.has(topic) && mayCreateTopic(context.broker, info.session, topic);
  const missing = context.broker.config.autoCreateTopics ? missingTopics(context.broker, topics.map((topic) => topic.name)).filter(creatable) : [];
  if (missing.length === 0) return produce(context, request, version, denied);
  // The request's record bytes are its own buffer (the Kafka connection does not reuse frames).
  return autoCreateTopics(context.broker, missing).then((failures) => {
    for (const [topic, refusal] of denied) failures.set(topic, refusal);
    return produce(context, request, version, failures);
  });
}

/** acks=-1 in a cluster: each partition's answer waits for its high watermark to reach this offset. */
interface ReplicationWait {
  result: KafkaStruct;
  topic: string;
  partition: number;
  endOffset: number;
}

function produce(context: KafkaContext, request: KafkaStruct, version: number, failures: ReadonlyMap<string, RunnelError>): KafkaStruct | null | Promise<KafkaStruct | null> {
  const transactional = version >= 3 && request.transactionalId !== null;
  const acks = request.acks as number;
  const waits: ReplicationWait[] | null = acks === -1 && context.broker.replication ? [] : null;
  const responses = fieldAs<TopicData[]>(request.topicData).map((topic) => ({
    name: topic.name,
    partitionResponses: topic.partitionData.map((data) =>
      VALID_ACKS.has(acks) ? produceToPartition(context, topic.name, data, transactional, failures.get(topic.name), waits) : { index: data.index, errorCode: KAFKA_ERROR.INVALID_REQUIRED_ACKS, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [], errorMessage: `acks ${acks}: use 0, 1 or -1` },
    ),
  }));
  if (request.acks === 0) return null;
  if (waits === null || waits.length === 0) return { responses, throttleTimeMs: 0 };
  return awaitReplication(context, waits).then(() => ({ responses, throttleTimeMs: 0 }));
}

/** Waits for every acks=-1 partition; a failed wait becomes that partition's error code. */
async function awaitReplication(context: KafkaContext, waits: readonly ReplicationWait[]): Promise<void> {
  const replication = context.broker.replication!;
  const outcomes = await Promise.allSettled(waits.map((wait) => replication.waitReplicated(wait.topic, wait.partition, wait.endOffset)));
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "fulfilled") return;
    const { errorCode, errorMessage } = kafkaErrorOf(outcome.reason);
    const result = waits[index]!.result;
    result.errorCode = errorCode;
    result.errorMessage = errorMessage;
    result.baseOffset = -1;
  });
}

function produceToPartition(context: KafkaContext, topic: string, data: PartitionData, transactional: boolean, creationFailure: RunnelError | undefined, waits: ReplicationWait[] | null): KafkaStruct {
  const result = { index: data.index, errorCode: 0, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [], errorMessage: null as string | null };
  try {
    if (creationFailure !== undefined) throw creationFailure;
    if (transactional) throw new RunnelError("INVALID_REQUEST", "transactional produce is not supported by this broker");
    const records = data.records ?? new Uint8Array(0);
    const batches = splitBatches(records);
    if (batches === null) return { ...result, errorCode: KAFKA_ERROR.UNSUPPORTED_FOR_MESSAGE_FORMAT, errorMessage: MAGIC_MESSAGE };
    const partition = partitionForProduce(context.broker, topic, data.index);
    const replication = context.broker.replication ?? null;
    replication?.beforeAppend(topic, data.index, waits !== null);
    const appended = appendAll(context, partition, batches);
    replication?.afterAppend(topic, data.index);
    result.baseOffset = appended.baseOffset;
    result.logStartOffset = partition.logStartOffset;
    context.broker.notifier.notify(topic, data.index);
    waits?.push({ result, topic, partition: data.index, endOffset: appended.lastOffset + 1 });
    return result;
  } catch (error) {
    const { errorCode, errorMessage } = kafkaErrorOf(error);
    return { ...result, errorCode, errorMessage };
  }
}

const MAGIC_MESSAGE = "message format v0/v1 (magic 0 or 1) is not supported: this broker stores record batch v2 (magic 2, Kafka 0.11+); upgrade the client or set its message format to v2";

/** The batches in `records` as views; null when one is not magic 2. CORRUPT_BATCH when they do not tile it. */
function splitBatches(records: Uint8Array): Uint8Array[] | null {
  const batches: Uint8Array[] = [];
  let position = 0;
  while (position < records.length) {
    if (records.length - position <= FIELD.magic) throw new RunnelError("CORRUPT_BATCH", `records end with a ${records.length - position}-byte fragment`);
    if (records[position + FIELD.magic] !== BATCH_MAGIC_KAFKA) return null;
    const view = new DataView(records.buffer, records.byteOffset + position, records.length - position);
    const total = BATCH_LOG_OVERHEAD_BYTES + view.getInt32(FIELD.batchLength);
    if (total <= BATCH_LOG_OVERHEAD_BYTES || total > records.length - position) throw new RunnelError("CORRUPT_BATCH", `batch at byte ${position} declares ${total} bytes, ${records.length - position} are there`);
    batches.push(records.subarray(position, position + total));
    position += total;
  }
  if (batches.length === 0) throw new RunnelError("CORRUPT_BATCH", "no record batch in the request");
  return batches;
}

/** Appends each batch; the base offset of the first and the last offset of the last. */
function appendAll(context: KafkaContext, partition: Partition, batches: Uint8Array[]): { baseOffset: number; lastOffset: number } {
  const broker = context.broker;
  let firstOffset = -1;
  let lastOffset = -1;
  for (const batch of batches) {
    if (batch.length > broker.config.batchBytesMax) throw new RunnelError("MESSAGE_TOO_LARGE", `batch is ${batch.length} bytes; the limit is ${broker.config.batchBytesMax}`);
    const producerId = batch.length >= FIELD.producerId + 8 ? readInt64(new DataView(batch.buffer, batch.byteOffset, batch.length), FIELD.producerId) : -1;
    if (producerId >= 0 && !broker.producerIds.isIssued(producerId)) {
      throw new RunnelError("UNKNOWN_PRODUCER_ID", `producer id ${producerId} was never issued by this broker; call InitProducerId`);
    }
    // Sarama < 1.26 leaves maxTimestamp -1; Kafka fills it in, and so do we (kafka-max-timestamp.ts).
    fillMissingMaxTimestamp(batch, Date.now());
    const appended = partition.append(batch);
    if (appended.duplicate === true) broker.stats.batchesDuplicate++;
    else {
      broker.stats.batchesAppended++;
      broker.stats.bytesAppended += batch.length;
      broker.metrics?.traffic.recordIn(partition.topic, batch.length, appended.lastOffset - appended.baseOffset + 1);
    }
    if (firstOffset < 0) firstOffset = appended.baseOffset;
    lastOffset = Math.max(lastOffset, appended.lastOffset);
  }
  return { baseOffset: firstOffset, lastOffset };
}
