/**
 * @module listeners/kafka/handlers/list-groups
 * ListGroups (key 16), versions 0-4 (3+ flexible). Every group the broker knows: those with
 * members (Kafka classic groups under their protocol type, native groups as "runnel") and those
 * that only hold committed offsets ("Empty", protocol type "consumer", as Kafka lists a group
 * whose members are gone). v4's statesFilter keeps the named states (case-insensitive).
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR } from "../errors.ts";
import { groupAccessCode } from "../access.ts";

const KAFKA_STATE = { empty: "Empty", stable: "Stable", reconciling: "CompletingRebalance" } as const;

/** Lists only the groups the principal may describe (authorizer acl), as Kafka. */
export function handleListGroups(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): KafkaStruct {
  const coordinator = context.broker.groups;
  const listed = new Map<string, { groupId: string; protocolType: string; groupState: string }>();
  for (const summary of coordinator.listGroups()) {
    const classic = coordinator.classicGroup(summary.group);
    const groupState = classic?.state === "preparingRebalance" ? "PreparingRebalance" : KAFKA_STATE[summary.state];
    listed.set(summary.group, { groupId: summary.group, protocolType: classic?.protocolType ?? "runnel", groupState });
  }
  for (const groupId of context.broker.offsets.committedGroups()) {
    if (!listed.has(groupId)) listed.set(groupId, { groupId, protocolType: "consumer", groupState: "Empty" });
  }
  const filter = version >= 4 ? (request.statesFilter as string[]).map((state) => state.toLowerCase()) : [];
  const groups = [...listed.values()].filter(
    (group) => (filter.length === 0 || filter.includes(group.groupState.toLowerCase())) && groupAccessCode(context, info, "describe", group.groupId) === KAFKA_ERROR.NONE,
  );
  return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.NONE, groups };
}
