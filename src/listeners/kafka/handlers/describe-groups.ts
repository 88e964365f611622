/**
 * @module listeners/kafka/handlers/describe-groups
 * DescribeGroups (key 15), versions 0-5 (5+ flexible). A Kafka classic group: its state under
 * Kafka's names (Empty, PreparingRebalance, CompletingRebalance, Stable), protocol type, chosen
 * protocol, and each member with its client id, subscription metadata and assignment. A native
 * group of the same name is described with protocol type "runnel" and its members' client ids
 * (its assignments are not Kafka bytes). A group nobody knows is "Dead" with error 0, as Kafka
 * answers before v6. Client hosts are not recorded (""); authorized operations are not reported.
 */
import type { ClassicGroup } from "../../../broker/classic-groups.ts";
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

const EMPTY = new Uint8Array(0);
const AUTHORIZED_OPERATIONS_OMITTED = -2147483648;

const KAFKA_STATE: Record<ClassicGroup["state"], string> = {
  empty: "Empty",
  preparingRebalance: "PreparingRebalance",
  completingRebalance: "CompletingRebalance",
  stable: "Stable",
};

function describeClassic(group: Readonly<ClassicGroup>): KafkaStruct {
  const members = [...group.members.values()].map((member) => ({
    memberId: member.id,
    groupInstanceId: member.instanceId,
    clientId: member.clientId,
    clientHost: "",
    memberMetadata: member.protocols.find((protocol) => protocol.name === group.protocolName)?.metadata ?? EMPTY,
    memberAssignment: member.assignment,
  }));
  return {
    errorCode: KAFKA_ERROR.NONE,
    groupId: group.id,
    groupState: KAFKA_STATE[group.state],
    protocolType: group.protocolType,
    protocolData: group.protocolName ?? "",
    members,
    authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
  };
}

function describeOne(context: KafkaContext, groupId: string): KafkaStruct {
  const coordinator = context.broker.groups;
  const classic = coordinator.classicGroup(groupId);
  if (classic !== undefined) return describeClassic(classic);
  const native = coordinator.describeGroup(groupId);
  const base = { errorCode: KAFKA_ERROR.NONE, groupId, authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED };
  if (native === null) {
    const committed = context.broker.offsets.fetchAll(groupId).length > 0;
    return { ...base, groupState: committed ? "Empty" : "Dead", protocolType: committed ? "consumer" : "", protocolData: "", members: [] };
  }
  const members = native.memberList.map((member) => ({ memberId: member.memberId, groupInstanceId: null, clientId: member.clientId, clientHost: "", memberMetadata: EMPTY, memberAssignment: EMPTY }));
  const groupState = native.state === "empty" ? "Empty" : native.state === "stable" ? "Stable" : "CompletingRebalance";
  return { ...base, groupState, protocolType: "runnel", protocolData: native.assignor ?? "", members };
}

/** Needs describe on each group (GROUP_AUTHORIZATION_FAILED for that group otherwise). */
export function handleDescribeGroups(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const groups = (request.groups as string[]).map((groupId) => {
    const denied = groupAccessCode(context, info, "describe", groupId);
    const refused = denied !== KAFKA_ERROR.NONE ? denied : coordinatorCode(context, groupId);
    if (refused === KAFKA_ERROR.NONE) return describeOne(context, groupId);
    return { errorCode: refused, groupId, groupState: "", protocolType: "", protocolData: "", members: [], authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED };
  });
  return { throttleTimeMs: 0, groups };
}
