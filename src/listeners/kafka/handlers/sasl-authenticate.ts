/**
 * @module listeners/kafka/handlers/sasl-authenticate
 * SaslAuthenticate (key 36), versions 0-2 (2+ flexible). One SASL token of the mechanism chosen
 * by SaslHandshake v1 in, the server's token out (../sasl.ts). A failure answers
 * SASL_AUTHENTICATION_FAILED (58) — the same message for an unknown user and a wrong password —
 * and closes the connection after the answer, as Kafka does; so does an address throttled for
 * failing too often. Before a handshake: ILLEGAL_SASL_STATE (34). sessionLifetimeMs is 0 (no
 * re-authentication deadline).
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { authenticateResponse, authenticateStep } from "../sasl.ts";

export function handleSaslAuthenticate(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const token = request.authBytes instanceof Uint8Array ? request.authBytes : new Uint8Array(0);
  return authenticateResponse(authenticateStep(context, info.session, token));
}
