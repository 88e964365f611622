/**
 * @module listeners/kafka/coordinator-check
 * The Kafka group APIs' coordinator check: in a cluster only the group's coordinator answers
 * (cluster/replicated-offsets.ts); elsewhere NOT_COORDINATOR (16), COORDINATOR_LOAD_IN_PROGRESS
 * (14) or COORDINATOR_NOT_AVAILABLE (15), on which a Kafka client calls FindCoordinator again.
 * A single node coordinates every group (always NONE).
 */
import type { KafkaContext } from "./context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "./errors.ts";

/** NONE when this broker serves the group now; else the Kafka code to answer with. */
export function coordinatorCode(context: KafkaContext, groupId: string): number {
  try {
    context.broker.offsets.requireCoordinator(groupId);
    return KAFKA_ERROR.NONE;
  } catch (error) {
    return kafkaErrorOf(error).errorCode;
  }
}
