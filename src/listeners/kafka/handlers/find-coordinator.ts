/**
 * @module listeners/kafka/handlers/find-coordinator
 * FindCoordinator (key 10), versions 0-4 (3+ flexible; v4 asks for many keys at once). One node:
 * the coordinator of every group is this broker, at the advertised host and port. Transaction
 * coordinators (keyType 1) are refused with COORDINATOR_NOT_AVAILABLE (15): Runnel has no
 * transactions yet. (The group APIs themselves come with the group coordinator, next phase.)
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR } from "../errors.ts";

const KEY_TYPE_GROUP = 0;

function answer(context: KafkaContext, keyType: number): KafkaStruct {
  if (keyType !== KEY_TYPE_GROUP) {
    return { errorCode: KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE, errorMessage: "transactions are not supported by this broker", nodeId: -1, host: "", port: -1 };
  }
  return { errorCode: 0, errorMessage: null, nodeId: context.nodeId, host: context.advertisedHost, port: context.advertisedPort };
}

export function handleFindCoordinator(context: KafkaContext, request: KafkaStruct, version: number): KafkaStruct {
  const keyType = version >= 1 ? (request.keyType as number) : KEY_TYPE_GROUP;
  if (version < 4) return { throttleTimeMs: 0, ...answer(context, keyType) };
  const keys = request.coordinatorKeys as string[];
  return { throttleTimeMs: 0, coordinators: keys.map((key) => ({ key, ...answer(context, keyType) })) };
}
