/**
 * @module listeners/kafka/handlers/leave-group
 * LeaveGroup (key 13), versions 0-4 (4+ flexible). A member leaves its classic group at once
 * (src/broker/classic-groups.ts), so the others rebalance without waiting for its session to end.
 * v0-2 name one member (the error is the answer's); v3+ name several, each answered on its own,
 * the top-level error then 0. v3+ may name a static member by groupInstanceId alone (memberId
 * ""); a member id that no longer holds the instance id it names is FENCED_INSTANCE_ID (82).
 */
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

function leave(context: KafkaContext, groupId: string, memberId: string, instanceId: string | null = null): number {
  try {
    context.broker.groups.classicLeave(groupId, memberId, instanceId);
    return KAFKA_ERROR.NONE;
  } catch (error) {
    return kafkaErrorOf(error).errorCode;
  }
}

/** Needs read on the group (GROUP_AUTHORIZATION_FAILED otherwise). */
export function handleLeaveGroup(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): KafkaStruct {
  const groupId = request.groupId as string;
  const denied = groupAccessCode(context, info, "read", groupId);
  if (denied !== KAFKA_ERROR.NONE) return version < 3 ? { throttleTimeMs: 0, errorCode: denied } : { throttleTimeMs: 0, errorCode: denied, members: [] };
  const notHere = coordinatorCode(context, groupId);
  if (notHere !== KAFKA_ERROR.NONE) return version < 3 ? { throttleTimeMs: 0, errorCode: notHere } : { throttleTimeMs: 0, errorCode: notHere, members: [] };
  if (version < 3) return { throttleTimeMs: 0, errorCode: leave(context, groupId, request.memberId as string) };
  const members = fieldAs<Array<{ memberId: string; groupInstanceId: string | null }>>(request.members).map((member) => ({
    memberId: member.memberId,
    groupInstanceId: member.groupInstanceId,
    errorCode: leave(context, groupId, member.memberId, member.groupInstanceId),
  }));
  return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.NONE, members };
}
