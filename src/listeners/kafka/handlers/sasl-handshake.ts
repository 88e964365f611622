/**
 * @module listeners/kafka/handlers/sasl-handshake
 * SaslHandshake (key 17), versions 0-1 (never flexible). Picks the SASL mechanism for this
 * connection and lists the ones offered: SCRAM-SHA-256, SCRAM-SHA-512, and PLAIN on a TLS
 * connection (or with saslPlainOverPlaintext). An unknown mechanism gets
 * UNSUPPORTED_SASL_MECHANISM (33) and the list. v0: the tokens then come as raw frames
 * (dispatch.ts); v1: in SaslAuthenticate requests. See ../sasl.ts.
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { startHandshake } from "../sasl.ts";

export function handleSaslHandshake(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): KafkaStruct {
  return startHandshake(context, info.session, request.mechanism as string, version);
}
