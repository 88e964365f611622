/**
 * @module listeners/kafka/topic-configs
 * Kafka's names for the per-topic settings Runnel keeps, and their string values read as the
 * log's TopicConfig: shared by CreateTopics, AlterConfigs and IncrementalAlterConfigs. Bounds are
 * the log's (log/topic-config.ts, checked by resolveTopicConfig); anything else Kafka knows
 * (cleanup.policy, compression.type...) is INVALID_CONFIG, naming what is supported.
 */
import { RunnelError } from "../../errors.ts";
import type { TopicConfig } from "../../log/api.ts";

export const TOPIC_CONFIG_NAMES: ReadonlySet<string> = new Set(["retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "flush.messages", "flush.ms"]);

/** Throws INVALID_CONFIG unless `name` is a per-topic setting Runnel keeps. */
export function checkTopicConfigName(name: string): asserts name is keyof TopicConfig {
  if (!TOPIC_CONFIG_NAMES.has(name)) throw new RunnelError("INVALID_CONFIG", `topic config '${name}' is not supported (supported: ${[...TOPIC_CONFIG_NAMES].join(", ")})`);
}

/** A setting's value: every one Runnel keeps is an integer (bounds are checked by the log). */
export function topicConfigValue(name: string, value: string | null): number {
  const number = Number(value);
  if (value === null || value.trim() === "" || !Number.isSafeInteger(number)) throw new RunnelError("INVALID_CONFIG", `topic config '${name}' needs an integer, got ${String(value)}`);
  return number;
}

/** Name/value pairs as overrides of the log's TopicConfig; INVALID_CONFIG for an unknown name or a non-integer. */
export function topicConfigOf(configs: ReadonlyArray<{ name: string; value: string | null }>): Partial<TopicConfig> {
  const config: Partial<TopicConfig> = {};
  for (const { name, value } of configs) {
    checkTopicConfigName(name);
    config[name] = topicConfigValue(name, value);
  }
  return config;
}

/** INVALID_REQUEST when a config name appears twice in one resource (Kafka refuses that too). */
export function checkNoDuplicateNames(configs: ReadonlyArray<{ name: string }>): void {
  const seen = new Set<string>();
  for (const { name } of configs) {
    if (seen.has(name)) throw new RunnelError("INVALID_REQUEST", `config '${name}' appears more than once`);
    seen.add(name);
  }
}
