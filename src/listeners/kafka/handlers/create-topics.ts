/**
 * @module listeners/kafka/handlers/create-topics
 * CreateTopics (key 19), versions 0-7 (5+ flexible). Each topic independently: numPartitions -1
 * takes defaultPartitions; replicationFactor must be -1 or 1 (one node; INVALID_REPLICATION_FACTOR
 * otherwise); manual assignments are refused (INVALID_REPLICA_ASSIGNMENT). Configs: the Kafka
 * names Runnel keeps per topic (retention.ms, retention.bytes, segment.bytes, segment.ms,
 * flush.messages, flush.ms), validated by the log; any other is INVALID_CONFIG. validateOnly
 * checks everything and creates nothing. The broker's limits (name rule, topicsMax,
 * partitionsPerTopicMax) apply as on the native path. v5+ answers carry the partition count and
 * replication factor (no config list).
 * Cluster mode (docs/cluster.md): replicationFactor -1 means 1, any other must fit the live
 * brokers (INVALID_REPLICATION_FACTOR); the config `min.insync.replicas` (default 1) is the
 * topic's minInsyncReplicas, above the replication factor INVALID_CONFIG; the topic is placed
 * and stored through the cluster view, answered once this broker's view names every leader.
 */
import { RunnelError } from "../../../errors.ts";
import { refuseInternalTopic } from "../../../cluster/offsets-topic.ts";
import { admitPartitions, checkPartitionCount, checkTopicName, checkTopicRoom } from "../../../server/topic-rules.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import type { Session } from "../../../security/session.ts";
import { requireCreateTopic } from "../../../server/access.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { topicConfigOf } from "../topic-configs.ts";
import type { ClusterView } from "../../../cluster/cluster-view.ts";
import { createTopicInCluster } from "../../../cluster/cluster-topic-admin.ts";

const ZERO_UUID = new Uint8Array(16);

interface CreateTopic {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  assignments: unknown[];
  configs: Array<{ name: string; value: string | null }>;
}

export async function handleCreateTopics(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const validateOnly = request.validateOnly === true;
  // Side by side: the log group-commits the directory fsyncs of creates that overlap.
  const topics = await Promise.all(fieldAs<CreateTopic[]>(request.topics).map((topic) => createOne(context, topic, validateOnly, info.session)));
  return { throttleTimeMs: 0, topics };
}

/** Checks run first, synchronously, in request order; the files are then made off the event loop. */
/** Needs create on the topic or the cluster (TOPIC_AUTHORIZATION_FAILED), checked before anything else. */
async function createOne(context: KafkaContext, topic: CreateTopic, validateOnly: boolean, session: Session): Promise<KafkaStruct> {
  const broker = context.broker;
  const partitions = topic.numPartitions === -1 ? broker.config.defaultPartitions : topic.numPartitions;
  const answer = { name: topic.name, topicId: ZERO_UUID, errorCode: 0, errorMessage: null as string | null, numPartitions: partitions, replicationFactor: 1, configs: null };
  try {
    requireCreateTopic(broker, session, topic.name);
    if (broker.cluster !== null) return await createOneInCluster(context, broker.cluster, topic, partitions, validateOnly, answer);
    if (topic.replicationFactor !== -1 && topic.replicationFactor !== 1) {
      return { ...answer, errorCode: KAFKA_ERROR.INVALID_REPLICATION_FACTOR, errorMessage: `replication factor ${topic.replicationFactor}: this broker is one node, so 1 (or -1) is the only choice` };
    }
    if (topic.assignments.length > 0) return { ...answer, errorCode: KAFKA_ERROR.INVALID_REPLICA_ASSIGNMENT, errorMessage: "manual replica assignments are not supported" };
    checkTopicName(topic.name);
    refuseInternalTopic(topic.name, "created");
    checkPartitionCount(broker, partitions);
    if (broker.log.hasTopic(topic.name)) throw new RunnelError("TOPIC_EXISTS", `topic '${topic.name}' already exists`);
    checkTopicRoom(broker);
    const config = topicConfigOf(topic.configs);
    if (validateOnly) return answer;
    admitPartitions(broker, partitions);
    await broker.log.createTopicAsync(topic.name, { partitions, config });
    // Groups subscribed to it get its partitions now, not at their next count check.
    broker.groups.topicsChanged();
    return answer;
  } catch (error) {
    const { errorCode, errorMessage } = kafkaErrorOf(error);
    return { ...answer, errorCode, errorMessage, numPartitions: -1, replicationFactor: -1 };
  }
}

const MIN_INSYNC_REPLICAS = "min.insync.replicas";

/** Cluster mode: checks as a single node's, then placement and the store through the view. */
async function createOneInCluster(context: KafkaContext, view: ClusterView, topic: CreateTopic, partitions: number, validateOnly: boolean, answer: KafkaStruct): Promise<KafkaStruct> {
  const broker = context.broker;
  const replicationFactor = topic.replicationFactor === -1 ? 1 : topic.replicationFactor;
  const live = view.brokers().length;
  if (replicationFactor < 1 || replicationFactor > live) {
    return { ...answer, errorCode: KAFKA_ERROR.INVALID_REPLICATION_FACTOR, errorMessage: `replication factor ${topic.replicationFactor}: ${live} broker(s) are live, so 1..${live} (or -1 for 1)`, numPartitions: -1, replicationFactor: -1 };
  }
  if (topic.assignments.length > 0) return { ...answer, errorCode: KAFKA_ERROR.INVALID_REPLICA_ASSIGNMENT, errorMessage: "manual replica assignments are not supported", numPartitions: -1, replicationFactor: -1 };
  checkTopicName(topic.name);
  checkPartitionCount(broker, partitions);
  if (broker.log.hasTopic(topic.name) || view.partitionCount(topic.name) !== undefined) throw new RunnelError("TOPIC_EXISTS", `topic '${topic.name}' already exists`);
  const minInsync = topic.configs.find((entry) => entry.name === MIN_INSYNC_REPLICAS);
  const minInsyncReplicas = minInsync === undefined ? 1 : Number(minInsync.value);
  if (!Number.isSafeInteger(minInsyncReplicas) || minInsyncReplicas < 1 || minInsyncReplicas > replicationFactor) {
    throw new RunnelError("INVALID_CONFIG", `${MIN_INSYNC_REPLICAS} ${String(minInsync?.value)} must be an integer from 1 to the replication factor ${replicationFactor}`);
  }
  const config = topicConfigOf(topic.configs.filter((entry) => entry.name !== MIN_INSYNC_REPLICAS));
  if (validateOnly) return { ...answer, replicationFactor };
  admitPartitions(broker, partitions);
  await createTopicInCluster(broker, view, topic.name, partitions, { replicationFactor, minInsyncReplicas }, config);
  broker.groups.topicsChanged();
  return { ...answer, replicationFactor };
}
