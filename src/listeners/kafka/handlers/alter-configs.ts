/**
 * @module listeners/kafka/handlers/alter-configs
 * AlterConfigs (key 33), versions 0-2 (2+ flexible): Kafka's older, non-incremental change —
 * the configs given REPLACE the topic's whole set: every per-topic setting not listed returns to
 * the broker's default (as Apache Kafka does; kafkajs `admin.alterConfigs` sends this). A null
 * value is "not set" (the default). Names: the six Kafka names Runnel keeps (topic-configs.ts);
 * any other, a non-integer, a value out of the log's bounds: INVALID_CONFIG (40); a name twice:
 * INVALID_REQUEST (42); an unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3). validateOnly checks
 * all and changes nothing. Per resource, shared with IncrementalAlterConfigs: alter-topic-config.ts.
 */
import { topicDefaultsOf } from "../../../config.ts";
import type { TopicConfig } from "../../../log/api.ts";
import { alterResource, type AlterResource } from "../alter-topic-config.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { checkNoDuplicateNames, topicConfigOf } from "../topic-configs.ts";

type Entry = { name: string; value: string | null };

export async function handleAlterConfigs(context: KafkaContext, request: KafkaStruct, _version: number): Promise<KafkaStruct> {
  const validateOnly = request.validateOnly === true;
  const defaults = topicDefaultsOf(context.broker.config);
  const replaceAll = (_current: TopicConfig, configs: Entry[]): Partial<TopicConfig> => {
    checkNoDuplicateNames(configs);
    return { ...defaults, ...topicConfigOf(configs.filter((entry) => entry.value !== null)) };
  };
  const responses: KafkaStruct[] = [];
  // One after another: a cluster change is a store round trip, and resources apply in request order.
  for (const resource of fieldAs<Array<AlterResource<Entry>>>(request.resources)) responses.push(await alterResource(context, resource, validateOnly, replaceAll));
  return { throttleTimeMs: 0, responses };
}
