/**
 * @module listeners/kafka/handlers/api-versions
 * ApiVersions (key 18), versions 0-4 (3+ flexible). Answers every API key this listener serves
 * with the version range it serves (definitions.ts validVersions, capped on purpose). Throttle 0;
 * no features (the tagged feature fields are left out).
 *
 * Non-obvious: a request of a version above 4 is not refused: Kafka's rule (KIP-511) is to answer
 * with a v0 body carrying UNSUPPORTED_VERSION (35) and our ranges, so the client retries with a
 * version we list. dispatch.ts does that, with apiVersionsBody(35). The response header of
 * ApiVersions is always v0 (no tagged section), even for the flexible versions.
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { MESSAGES } from "../definitions.ts";
import { KAFKA_ERROR } from "../errors.ts";

export function apiVersionsBody(errorCode: number): KafkaStruct {
  const apiKeys: KafkaStruct[] = [];
  for (const [apiKey, { request }] of MESSAGES) apiKeys.push({ apiKey, minVersion: request.validVersions[0], maxVersion: request.validVersions[1] });
  return { errorCode, apiKeys, throttleTimeMs: 0 };
}

export function handleApiVersions(_context: KafkaContext, _request: KafkaStruct, _version: number): KafkaStruct {
  return apiVersionsBody(KAFKA_ERROR.NONE);
}
