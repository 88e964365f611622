/**
 * @module log/topic-config
 * Per-topic configuration: each option declared once with its bounds and default, and the
 * topic name rule. zod runs here, on the control plane only (create, alter, load).
 *
 *   option            default          bounds
 *   retention.ms      604800000 (7 d)  -1 (keep forever) or 0 .. 2^53-1
 *   retention.bytes   -1 (no bound)    -1 or 0 .. 2^53-1, per partition
 *   segment.bytes     1073741824       4096 .. 2147483647
 *   segment.ms        604800000 (7 d)  1 .. 2^53-1
 *   flush.messages    -1 (off)         -1 or 1 .. 2^53-1
 *   flush.ms          -1 (off)         -1 or 0 .. 2^53-1
 */
import { z } from "zod";
import { RunnelError } from "../errors.ts";
import { GiB, LIMITS, TOPIC_NAME_PATTERN } from "../limits.ts";
import type { TopicConfig } from "./api.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

export const DEFAULT_TOPIC_CONFIG: Readonly<TopicConfig> = Object.freeze({
  "retention.ms": 7 * DAY_MS,
  "retention.bytes": -1,
  "segment.bytes": GiB,
  "segment.ms": 7 * DAY_MS,
  "flush.messages": -1,
  "flush.ms": -1,
});

const integer = () => z.number().int().max(Number.MAX_SAFE_INTEGER);
const minusOneOr = (min: number) =>
  integer().refine((value) => value === -1 || value >= min, { message: `must be -1 or at least ${min}` });

export const topicConfigSchema = z.strictObject({
  "retention.ms": minusOneOr(0),
  "retention.bytes": minusOneOr(0),
  "segment.bytes": integer().min(LIMITS.segmentBytesMin).max(LIMITS.segmentBytesMax),
  "segment.ms": integer().min(1),
  "flush.messages": minusOneOr(1),
  "flush.ms": minusOneOr(0),
});

export const topicConfigOverridesSchema = topicConfigSchema.partial();

/** Merges overrides over a base config; throws INVALID_CONFIG naming the bad option. */
export function resolveTopicConfig(base: TopicConfig, overrides: unknown = {}): TopicConfig {
  const parsedOverrides = topicConfigOverridesSchema.safeParse(overrides ?? {});
  if (!parsedOverrides.success) throw invalidConfig(parsedOverrides.error);
  const parsed = topicConfigSchema.safeParse({ ...base, ...parsedOverrides.data });
  if (!parsed.success) throw invalidConfig(parsed.error);
  return parsed.data;
}

function invalidConfig(error: z.ZodError): RunnelError {
  const issue = error.issues[0];
  const where = issue?.path.join(".") || (issue?.code === "unrecognized_keys" ? issue.keys.join(", ") : "config");
  return new RunnelError("INVALID_CONFIG", `topic config ${where}: ${issue?.message ?? "invalid"}`, {
    details: { issues: error.issues.map((item) => ({ path: item.path.join("."), message: item.message })) },
  });
}

/** Throws INVALID_TOPIC_NAME unless `name` is 1-249 chars of [a-zA-Z0-9._-] and not "." or "..". */
export function validateTopicName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name) || name === "." || name === "..") {
    const shown = typeof name === "string" ? JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}...` : name) : typeof name;
    throw new RunnelError("INVALID_TOPIC_NAME", `invalid topic name ${shown}: use 1-${LIMITS.topicNameLengthMax} characters of [a-zA-Z0-9._-], not "." or ".."`);
  }
}
