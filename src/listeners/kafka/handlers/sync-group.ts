/**
 * @module listeners/kafka/handlers/sync-group
 * SyncGroup (key 14), versions 0-5 (4+ flexible). After a join phase every member syncs; the
 * leader's request carries each member's assignment (opaque bytes), which the coordinator relays
 * (src/broker/classic-groups.ts). A follower's answer waits for the leader's sync. A sync of an
 * old generation is ILLEGAL_GENERATION (22), during a new join phase REBALANCE_IN_PROGRESS (27),
 * from a non-member UNKNOWN_MEMBER_ID (25), from a replaced static member (v3+ groupInstanceId)
 * FENCED_INSTANCE_ID (82). v5 answers the group's protocol type and name.
 */
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { groupErrorCode, KAFKA_ERROR, unlessStopping } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

const EMPTY = new Uint8Array(0);

/** Needs read on the group (GROUP_AUTHORIZATION_FAILED otherwise). */
export async function handleSyncGroup(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const coordinator = context.broker.groups;
  const groupId = request.groupId as string;
  const denied = groupAccessCode(context, info, "read", groupId);
  if (denied !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, errorCode: denied, protocolType: null, protocolName: null, assignment: EMPTY };
  const notHere = coordinatorCode(context, groupId);
  if (notHere !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, errorCode: notHere, protocolType: null, protocolName: null, assignment: EMPTY };
  const assignments = fieldAs<Array<{ memberId: string; assignment: Uint8Array }>>(request.assignments);
  try {
    const syncing = coordinator.classicSync({ group: groupId, memberId: request.memberId as string, generation: request.generationId as number, instanceId: (request.groupInstanceId as string | null | undefined) ?? null, assignments });
    const assignment = await unlessStopping(syncing, context.stopping);
    const group = coordinator.classicGroup(groupId);
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.NONE, protocolType: group?.protocolType ?? null, protocolName: group?.protocolName ?? null, assignment };
  } catch (error) {
    return { throttleTimeMs: 0, errorCode: groupErrorCode(error), protocolType: null, protocolName: null, assignment: EMPTY };
  }
}
