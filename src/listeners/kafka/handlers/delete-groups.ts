/**
 * @module listeners/kafka/handlers/delete-groups
 * DeleteGroups (key 42), versions 0-2 (2+ flexible). As the native deleteGroup: a group with
 * members is NON_EMPTY_GROUP (68); otherwise its committed offsets are removed durably (the same
 * offset store native clients use). A group with neither members nor offsets is
 * GROUP_ID_NOT_FOUND (69).
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { groupAccessCode } from "../access.ts";
import { coordinatorCode } from "../coordinator-check.ts";

async function deleteOne(context: KafkaContext, groupId: string): Promise<number> {
  if (context.broker.groups.hasMembers(groupId)) return KAFKA_ERROR.NON_EMPTY_GROUP;
  if (context.broker.offsets.fetchAll(groupId).length === 0) return KAFKA_ERROR.GROUP_ID_NOT_FOUND;
  try {
    await context.broker.offsets.removeGroup(groupId);
    return KAFKA_ERROR.NONE;
  } catch (error) {
    return kafkaErrorOf(error).errorCode;
  }
}

/** Needs delete on each group (GROUP_AUTHORIZATION_FAILED for that group otherwise). */
export async function handleDeleteGroups(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const results = [];
  for (const groupId of request.groupsNames as string[]) {
    const denied = groupAccessCode(context, info, "delete", groupId);
    const refused = denied !== KAFKA_ERROR.NONE ? denied : coordinatorCode(context, groupId);
    results.push({ groupId, errorCode: refused !== KAFKA_ERROR.NONE ? refused : await deleteOne(context, groupId) });
  }
  return { throttleTimeMs: 0, results };
}
