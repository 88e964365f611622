/**
 * @module listeners/kafka/handlers/metadata
 * Metadata (key 3), versions 0-12 (9+ flexible). One broker: this node, at the advertised host and
 * port; it is also the controller (a real node id: -1 makes the Java admin client loop) and the
 * leader of every partition, with replicas = isr = [this node], leader epoch 0.
 *
 * Topics: null (v1+) or an empty list at v0 means all topics. A named topic that does not exist
 * is created when the request allows it (v4+ allowAutoTopicCreation, true before v4) and the
 * broker's autoCreateTopics is on, as Kafka's auto.create.topics.enable; otherwise it is listed
 * with UNKNOWN_TOPIC_OR_PARTITION (3). Creating goes off the event loop through the same path as the
 * native listener's (server/topic-creation.ts: per-request cap, creation rate, group-committed
 * fsyncs), so the answer is then asynchronous; a topic not created gets its error. Topic ids (v10+) are all zero: Runnel keeps none yet, and
 * the versions of Fetch we serve address topics by name. Authorized operations: none reported.
 * Authorization (authorizer acl), as Kafka: all topics lists only those the principal may
 * describe; a named one it may not describe is TOPIC_AUTHORIZATION_FAILED (29), existing or not;
 * a missing one is auto-created only with create permission.
 * Cluster mode (docs/cluster.md): every live broker with a Kafka listener, the controller, and each
 * partition's leader, epoch, replicas and ISR from the cluster view (leader -1 and
 * LEADER_NOT_AVAILABLE while a partition has none). Topics are the cluster's (the view's), with its
 * partition counts, whether or not this broker holds a copy; auto-creation places the topic
 * through the view like CreateTopics.
 */
import { type RunnelError, toRunnelError } from "../../../errors.ts";
import { autoCreateTopics, missingTopics } from "../../../server/topic-creation.ts";
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { deniedTopics, mayCreateTopic } from "../../../server/access.ts";
import { authorize, isAuthorizationOn, topicResource } from "../../../security/authorizer.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { isInternalTopic } from "../../../cluster/offsets-topic.ts";

const ZERO_UUID = new Uint8Array(16);
const NO_OPERATIONS = -2147483648;
/** Kafka's LEADER_NOT_AVAILABLE (retriable): the partition has no leader right now. */
const LEADER_NOT_AVAILABLE = 5;

interface MetadataTopicRequest {
  name: string | null;
}

const NO_FAILURES: ReadonlyMap<string, RunnelError> = new Map();

export function handleMetadata(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): KafkaStruct | Promise<KafkaStruct> {
  const requested = request.topics as MetadataTopicRequest[] | null;
  const allTopics = requested === null || (version === 0 && requested.length === 0);
  const allowCreate = version < 4 || request.allowAutoTopicCreation === true;
  const broker = context.broker;
  const names = allTopics ? describable(context, info, knownTopics(context)) : requested.map((topic) => topic.name ?? "");
  const denied = (allTopics ? null : deniedTopics(broker, info.session, "describe", names.map((topic) => ({ topic })))) ?? NO_FAILURES;
  const missing = allTopics || !allowCreate ? [] : missingTopics(broker, names).filter((topic) => !denied.has(topic) && mayCreateTopic(broker, info.session, topic));
  if (missing.length === 0) return answer(context, names, denied);
  return autoCreateTopics(broker, missing).then((failures) => {
    for (const [topic, refusal] of denied) failures.set(topic, refusal);
    return answer(context, names, failures);
  });
}

/** This broker's topics, and in a cluster every topic the cluster has, sorted. */
function knownTopics(context: KafkaContext): string[] {
  const local = context.broker.log.listTopics();
  const cluster = context.broker.cluster;
  if (cluster === null) return local;
  return [...new Set([...local, ...cluster.topicNames()])].sort();
}

function describable(context: KafkaContext, info: KafkaRequestInfo, names: string[]): string[] {
  if (!isAuthorizationOn(context.broker)) return names;
  return names.filter((name) => authorize(context.broker, info.session, "describe", topicResource(name)));
}

function answer(context: KafkaContext, names: readonly string[], failures: ReadonlyMap<string, RunnelError>): KafkaStruct {
  const cluster = context.broker.cluster;
  const brokers =
    cluster === null
      ? [{ nodeId: context.nodeId, host: context.advertisedHost, port: context.advertisedPort, rack: null }]
      : cluster.brokers().flatMap((broker) => (broker.kafkaPort === null ? [] : [{ nodeId: broker.brokerId, host: broker.host, port: broker.kafkaPort, rack: null }]));
  return {
    throttleTimeMs: 0,
    brokers,
    clusterId: context.clusterId,
    controllerId: controllerOf(context),
    topics: names.map((name) => describeTopic(context, name, failures.get(name))),
    clusterAuthorizedOperations: NO_OPERATIONS,
  };
}

function describeTopic(context: KafkaContext, name: string, failure: RunnelError | undefined): KafkaStruct {
  const { log } = context.broker;
  try {
    if (failure !== undefined) throw failure;
    const count = partitionCountOf(context, name);
    if (count === undefined) return topicError(name, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION);
    const partitions = Array.from({ length: count }, (_, partition) => describePartition(context, name, partition));
    return { errorCode: 0, name, topicId: ZERO_UUID, isInternal: isInternalTopic(name), partitions, topicAuthorizedOperations: NO_OPERATIONS };
  } catch (error) {
    const code = toRunnelError(error).code;
    return topicError(name, code === "UNKNOWN_TOPIC" ? KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION : kafkaErrorOf(error).errorCode);
  }
}

/** The cluster's count (a copy here may still be growing to it), else the local log's; undefined for no such topic. */
function partitionCountOf(context: KafkaContext, name: string): number | undefined {
  const { log, cluster } = context.broker;
  const local = log.hasTopic(name) ? log.describeTopic(name).partitions.length : undefined;
  const clustered = cluster?.partitionCount(name);
  if (clustered === undefined) return local;
  return Math.max(clustered, local ?? 0);
}

function describePartition(context: KafkaContext, topic: string, partition: number): KafkaStruct {
  const cluster = context.broker.cluster;
  if (cluster === null) {
    return { errorCode: 0, partitionIndex: partition, leaderId: context.nodeId, leaderEpoch: 0, replicaNodes: [context.nodeId], isrNodes: [context.nodeId], offlineReplicas: [] };
  }
  const state = cluster.partitionState(topic, partition);
  const live = new Set(cluster.brokers().map((broker) => broker.brokerId));
  const leader = state?.leader ?? -1;
  return {
    errorCode: leader === -1 ? LEADER_NOT_AVAILABLE : 0,
    partitionIndex: partition,
    leaderId: leader,
    leaderEpoch: state?.leaderEpoch ?? -1,
    replicaNodes: [...(state?.replicas ?? [])],
    isrNodes: [...(state?.isr ?? [])],
    offlineReplicas: (state?.replicas ?? []).filter((id) => !live.has(id)),
  };
}

/** The controller's id: the cluster's (this node while it has none: -1 makes Java's admin client loop). */
function controllerOf(context: KafkaContext): number {
  return context.broker.cluster?.controllerId() ?? context.nodeId;
}

function topicError(name: string, errorCode: number): KafkaStruct {
  return { errorCode, name, topicId: ZERO_UUID, isInternal: false, partitions: [], topicAuthorizedOperations: NO_OPERATIONS };
}
