/**
 * @module listeners/kafka/handlers/join-group
 * JoinGroup (key 11), versions 0-7 (6+ flexible). A Kafka classic group member joins through the
 * broker's group coordinator (src/broker/classic-groups.ts): the answer waits until every known
 * member has joined (or the rebalance timeout passes), then carries the generation, the chosen
 * protocol, the leader and — to the leader only — every member's subscription metadata.
 *
 * KIP-394 (v4+): a first join without a member id gets MEMBER_ID_REQUIRED (79) and an id to join
 * with; the join that names it is taken as the member's first. Pending ids are kept, bounded, for
 * a session timeout. The member id the coordinator then answers is the one the member keeps
 * (clients adopt the id of a successful join). v0 has no rebalance timeout: the session timeout
 * stands for it, as in Kafka. A native group of the same name refuses with
 * INCONSISTENT_GROUP_PROTOCOL (23).
 *
 * Static membership (v5+ groupInstanceId, KIP-345): a static member joins without KIP-394's
 * handshake (as in Kafka); rejoining with its instance id and no member id replaces the old
 * member — in a stable group, without a rebalance (classic-groups.ts). A member id that no longer
 * holds the instance id it names is FENCED_INSTANCE_ID (82).
 */
import { toRunnelError } from "../../../errors.ts";
import type { GroupCoordinator } from "../../../broker/group-coordinator.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { groupErrorCode, KAFKA_ERROR, unlessStopping } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

/** Ids handed out with MEMBER_ID_REQUIRED and not yet used, per coordinator; the oldest go first past the bound. */
const PENDING_MEMBER_IDS_MAX = 10_000;
const pendingByCoordinator = new WeakMap<GroupCoordinator, Map<string, number>>();

function pendingOf(coordinator: GroupCoordinator): Map<string, number> {
  let pending = pendingByCoordinator.get(coordinator);
  if (pending === undefined) pendingByCoordinator.set(coordinator, (pending = new Map()));
  return pending;
}

function pendingKey(groupId: string, memberId: string): string {
  return `${groupId}\u0000${memberId}`;
}

function rememberPending(coordinator: GroupCoordinator, groupId: string, memberId: string, expiresAtMs: number): void {
  const pending = pendingOf(coordinator);
  while (pending.size >= PENDING_MEMBER_IDS_MAX) pending.delete(pending.keys().next().value as string);
  pending.set(pendingKey(groupId, memberId), expiresAtMs);
}

/** True (and forgotten) when `memberId` was handed out for `groupId` and has not expired. */
function takePending(coordinator: GroupCoordinator, groupId: string, memberId: string, nowMs: number): boolean {
  const pending = pendingOf(coordinator);
  const key = pendingKey(groupId, memberId);
  const expiresAtMs = pending.get(key);
  pending.delete(key);
  return expiresAtMs !== undefined && expiresAtMs >= nowMs;
}

interface JoinProtocol {
  name: string;
  metadata: Uint8Array;
}

/** An answer without a generation; protocolName is nullable from v7 only, "" before (as Kafka writes it). */
function refusal(errorCode: number, memberId: string, version: number): KafkaStruct {
  return { throttleTimeMs: 0, errorCode, generationId: -1, protocolType: null, protocolName: version >= 7 ? null : "", leader: "", memberId, members: [] };
}

/** The coordinator's refusal as Kafka's code: a timeout out of bounds is INVALID_SESSION_TIMEOUT, a full group GROUP_MAX_SIZE_REACHED. */
function joinErrorCode(error: unknown): number {
  const failure = toRunnelError(error);
  if (failure.code === "INVALID_REQUEST" && /^(session|rebalance)TimeoutMs/.test(failure.message)) return KAFKA_ERROR.INVALID_SESSION_TIMEOUT;
  if (failure.code === "LIMIT_EXCEEDED") return KAFKA_ERROR.GROUP_MAX_SIZE_REACHED;
  return groupErrorCode(error);
}

export async function handleJoinGroup(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const coordinator = context.broker.groups;
  const groupId = request.groupId as string;
  const requestedId = request.memberId as string;
  const sessionTimeoutMs = request.sessionTimeoutMs as number;
  const rebalanceTimeoutMs = version >= 1 ? (request.rebalanceTimeoutMs as number) : sessionTimeoutMs;
  const protocolType = request.protocolType as string;
  if (groupId === "") return refusal(KAFKA_ERROR.INVALID_GROUP_ID, requestedId, version);
  const denied = groupAccessCode(context, info, "read", groupId);
  if (denied !== KAFKA_ERROR.NONE) return refusal(denied, requestedId, version);
  const notHere = coordinatorCode(context, groupId);
  if (notHere !== KAFKA_ERROR.NONE) return refusal(notHere, requestedId, version);
  const nowMs = performance.now();
  const instanceId = version >= 5 ? ((request.groupInstanceId as string | null) ?? null) : null;
  if (version >= 4 && requestedId === "" && instanceId === null) {
    const memberId = `${(info.clientId ?? "").slice(0, 64)}-${crypto.randomUUID()}`;
    rememberPending(coordinator, groupId, memberId, nowMs + Math.max(sessionTimeoutMs, 0));
    return refusal(KAFKA_ERROR.MEMBER_ID_REQUIRED, memberId, version);
  }
  const memberId = requestedId !== "" && takePending(coordinator, groupId, requestedId, nowMs) ? "" : requestedId;
  const protocols = fieldAs<JoinProtocol[]>(request.protocols);
  try {
    const joining = coordinator.classicJoin({ group: groupId, memberId, instanceId, clientId: info.clientId ?? "", sessionTimeoutMs, rebalanceTimeoutMs, protocolType, protocols });
    const answer = await unlessStopping(joining, context.stopping);
    return {
      throttleTimeMs: 0,
      errorCode: KAFKA_ERROR.NONE,
      generationId: answer.generation,
      protocolType,
      protocolName: answer.protocolName,
      leader: answer.leaderId,
      memberId: answer.memberId,
      members: answer.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.instanceId, metadata: member.metadata })),
    };
  } catch (error) {
    return refusal(joinErrorCode(error), requestedId, version);
  }
}
