/**
 * @module listeners/kafka/alter-topic-config
 * The step AlterConfigs (key 33) and IncrementalAlterConfigs (key 44) share: one resource's new
 * topic config applied through the core operation the native `alterTopicConfig` uses
 * (log.alterTopicConfig: validated by the log's bounds, persisted, then in force), or only
 * validated when the request says validateOnly. Per-resource answers: errors never fail the
 * request as a whole.
 *
 * Cluster mode: a topic the cluster has is validated against its config, then changed through
 * the cluster view (cluster/cluster-topic-admin.ts); every replica applies it.
 *
 * Resources: topics (type 2). The broker (type 4, its node id or "" for the cluster default) has
 * no setting alterable over Kafka: an empty change succeeds, any setting is INVALID_CONFIG (broker
 * options live in the config file and `runnel reload`). Any other type is INVALID_REQUEST.
 */
import { RunnelError } from "../../errors.ts";
import type { TopicConfig } from "../../log/api.ts";
import { resolveTopicConfig } from "../../log/topic-config.ts";
import { requireTopic } from "../../server/topic-rules.ts";
import type { KafkaStruct } from "./codec.ts";
import type { KafkaContext } from "./context.ts";
import { kafkaErrorOf } from "./errors.ts";
import { alterTopicConfigInCluster, currentConfig } from "../../cluster/cluster-topic-admin.ts";

export const RESOURCE_TOPIC = 2;
export const RESOURCE_BROKER = 4;

export interface AlterResource<Entry> {
  resourceType: number;
  resourceName: string;
  configs: Entry[];
}

/** Computes a topic's whole new config from its current one (throws INVALID_CONFIG / INVALID_REQUEST). */
export type NextTopicConfig<Entry> = (current: TopicConfig, configs: Entry[]) => Partial<TopicConfig>;

export async function alterResource<Entry>(context: KafkaContext, resource: AlterResource<Entry>, validateOnly: boolean, next: NextTopicConfig<Entry>): Promise<KafkaStruct> {
  const answer = { errorCode: 0, errorMessage: null as string | null, resourceType: resource.resourceType, resourceName: resource.resourceName };
  try {
    if (resource.resourceType === RESOURCE_BROKER) {
      checkBrokerResource(context, resource);
      return answer;
    }
    if (resource.resourceType !== RESOURCE_TOPIC) throw new RunnelError("INVALID_REQUEST", `resource type ${resource.resourceType} '${resource.resourceName}' has no configs alterable on this broker (topics: 2)`);
    const view = context.broker.cluster;
    const clustered = view !== null && view.partitionCount(resource.resourceName) !== undefined;
    if (!clustered) requireTopic(context.broker, resource.resourceName);
    const current = view !== null && clustered ? currentConfig(context.broker, view, resource.resourceName) : context.broker.log.describeTopic(resource.resourceName).config;
    const wanted = next(current, resource.configs);
    if (validateOnly) resolveTopicConfig(current, wanted);
    else if (view !== null && clustered) await alterTopicConfigInCluster(context.broker, view, resource.resourceName, wanted);
    else context.broker.log.alterTopicConfig(resource.resourceName, wanted);
    return answer;
  } catch (error) {
    return { ...answer, ...kafkaErrorOf(error) };
  }
}

function checkBrokerResource(context: KafkaContext, resource: AlterResource<unknown>): void {
  if (resource.resourceName !== "" && resource.resourceName !== String(context.nodeId)) throw new RunnelError("INVALID_REQUEST", `broker '${resource.resourceName}' is not this broker (node ${context.nodeId})`);
  if (resource.configs.length > 0) throw new RunnelError("INVALID_CONFIG", "broker settings are not altered over Kafka: set them in the config file and run `runnel reload` (docs/operations.md)");
}
