/**
 * @module listeners/kafka/handlers/find-coordinator
 * FindCoordinator (key 10), versions 0-4 (3+ flexible; v4 asks for many keys at once). One node:
 * the coordinator of every group is this broker, at the advertised host and port. A cluster: the
 * leader of the group's partition of `__consumer_offsets` (cluster/replicated-offsets.ts), at its
 * Kafka listener; COORDINATOR_NOT_AVAILABLE (15) while that partition has no leader, the topic is
 * being created, or the coordinator has its Kafka listener off. Transaction coordinators
 * (keyType 1) are refused with COORDINATOR_NOT_AVAILABLE: Runnel has no transactions yet.
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

const KEY_TYPE_GROUP = 0;

function answer(context: KafkaContext, keyType: number, key: string): KafkaStruct {
  if (keyType !== KEY_TYPE_GROUP) {
    return { errorCode: KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE, errorMessage: "transactions are not supported by this broker", nodeId: -1, host: "", port: -1 };
  }
  const coordinators = context.broker.coordinators ?? null;
  if (coordinators === null) return { errorCode: 0, errorMessage: null, nodeId: context.nodeId, host: context.advertisedHost, port: context.advertisedPort };
  try {
    const coordinator = coordinators.findCoordinator(key);
    if (coordinator.kafkaPort === null) return refused(KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE, `broker ${coordinator.brokerId} coordinates the group but has no Kafka listener`);
    return { errorCode: 0, errorMessage: null, nodeId: coordinator.brokerId, host: coordinator.host, port: coordinator.kafkaPort };
  } catch (error) {
    const { errorCode } = kafkaErrorOf(error);
    return refused(errorCode, error instanceof Error ? error.message : String(error));
  }
}

function refused(errorCode: number, errorMessage: string): KafkaStruct {
  return { errorCode, errorMessage, nodeId: -1, host: "", port: -1 };
}

export function handleFindCoordinator(context: KafkaContext, request: KafkaStruct, version: number): KafkaStruct {
  const keyType = version >= 1 ? (request.keyType as number) : KEY_TYPE_GROUP;
  if (version < 4) return { throttleTimeMs: 0, ...answer(context, keyType, request.key as string) };
  const keys = request.coordinatorKeys as string[];
  return { throttleTimeMs: 0, coordinators: keys.map((key) => ({ key, ...answer(context, keyType, key) })) };
}
