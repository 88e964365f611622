/**
 * @module listeners/kafka/errors
 * Runnel's stable error codes as Kafka error codes (Kafka's Errors.java numbers), so a Kafka
 * client reacts as it would to Apache Kafka: retries what Kafka marks retriable, refreshes
 * metadata on UNKNOWN_TOPIC_OR_PARTITION, resets on OFFSET_OUT_OF_RANGE.
 */
import { type ErrorCode, RunnelError, toRunnelError } from "../../errors.ts";

export const KAFKA_ERROR = {
  NONE: 0,
  UNKNOWN_SERVER_ERROR: -1,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  FENCED_LEADER_EPOCH: 74,
  MESSAGE_TOO_LARGE: 10,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  KAFKA_STORAGE_ERROR: 56,
  SASL_AUTHENTICATION_FAILED: 58,
  UNKNOWN_PRODUCER_ID: 59,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  UNKNOWN_LEADER_EPOCH: 75,
  MEMBER_ID_REQUIRED: 79,
  PREFERRED_LEADER_NOT_AVAILABLE: 80,
  ELECTION_NOT_NEEDED: 84,
  GROUP_MAX_SIZE_REACHED: 81,
  FENCED_INSTANCE_ID: 82,
  NO_REASSIGNMENT_IN_PROGRESS: 85,
  THROTTLING_QUOTA_EXCEEDED: 89,
  UNKNOWN_TOPIC_ID: 100,
} as const;

const BY_RUNNEL_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_REQUEST: KAFKA_ERROR.INVALID_REQUEST,
  UNSUPPORTED_VERSION: KAFKA_ERROR.UNSUPPORTED_VERSION,
  UNKNOWN_TOPIC: KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION,
  UNKNOWN_PARTITION: KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION,
  TOPIC_EXISTS: KAFKA_ERROR.TOPIC_ALREADY_EXISTS,
  INVALID_TOPIC_NAME: KAFKA_ERROR.INVALID_TOPIC_EXCEPTION,
  INVALID_PARTITIONS: KAFKA_ERROR.INVALID_PARTITIONS,
  INVALID_CONFIG: KAFKA_ERROR.INVALID_CONFIG,
  CORRUPT_BATCH: KAFKA_ERROR.CORRUPT_MESSAGE,
  MESSAGE_TOO_LARGE: KAFKA_ERROR.MESSAGE_TOO_LARGE,
  OFFSET_OUT_OF_RANGE: KAFKA_ERROR.OFFSET_OUT_OF_RANGE,
  STORAGE_FULL: KAFKA_ERROR.KAFKA_STORAGE_ERROR,
  STORAGE_ERROR: KAFKA_ERROR.KAFKA_STORAGE_ERROR,
  PARTITION_FAILED: KAFKA_ERROR.KAFKA_STORAGE_ERROR,
  LIMIT_EXCEEDED: KAFKA_ERROR.POLICY_VIOLATION,
  // KIP-599's code for creations past the controller mutation rate: our partitionCreatesPerSecond.
  THROTTLED: KAFKA_ERROR.THROTTLING_QUOTA_EXCEEDED,
  TIMEOUT: KAFKA_ERROR.REQUEST_TIMED_OUT,
  // Retriable for Kafka clients: they refresh metadata and try again (after the restart).
  SHUTTING_DOWN: KAFKA_ERROR.NOT_LEADER_OR_FOLLOWER,
  OUT_OF_ORDER_SEQUENCE: KAFKA_ERROR.OUT_OF_ORDER_SEQUENCE_NUMBER,
  INVALID_PRODUCER_EPOCH: KAFKA_ERROR.INVALID_PRODUCER_EPOCH,
  UNKNOWN_PRODUCER_ID: KAFKA_ERROR.UNKNOWN_PRODUCER_ID,
  // Groups (the coordinator's classic rules, src/broker/classic-groups.ts).
  UNKNOWN_MEMBER: KAFKA_ERROR.UNKNOWN_MEMBER_ID,
  ILLEGAL_GENERATION: KAFKA_ERROR.ILLEGAL_GENERATION,
  REBALANCE_IN_PROGRESS: KAFKA_ERROR.REBALANCE_IN_PROGRESS,
  INCONSISTENT_GROUP_PROTOCOL: KAFKA_ERROR.INCONSISTENT_GROUP_PROTOCOL,
  GROUP_NOT_EMPTY: KAFKA_ERROR.NON_EMPTY_GROUP,
  FENCED_INSTANCE_ID: KAFKA_ERROR.FENCED_INSTANCE_ID,
  // A native member's ownership fence, met by a Kafka commit to a native group.
  COMMIT_FENCED: KAFKA_ERROR.ILLEGAL_GENERATION,
  // Replication (src/cluster/): Kafka's own codes, retriable for its clients.
  NOT_LEADER: KAFKA_ERROR.NOT_LEADER_OR_FOLLOWER,
  FENCED_LEADER_EPOCH: KAFKA_ERROR.FENCED_LEADER_EPOCH,
  NOT_ENOUGH_REPLICAS: KAFKA_ERROR.NOT_ENOUGH_REPLICAS,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: KAFKA_ERROR.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  NOT_COORDINATOR: KAFKA_ERROR.NOT_COORDINATOR,
  COORDINATOR_LOAD_IN_PROGRESS: KAFKA_ERROR.COORDINATOR_LOAD_IN_PROGRESS,
  COORDINATOR_NOT_AVAILABLE: KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE,
  INVALID_REPLICA_ASSIGNMENT: KAFKA_ERROR.INVALID_REPLICA_ASSIGNMENT,
};

/**
 * A group request's error code: as kafkaErrorOf, except that a broker going away is
 * COORDINATOR_NOT_AVAILABLE (15), on which group clients look the coordinator up again.
 */
export function groupErrorCode(error: unknown): number {
  return toRunnelError(error).code === "SHUTTING_DOWN" ? KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE : kafkaErrorOf(error).errorCode;
}

/** Settles with `waiting`, or rejects with SHUTTING_DOWN once `stopping` is aborted. */
export function unlessStopping<Value>(waiting: Promise<Value>, stopping: AbortSignal): Promise<Value> {
  const stopped = () => new RunnelError("SHUTTING_DOWN", "the broker is stopping");
  if (stopping.aborted) return Promise.reject(stopped());
  return new Promise<Value>((resolve, reject) => {
    const onAbort = () => reject(stopped());
    stopping.addEventListener("abort", onAbort, { once: true });
    waiting.then(resolve, reject).finally(() => stopping.removeEventListener("abort", onAbort));
  });
}

/** The Kafka error code and message for anything a handler caught. */
export function kafkaErrorOf(error: unknown): { errorCode: number; errorMessage: string } {
  const failure = toRunnelError(error);
  const errorCode = failure.code === "AUTHORIZATION_FAILED" ? authorizationCodeOf(failure) : (BY_RUNNEL_CODE[failure.code] ?? KAFKA_ERROR.UNKNOWN_SERVER_ERROR);
  return { errorCode, errorMessage: `${failure.code}: ${failure.message}` };
}

/** Kafka has one authorization code per resource type; the refusal names its type in details (security/authorizer.ts). */
function authorizationCodeOf(failure: RunnelError): number {
  const type = failure.details?.resourceType;
  if (type === "group") return KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED;
  if (type === "cluster") return KAFKA_ERROR.CLUSTER_AUTHORIZATION_FAILED;
  return KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED;
}
