/**
 * @module listeners/kafka/handlers/heartbeat
 * Heartbeat (key 12), versions 0-4 (4+ flexible). Keeps a classic member's session alive
 * (src/broker/classic-groups.ts). REBALANCE_IN_PROGRESS (27) tells the member to join again;
 * ILLEGAL_GENERATION (22) and UNKNOWN_MEMBER_ID (25) that it lost its place; v3+ carry a static
 * member's groupInstanceId, FENCED_INSTANCE_ID (82) when a newer member id holds it (KIP-345).
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

/** Needs read on the group (GROUP_AUTHORIZATION_FAILED otherwise). */
export function handleHeartbeat(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const denied = groupAccessCode(context, info, "read", request.groupId as string);
  if (denied !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, errorCode: denied };
  const notHere = coordinatorCode(context, request.groupId as string);
  if (notHere !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, errorCode: notHere };
  try {
    context.broker.groups.classicHeartbeat(request.groupId as string, request.memberId as string, request.generationId as number, (request.groupInstanceId as string | null | undefined) ?? null);
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.NONE };
  } catch (error) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorOf(error).errorCode };
  }
}
