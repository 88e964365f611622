/**
 * @module errors
 * One error class and the closed table of stable error codes. Codes are part of the
 * wire protocol (docs/protocol.md): a code is never renamed and a retired code is never
 * reused. `retriable` tells clients whether sending the same request again can succeed.
 */

export const ERROR_CODES = {
  INVALID_REQUEST: { retriable: false, doc: "The request is malformed: a field is missing, of the wrong type or out of bounds." },
  UNSUPPORTED_VERSION: { retriable: false, doc: "The client asked for a protocol version this broker does not speak." },
  UNKNOWN_OPERATION: { retriable: false, doc: "The request's op is not one this broker knows." },
  UNKNOWN_TOPIC: { retriable: false, doc: "No topic of that name exists (and auto-creation is off or not allowed here)." },
  UNKNOWN_PARTITION: { retriable: false, doc: "The topic exists but has no partition with that number." },
  TOPIC_EXISTS: { retriable: false, doc: "A topic of that name already exists." },
  INVALID_TOPIC_NAME: { retriable: false, doc: "Topic names are 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'." },
  INVALID_PARTITIONS: { retriable: false, doc: "The partition count is outside the allowed range, or would shrink the topic." },
  INVALID_CONFIG: { retriable: false, doc: "A configuration value is unknown, of the wrong type or out of bounds." },
  CORRUPT_BATCH: { retriable: false, doc: "A record batch failed its header, length or checksum check; nothing of it was stored." },
  MESSAGE_TOO_LARGE: { retriable: false, doc: "A batch or frame is larger than the configured limit." },
  OFFSET_OUT_OF_RANGE: { retriable: false, doc: "The offset is before the log start or after the next offset of the partition." },
  STORAGE_FULL: { retriable: true, doc: "The disk is full (ENOSPC/EDQUOT). Retry after space is freed." },
  STORAGE_ERROR: { retriable: false, doc: "An I/O error occurred; the partition is marked failed until the broker restarts." },
  PARTITION_FAILED: { retriable: false, doc: "The partition saw an earlier I/O error and refuses reads and writes until a restart." },
  TOO_MANY_CONNECTIONS: { retriable: true, doc: "The broker is at its connection limit." },
  TOO_MANY_REQUESTS: { retriable: true, doc: "The connection has too many requests in flight." },
  LIMIT_EXCEEDED: { retriable: false, doc: "A named limit (topics, partitions, name length, ...) would be exceeded." },
  TIMEOUT: { retriable: true, doc: "The operation did not finish within its time bound." },
  SHUTTING_DOWN: { retriable: true, doc: "The broker is stopping and takes no new work." },
  NOT_SUPPORTED: { retriable: false, doc: "This platform or build lacks the facility the call needs." },
  INTERNAL: { retriable: false, doc: "A bug in the broker. The request failed; the broker keeps running." },
  OUT_OF_ORDER_SEQUENCE: { retriable: false, doc: "An idempotent batch's base sequence is not the one the broker expects next from that producer on that partition (a gap or a reordering); nothing of it was stored. details: expectedSequence, receivedSequence." },
  INVALID_PRODUCER_EPOCH: { retriable: false, doc: "An idempotent batch carries an older producer epoch than the broker has seen for that producer id: a newer incarnation of the producer fenced it." },
  UNKNOWN_PRODUCER_ID: { retriable: false, doc: "An idempotent batch carries a producer id this broker never issued; nothing of it was stored. Call initProducer for an id and stamp batches with it. details: producerId." },
  UNKNOWN_MEMBER: { retriable: false, doc: "The member id is not (or no longer) a member of the group: it left, its session expired, or the broker restarted. Give up every partition (without committing) and join again." },
  COMMIT_FENCED: { retriable: false, doc: "A group member's commit named a partition it does not own (any more), or carried a generation from before it got the partition; that entry was not stored. The partition's new owner commits from here on." },
  INCONSISTENT_GROUP_PROTOCOL: { retriable: false, doc: "The group exists with another kind (native or Kafka classic) or another assignor than the member asked for." },
  GROUP_NOT_EMPTY: { retriable: false, doc: "The group still has members; it can be deleted only when every member has left or expired." },
  REBALANCE_IN_PROGRESS: { retriable: true, doc: "Kafka classic groups: the group is rebalancing; the member joins again (JoinGroup) before it syncs, heartbeats or commits." },
  ILLEGAL_GENERATION: { retriable: false, doc: "Kafka classic groups: the request carries a generation other than the group's current one; the member joins again." },
  BROKER_UNAVAILABLE: { retriable: true, doc: "Client side: the broker could not be reached, or the connection was lost with the request in flight (it may or may not have been applied)." },
  THROTTLED: { retriable: true, doc: "Topics or partitions are being created faster than the broker allows (partitionCreatesPerSecond); nothing was created. Retry after details.retryAfterMs." },
  CLIENT_CLOSED: { retriable: false, doc: "Client side: the producer, consumer or admin was closed before the call could run." },
  AUTHORIZATION_FAILED: { retriable: false, doc: "The connection's principal may not do this operation on this resource (authorizer acl: no ACL entry allows it, or one denies it). details: operation, resourceType, resourceName." },
  AUTHENTICATION_REQUIRED: { retriable: false, doc: "Authentication is on (authentication scram) and this connection has not authenticated: only hello and authenticate are answered until it does." },
  AUTHENTICATION_FAILED: { retriable: false, doc: "The SCRAM exchange failed: unknown user, wrong password, or a malformed, replayed or out-of-order message. The answer never says which; check the user name and password." },
  AUTHENTICATION_THROTTLED: { retriable: true, doc: "Too many failed authentications came from this address (authFailuresBurst, authFailuresPerMinute); the attempt was refused unchecked and the connection closed. Retry after details.retryAfterMs." },
  UNKNOWN_USER: { retriable: false, doc: "deleteUser: no user of that name exists in the credential store." },
  NOT_LEADER: { retriable: true, doc: "Cluster: this broker does not lead the partition (or may not lead now: fenced); nothing was appended. Refresh metadata and send to the leader." },
  FENCED_LEADER_EPOCH: { retriable: true, doc: "Cluster: a replica fetch named an older leader epoch than the leader's; the follower refreshes its view of the partition. details: leaderEpoch." },
  NOT_ENOUGH_REPLICAS: { retriable: true, doc: "Cluster: a replicated produce found fewer in-sync replicas than the topic's minInsyncReplicas; nothing was appended." },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { retriable: true, doc: "Cluster: a replicated produce was appended, but the in-sync replicas fell below minInsyncReplicas before it was acknowledged; it may or may not survive a leader change." },
  CLUSTER_UNAVAILABLE: { retriable: true, doc: "Cluster mode: etcd (the cluster's metadata store) could not be reached or refused the call within its time bound; nothing was changed, or the change is unknown. Retry once etcd answers." },
  BROKER_ID_IN_USE: { retriable: false, doc: "Cluster mode: a broker with this --broker-id is already live in the cluster (its membership key is on a live lease). Give this broker another id, or wait up to clusterLeaseTtlMs for the old one's lease to expire." },
  FENCED_INSTANCE_ID: { retriable: false, doc: "Kafka classic groups, static membership (group.instance.id): a newer member joined with the same instance id and took its place; this member id is no longer the instance's. Stop consuming; two consumers share one instance id." },
  NOT_COORDINATOR: { retriable: true, doc: "Cluster: this broker is not the group's coordinator (the leader of the group's partition of __consumer_offsets); nothing was done. Ask any broker findCoordinator again and send the group's requests there. details: coordinator (broker id, -1 when unknown)." },
  COORDINATOR_LOAD_IN_PROGRESS: { retriable: true, doc: "Cluster: this broker just became the group's coordinator and is still reading the group's committed offsets from __consumer_offsets; retry after a short backoff." },
  COORDINATOR_NOT_AVAILABLE: { retriable: true, doc: "Cluster: the group's partition of __consumer_offsets has no leader now (or the topic is being created); retry findCoordinator after a short backoff." },
  INVALID_REPLICA_ASSIGNMENT: { retriable: false, doc: "Cluster: a partition reassignment's replica list is empty, names a broker twice or one that is not live, is longer than allowed or shorter than the topic's minInsyncReplicas, or asks to cancel when no reassignment is in progress; nothing was changed." },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RunnelErrorOptions {
  cause?: unknown;
  /** Machine-readable facts a client may act on (e.g. logStartOffset for OFFSET_OUT_OF_RANGE). */
  details?: Record<string, unknown>;
}

export class RunnelError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: RunnelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RunnelError";
    this.code = code;
    this.details = options.details;
  }

  get retriable(): boolean {
    return ERROR_CODES[this.code].retriable;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

/** Wraps anything thrown into a RunnelError, keeping the original as the cause. */
export function toRunnelError(error: unknown): RunnelError {
  if (error instanceof RunnelError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RunnelError("INTERNAL", message, { cause: error });
}
