/**
 * @module listeners/kafka/handlers/incremental-alter-configs
 * IncrementalAlterConfigs (key 44), versions 0-1 (1+ flexible; KIP-339): per setting, an
 * operation on the topic's current config — 0 SET (the value), 1 DELETE (back to the broker's
 * default), 2 APPEND / 3 SUBTRACT (list settings only: none of Runnel's is a list, so
 * INVALID_CONFIG, as Kafka answers for a non-list setting). SET with a null value and unknown
 * operations are INVALID_REQUEST (42); names, values and bounds as AlterConfigs (INVALID_CONFIG,
 * 40). validateOnly checks all and changes nothing. Per resource: alter-topic-config.ts.
 */
import { topicDefaultsOf } from "../../../config.ts";
import { RunnelError } from "../../../errors.ts";
import type { TopicConfig } from "../../../log/api.ts";
import { alterResource, type AlterResource } from "../alter-topic-config.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { checkNoDuplicateNames, checkTopicConfigName, topicConfigValue } from "../topic-configs.ts";

type Entry = { name: string; configOperation: number; value: string | null };

const OPERATION = { set: 0, delete: 1, append: 2, subtract: 3 } as const;

export async function handleIncrementalAlterConfigs(context: KafkaContext, request: KafkaStruct, _version: number): Promise<KafkaStruct> {
  const validateOnly = request.validateOnly === true;
  const defaults = topicDefaultsOf(context.broker.config);
  const apply = (current: TopicConfig, configs: Entry[]): Partial<TopicConfig> => {
    checkNoDuplicateNames(configs);
    const next: TopicConfig = { ...current };
    for (const entry of configs) applyOne(next, entry, defaults);
    return next;
  };
  const responses: KafkaStruct[] = [];
  // One after another: a cluster change is a store round trip, and resources apply in request order.
  for (const resource of fieldAs<Array<AlterResource<Entry>>>(request.resources)) responses.push(await alterResource(context, resource, validateOnly, apply));
  return { throttleTimeMs: 0, responses };
}

function applyOne(next: TopicConfig, entry: Entry, defaults: TopicConfig): void {
  const { name, configOperation, value } = entry;
  if (configOperation === OPERATION.append || configOperation === OPERATION.subtract) {
    throw new RunnelError("INVALID_CONFIG", `topic config '${name}' is not a list: APPEND and SUBTRACT apply to list settings only`);
  }
  if (configOperation !== OPERATION.set && configOperation !== OPERATION.delete) throw new RunnelError("INVALID_REQUEST", `config operation ${configOperation} is unknown (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)`);
  checkTopicConfigName(name);
  if (configOperation === OPERATION.delete) {
    next[name] = defaults[name];
    return;
  }
  if (value === null) throw new RunnelError("INVALID_REQUEST", `SET of '${name}' needs a value (null is not one)`);
  next[name] = topicConfigValue(name, value);
}
