/**
 * @module listeners/kafka/handlers/metadata
 * Metadata (key 3), versions 0-12 (9+ flexible). One broker: this node, at the advertised host and
 * port; it is also the controller (a real node id: -1 makes the Java admin client loop) and the
 * leader of every partition, with replicas = isr = [this node], leader epoch 0.
 *
 * Topics: null (v1+) or an empty list at v0 means all topics. A named topic that does not exist
 * is created when the request allows it (v4+ allowAutoTopicCreation, true before v4) and the
 * broker's autoCreateTopics is on, as Kafka's auto.create.topics.enable; otherwise it is listed
 * with UNKNOWN_TOPIC_OR_PARTITION (3). Topic ids (v10+) are all zero: Runnel keeps none yet, and
 * the versions of Fetch we serve address topics by name. Authorized operations: none reported.
 */
import { toRunnelError } from "../../../errors.ts";
import { ensureTopic } from "../../../server/topic-rules.ts";
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

const ZERO_UUID = new Uint8Array(16);
const NO_OPERATIONS = -2147483648;

interface MetadataTopicRequest {
  name: string | null;
}

export function handleMetadata(context: KafkaContext, request: KafkaStruct, version: number): KafkaStruct {
  const requested = request.topics as MetadataTopicRequest[] | null;
  const allTopics = requested === null || (version === 0 && requested.length === 0);
  const allowCreate = version < 4 || request.allowAutoTopicCreation === true;
  const names = allTopics ? context.broker.log.listTopics() : requested.map((topic) => topic.name ?? "");
  return {
    throttleTimeMs: 0,
    brokers: [{ nodeId: context.nodeId, host: context.advertisedHost, port: context.advertisedPort, rack: null }],
    clusterId: context.clusterId,
    controllerId: context.nodeId,
    topics: names.map((name) => describeTopic(context, name, !allTopics && allowCreate)),
    clusterAuthorizedOperations: NO_OPERATIONS,
  };
}

function describeTopic(context: KafkaContext, name: string, mayCreate: boolean): KafkaStruct {
  const { log } = context.broker;
  try {
    if (!log.hasTopic(name) && mayCreate) ensureTopic(context.broker, name);
    if (!log.hasTopic(name)) return topicError(name, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION);
    const partitions = log.describeTopic(name).partitions.map((info) => ({
      errorCode: 0,
      partitionIndex: info.partition,
      leaderId: context.nodeId,
      leaderEpoch: 0,
      replicaNodes: [context.nodeId],
      isrNodes: [context.nodeId],
      offlineReplicas: [],
    }));
    return { errorCode: 0, name, topicId: ZERO_UUID, isInternal: false, partitions, topicAuthorizedOperations: NO_OPERATIONS };
  } catch (error) {
    const code = toRunnelError(error).code;
    return topicError(name, code === "UNKNOWN_TOPIC" ? KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION : kafkaErrorOf(error).errorCode);
  }
}

function topicError(name: string, errorCode: number): KafkaStruct {
  return { errorCode, name, topicId: ZERO_UUID, isInternal: false, partitions: [], topicAuthorizedOperations: NO_OPERATIONS };
}
