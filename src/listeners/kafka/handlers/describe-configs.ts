/**
 * @module listeners/kafka/handlers/describe-configs
 * DescribeConfigs (key 32), versions 0-4 (4+ flexible). Topics (resource type 2): the per-topic
 * settings Runnel keeps, under their Kafka names (retention.ms, retention.bytes, segment.bytes,
 * segment.ms, flush.messages, flush.ms), all LONG; source DEFAULT_CONFIG (5) when the value is
 * the broker's default, else DYNAMIC_TOPIC_CONFIG (1). configurationKeys narrows the list. The
 * broker (type 4, name "0"): no configs listed yet. Anything else: INVALID_REQUEST. No synonyms
 * and no documentation strings.
 */
import { topicDefaultsOf } from "../../../config.ts";
import type { TopicConfig } from "../../../log/api.ts";
import { requireTopic } from "../../../server/topic-rules.ts";
import { currentConfig } from "../../../cluster/cluster-topic-admin.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { clusterAccessCode } from "../access.ts";
import type { Session } from "../../../security/session.ts";
import { requireTopicAccess } from "../../../server/access.ts";

const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
const SOURCE_TOPIC = 1;
const SOURCE_DEFAULT = 5;
const TYPE_LONG = 5;

interface Resource {
  resourceType: number;
  resourceName: string;
  configurationKeys: string[] | null;
}

/** Needs describe on the topic (TOPIC_AUTHORIZATION_FAILED) or, for the broker, on the cluster (CLUSTER_AUTHORIZATION_FAILED). */
export function handleDescribeConfigs(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const results = fieldAs<Resource[]>(request.resources).map((resource) => describe(context, resource, info));
  return { throttleTimeMs: 0, results };
}

function describe(context: KafkaContext, resource: Resource, info: KafkaRequestInfo): KafkaStruct {
  const result = { errorCode: 0, errorMessage: null as string | null, resourceType: resource.resourceType, resourceName: resource.resourceName, configs: [] as KafkaStruct[] };
  if (resource.resourceType === RESOURCE_BROKER && resource.resourceName === String(context.nodeId)) {
    const denied = clusterAccessCode(context, info, "describe");
    return denied === KAFKA_ERROR.NONE ? result : { ...result, errorCode: denied, errorMessage: "describing the broker needs describe on the cluster" };
  }
  const session: Session = info.session;
  if (resource.resourceType !== RESOURCE_TOPIC) return { ...result, errorCode: KAFKA_ERROR.INVALID_REQUEST, errorMessage: `resource type ${resource.resourceType} '${resource.resourceName}' is not described by this broker` };
  try {
    requireTopicAccess(context.broker, session, "describe", resource.resourceName);
    const view = context.broker.cluster;
    // Cluster mode: a topic this broker holds no copy of (yet) is described from the cluster's record.
    const config = view !== null && view.partitionCount(resource.resourceName) !== undefined ? currentConfig(context.broker, view, resource.resourceName) : localConfig(context, resource.resourceName);
    const defaults = topicDefaultsOf(context.broker.config);
    const names = (Object.keys(config) as Array<keyof TopicConfig>).filter((name) => resource.configurationKeys === null || resource.configurationKeys.includes(name));
    result.configs = names.map((name) => {
      const isDefault = config[name] === defaults[name];
      return { name, value: String(config[name]), readOnly: false, isDefault, configSource: isDefault ? SOURCE_DEFAULT : SOURCE_TOPIC, isSensitive: false, synonyms: [], configType: TYPE_LONG, documentation: null };
    });
    return result;
  } catch (error) {
    const { errorCode, errorMessage } = kafkaErrorOf(error);
    return { ...result, errorCode, errorMessage };
  }
}

function localConfig(context: KafkaContext, topic: string): TopicConfig {
  requireTopic(context.broker, topic);
  return context.broker.log.describeTopic(topic).config;
}
