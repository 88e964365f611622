/**
 * @module listeners/kafka/definitions
 * Kafka's messages, as data: each message we serve written once — fields, types, the versions
 * each field exists in, nullable versions, tagged fields — and walked by codec.ts for any version.
 *
 * Written by hand, in our own words, after apache/kafka's published definitions
 * (clients/src/main/resources/common/message/<Name>{Request,Response}.json, read 2026-12 on
 * trunk). Field names are Kafka's, camelCased. Version strings keep Kafka's notation ("3+", "0-4")
 * so a definition can be held against the JSON line by line; `checked` says what was compared.
 * Only the fields of the versions we serve are kept (validVersions below are our caps, which may
 * be lower than Kafka's); tagged fields we never write are kept so that readers skip them by tag.
 */

export type FieldType =
  | "int8" | "int16" | "int32" | "int64" | "float64" | "bool" | "uuid" | "string" | "bytes" | "records"
  | "struct" | "[]struct" | "[]int32" | "[]int64" | "[]string";

export type Versions = readonly [min: number, max: number];

export interface FieldDef {
  name: string;
  type: FieldType;
  versions: Versions;
  nullableVersions?: Versions;
  /** Flexible versions only: the field travels in the tagged section under `tag`. */
  taggedVersions?: Versions;
  tag?: number;
  fields?: readonly FieldDef[];
  /** Written when a value leaves the field out (Kafka's "default"). */
  default?: number | boolean | string | null;
}

export interface MessageDef {
  name: string;
  apiKey: number;
  /** The versions we serve (may be a cap below Kafka's). */
  validVersions: Versions;
  /** First flexible version, or null when none of the served versions is flexible. */
  flexible: number | null;
  fields: readonly FieldDef[];
}

const NEVER: Versions = [1, 0];

/** Kafka's version notation: "3+", "0-4", "5", "none". */
export function versions(text: string): Versions {
  if (text === "none") return NEVER;
  if (text.endsWith("+")) return [Number(text.slice(0, -1)), Number.POSITIVE_INFINITY];
  const [low, high] = text.split("-");
  return [Number(low), Number(high ?? low)];
}

export function inVersions(range: Versions | undefined, version: number): boolean {
  return range !== undefined && version >= range[0] && version <= range[1];
}

interface FieldOptions {
  nullable?: string;
  tagged?: [versions: string, tag: number];
  default?: number | boolean | string | null;
}

/** A field: name, type, versions, then options (nullable versions, tag, default). */
function field(name: string, type: FieldType, range: string, options: FieldOptions = {}, fields?: readonly FieldDef[]): FieldDef {
  const def: FieldDef = { name, type, versions: versions(range) };
  if (options.nullable !== undefined) def.nullableVersions = versions(options.nullable);
  if (options.tagged !== undefined) {
    def.taggedVersions = versions(options.tagged[0]);
    def.tag = options.tagged[1];
  }
  if (options.default !== undefined) def.default = options.default;
  if (fields !== undefined) def.fields = fields;
  return def;
}

/** An array of structs. */
function structs(name: string, range: string, fields: readonly FieldDef[], options: FieldOptions = {}): FieldDef {
  return field(name, "[]struct", range, options, fields);
}

function message(name: string, apiKey: number, valid: string, flexible: number | null, fields: readonly FieldDef[]): MessageDef {
  return { name, apiKey, validVersions: versions(valid), flexible, fields };
}

// ---- headers (RequestHeader.json, ResponseHeader.json) ------------------------------------
// Request header v1: apiKey, apiVersion, correlationId, clientId (nullable int16-length string,
// never compact); v2 adds the tagged section. Response header v0: correlationId; v1 adds tags.
// The codec reads the header by hand (listener/frames.ts); these are for tests and docs.

export const API_KEYS = {
  produce: 0,
  fetch: 1,
  listOffsets: 2,
  metadata: 3,
  offsetCommit: 8,
  offsetFetch: 9,
  findCoordinator: 10,
  joinGroup: 11,
  heartbeat: 12,
  leaveGroup: 13,
  syncGroup: 14,
  describeGroups: 15,
  listGroups: 16,
  saslHandshake: 17,
  apiVersions: 18,
  createTopics: 19,
  deleteTopics: 20,
  initProducerId: 22,
  describeAcls: 29,
  createAcls: 30,
  deleteAcls: 31,
  describeConfigs: 32,
  deleteGroups: 42,
  offsetForLeaderEpoch: 23,
  alterConfigs: 33,
  createPartitions: 37,
  electLeaders: 43,
  incrementalAlterConfigs: 44,
  saslAuthenticate: 36,
  alterPartitionReassignments: 45,
  listPartitionReassignments: 46,
} as const;

// ---- Produce (key 0). checked: ProduceRequest/Response.json fields for v0-9 -----------------

export const produceRequest = message("ProduceRequest", 0, "0-9", 9, [
  field("transactionalId", "string", "3+", { nullable: "3+", default: null }),
  field("acks", "int16", "0+"),
  field("timeoutMs", "int32", "0+"),
  structs("topicData", "0+", [
    field("name", "string", "0+"),
    structs("partitionData", "0+", [field("index", "int32", "0+"), field("records", "records", "0+", { nullable: "0+" })]),
  ]),
]);

export const produceResponse = message("ProduceResponse", 0, "0-9", 9, [
  structs("responses", "0+", [
    field("name", "string", "0+"),
    structs("partitionResponses", "0+", [
      field("index", "int32", "0+"),
      field("errorCode", "int16", "0+"),
      field("baseOffset", "int64", "0+"),
      field("logAppendTimeMs", "int64", "2+", { default: -1 }),
      field("logStartOffset", "int64", "5+", { default: -1 }),
      structs("recordErrors", "8+", [field("batchIndex", "int32", "8+"), field("batchIndexErrorMessage", "string", "8+", { nullable: "8+", default: null })]),
      field("errorMessage", "string", "8+", { nullable: "8+", default: null }),
    ]),
  ]),
  field("throttleTimeMs", "int32", "1+"),
]);

// ---- Fetch (key 1). checked: FetchRequest/Response.json fields for v4-12 ---------------------

export const fetchRequest = message("FetchRequest", 1, "4-12", 12, [
  field("clusterId", "string", "12+", { nullable: "12+", tagged: ["12+", 0], default: null }),
  field("replicaId", "int32", "0+", { default: -1 }),
  field("maxWaitMs", "int32", "0+"),
  field("minBytes", "int32", "0+"),
  field("maxBytes", "int32", "3+", { default: 0x7fffffff }),
  field("isolationLevel", "int8", "4+"),
  field("sessionId", "int32", "7+"),
  field("sessionEpoch", "int32", "7+", { default: -1 }),
  structs("topics", "0+", [
    field("topic", "string", "0+"),
    structs("partitions", "0+", [
      field("partition", "int32", "0+"),
      field("currentLeaderEpoch", "int32", "9+", { default: -1 }),
      field("fetchOffset", "int64", "0+"),
      field("lastFetchedEpoch", "int32", "12+", { default: -1 }),
      field("logStartOffset", "int64", "5+", { default: -1 }),
      field("partitionMaxBytes", "int32", "0+"),
    ]),
  ]),
  structs("forgottenTopicsData", "7+", [field("topic", "string", "7+"), field("partitions", "[]int32", "7+")]),
  field("rackId", "string", "11+", { default: "" }),
]);

const leaderIdAndEpoch = [field("leaderId", "int32", "12+", { default: -1 }), field("leaderEpoch", "int32", "12+", { default: -1 })];

export const fetchResponse = message("FetchResponse", 1, "4-12", 12, [
  field("throttleTimeMs", "int32", "1+"),
  field("errorCode", "int16", "7+"),
  field("sessionId", "int32", "7+"),
  structs("responses", "0+", [
    field("topic", "string", "0+"),
    structs("partitions", "0+", [
      field("partitionIndex", "int32", "0+"),
      field("errorCode", "int16", "0+"),
      field("highWatermark", "int64", "0+"),
      field("lastStableOffset", "int64", "4+", { default: -1 }),
      field("logStartOffset", "int64", "5+", { default: -1 }),
      field("divergingEpoch", "struct", "12+", { tagged: ["12+", 0] }, [field("epoch", "int32", "12+", { default: -1 }), field("endOffset", "int64", "12+", { default: -1 })]),
      field("currentLeader", "struct", "12+", { tagged: ["12+", 1] }, leaderIdAndEpoch),
      field("snapshotId", "struct", "12+", { tagged: ["12+", 2] }, [field("endOffset", "int64", "0+", { default: -1 }), field("epoch", "int32", "0+", { default: -1 })]),
      structs("abortedTransactions", "4+", [field("producerId", "int64", "4+"), field("firstOffset", "int64", "4+")], { nullable: "4+", default: null }),
      field("preferredReadReplica", "int32", "11+", { default: -1 }),
      field("records", "records", "0+", { nullable: "0+" }),
    ]),
  ]),
]);

// ---- ListOffsets (key 2). checked: ListOffsetsRequest/Response.json fields for v1-7 ---------

export const listOffsetsRequest = message("ListOffsetsRequest", 2, "1-7", 6, [
  field("replicaId", "int32", "0+"),
  field("isolationLevel", "int8", "2+"),
  structs("topics", "0+", [
    field("name", "string", "0+"),
    structs("partitions", "0+", [
      field("partitionIndex", "int32", "0+"),
      field("currentLeaderEpoch", "int32", "4+", { default: -1 }),
      field("timestamp", "int64", "0+"),
      field("maxNumOffsets", "int32", "0", { default: 1 }),
    ]),
  ]),
]);

export const listOffsetsResponse = message("ListOffsetsResponse", 2, "1-7", 6, [
  field("throttleTimeMs", "int32", "2+"),
  structs("topics", "0+", [
    field("name", "string", "0+"),
    structs("partitions", "0+", [
      field("partitionIndex", "int32", "0+"),
      field("errorCode", "int16", "0+"),
      field("oldStyleOffsets", "[]int64", "0"),
      field("timestamp", "int64", "1+", { default: -1 }),
      field("offset", "int64", "1+", { default: -1 }),
      field("leaderEpoch", "int32", "4+", { default: -1 }),
    ]),
  ]),
]);

// ---- Metadata (key 3). checked: MetadataRequest/Response.json fields for v0-12 --------------

export const metadataRequest = message("MetadataRequest", 3, "0-12", 9, [
  structs("topics", "0+", [field("topicId", "uuid", "10+"), field("name", "string", "0+", { nullable: "10+" })], { nullable: "1+" }),
  field("allowAutoTopicCreation", "bool", "4+", { default: true }),
  field("includeClusterAuthorizedOperations", "bool", "8-10"),
  field("includeTopicAuthorizedOperations", "bool", "8+"),
]);

export const metadataResponse = message("MetadataResponse", 3, "0-12", 9, [
  field("throttleTimeMs", "int32", "3+"),
  structs("brokers", "0+", [
    field("nodeId", "int32", "0+"),
    field("host", "string", "0+"),
    field("port", "int32", "0+"),
    field("rack", "string", "1+", { nullable: "1+", default: null }),
  ]),
  field("clusterId", "string", "2+", { nullable: "2+", default: null }),
  field("controllerId", "int32", "1+", { default: -1 }),
  structs("topics", "0+", [
    field("errorCode", "int16", "0+"),
    field("name", "string", "0+", { nullable: "12+" }),
    field("topicId", "uuid", "10+"),
    field("isInternal", "bool", "1+", { default: false }),
    structs("partitions", "0+", [
      field("errorCode", "int16", "0+"),
      field("partitionIndex", "int32", "0+"),
      field("leaderId", "int32", "0+"),
      field("leaderEpoch", "int32", "7+", { default: -1 }),
      field("replicaNodes", "[]int32", "0+"),
      field("isrNodes", "[]int32", "0+"),
      field("offlineReplicas", "[]int32", "5+"),
    ]),
    field("topicAuthorizedOperations", "int32", "8+", { default: -2147483648 }),
  ]),
  field("clusterAuthorizedOperations", "int32", "8-10", { default: -2147483648 }),
]);

// ---- OffsetCommit (key 8). checked: OffsetCommitRequest/Response.json for v1-8 -------------
// v1 (commitTimestamp per partition, ignored) is what Sarama 1.22 sends by default.

export const offsetCommitRequest = message("OffsetCommitRequest", 8, "1-8", 8, [
  field("groupId", "string", "0+"),
  field("generationId", "int32", "1+", { default: -1 }),
  field("memberId", "string", "1+"),
  field("groupInstanceId", "string", "7+", { nullable: "7+", default: null }),
  field("retentionTimeMs", "int64", "2-4", { default: -1 }),
  structs("topics", "0+", [
    field("name", "string", "0+"),
    structs("partitions", "0+", [
      field("partitionIndex", "int32", "0+"),
      field("committedOffset", "int64", "0+"),
      field("committedLeaderEpoch", "int32", "6+", { default: -1 }),
      field("commitTimestamp", "int64", "1", { default: -1 }),
      field("committedMetadata", "string", "0+", { nullable: "0+" }),
    ]),
  ]),
]);

export const offsetCommitResponse = message("OffsetCommitResponse", 8, "1-8", 8, [
  field("throttleTimeMs", "int32", "3+"),
  structs("topics", "0+", [field("name", "string", "0+"), structs("partitions", "0+", [field("partitionIndex", "int32", "0+"), field("errorCode", "int16", "0+")])]),
]);

// ---- OffsetFetch (key 9). checked: OffsetFetchRequest/Response.json for v1-7 ----------------

export const offsetFetchRequest = message("OffsetFetchRequest", 9, "1-7", 6, [
  field("groupId", "string", "0-7"),
  structs("topics", "0-7", [field("name", "string", "0-7"), field("partitionIndexes", "[]int32", "0-7")], { nullable: "2-7" }),
  field("requireStable", "bool", "7+"),
]);

export const offsetFetchResponse = message("OffsetFetchResponse", 9, "1-7", 6, [
  field("throttleTimeMs", "int32", "3+"),
  structs("topics", "0-7", [
    field("name", "string", "0-7"),
    structs("partitions", "0-7", [
      field("partitionIndex", "int32", "0-7"),
      field("committedOffset", "int64", "0-7"),
      field("committedLeaderEpoch", "int32", "5-7", { default: -1 }),
      field("metadata", "string", "0-7", { nullable: "0-7" }),
      field("errorCode", "int16", "0-7"),
    ]),
  ]),
  field("errorCode", "int16", "2-7"),
]);

// ---- FindCoordinator (key 10). checked: FindCoordinatorRequest/Response.json for v0-4 ------

export const findCoordinatorRequest = message("FindCoordinatorRequest", 10, "0-4", 3, [
  field("key", "string", "0-3"),
  field("keyType", "int8", "1+"),
  field("coordinatorKeys", "[]string", "4+"),
]);

export const findCoordinatorResponse = message("FindCoordinatorResponse", 10, "0-4", 3, [
  field("throttleTimeMs", "int32", "1+"),
  field("errorCode", "int16", "0-3"),
  field("errorMessage", "string", "1-3", { nullable: "1-3", default: null }),
  field("nodeId", "int32", "0-3"),
  field("host", "string", "0-3"),
  field("port", "int32", "0-3"),
  structs("coordinators", "4+", [
    field("key", "string", "4+"),
    field("nodeId", "int32", "4+"),
    field("host", "string", "4+"),
    field("port", "int32", "4+"),
    field("errorCode", "int16", "4+"),
    field("errorMessage", "string", "4+", { nullable: "4+", default: null }),
  ]),
]);

// ---- JoinGroup (key 11). checked: JoinGroupRequest/Response.json for v0-7 ------------------
// v4+: a first join without a member id is answered MEMBER_ID_REQUIRED with one (KIP-394).

export const joinGroupRequest = message("JoinGroupRequest", 11, "0-7", 6, [
  field("groupId", "string", "0+"),
  field("sessionTimeoutMs", "int32", "0+"),
  field("rebalanceTimeoutMs", "int32", "1+", { default: -1 }),
  field("memberId", "string", "0+"),
  field("groupInstanceId", "string", "5+", { nullable: "5+", default: null }),
  field("protocolType", "string", "0+"),
  structs("protocols", "0+", [field("name", "string", "0+"), field("metadata", "bytes", "0+")]),
]);

export const joinGroupResponse = message("JoinGroupResponse", 11, "0-7", 6, [
  field("throttleTimeMs", "int32", "2+"),
  field("errorCode", "int16", "0+"),
  field("generationId", "int32", "0+", { default: -1 }),
  field("protocolType", "string", "7+", { nullable: "7+", default: null }),
  field("protocolName", "string", "0+", { nullable: "7+" }),
  field("leader", "string", "0+"),
  field("memberId", "string", "0+"),
  structs("members", "0+", [
    field("memberId", "string", "0+"),
    field("groupInstanceId", "string", "5+", { nullable: "5+", default: null }),
    field("metadata", "bytes", "0+"),
  ]),
]);

// ---- Heartbeat (key 12). checked: HeartbeatRequest/Response.json for v0-4 ------------------

export const heartbeatRequest = message("HeartbeatRequest", 12, "0-4", 4, [
  field("groupId", "string", "0+"),
  field("generationId", "int32", "0+"),
  field("memberId", "string", "0+"),
  field("groupInstanceId", "string", "3+", { nullable: "3+", default: null }),
]);

export const heartbeatResponse = message("HeartbeatResponse", 12, "0-4", 4, [field("throttleTimeMs", "int32", "1+"), field("errorCode", "int16", "0+")]);

// ---- LeaveGroup (key 13). checked: LeaveGroupRequest/Response.json for v0-4 ----------------
// v3+ leaves many members at once (KIP-345's batch form).

export const leaveGroupRequest = message("LeaveGroupRequest", 13, "0-4", 4, [
  field("groupId", "string", "0+"),
  field("memberId", "string", "0-2"),
  structs("members", "3+", [field("memberId", "string", "3+"), field("groupInstanceId", "string", "3+", { nullable: "3+", default: null })]),
]);

export const leaveGroupResponse = message("LeaveGroupResponse", 13, "0-4", 4, [
  field("throttleTimeMs", "int32", "1+"),
  field("errorCode", "int16", "0+"),
  structs("members", "3+", [
    field("memberId", "string", "3+"),
    field("groupInstanceId", "string", "3+", { nullable: "3+", default: null }),
    field("errorCode", "int16", "3+"),
  ]),
]);

// ---- SyncGroup (key 14). checked: SyncGroupRequest/Response.json for v0-5 ------------------

export const syncGroupRequest = message("SyncGroupRequest", 14, "0-5", 4, [
  field("groupId", "string", "0+"),
  field("generationId", "int32", "0+"),
  field("memberId", "string", "0+"),
  field("groupInstanceId", "string", "3+", { nullable: "3+", default: null }),
  field("protocolType", "string", "5+", { nullable: "5+", default: null }),
  field("protocolName", "string", "5+", { nullable: "5+", default: null }),
  structs("assignments", "0+", [field("memberId", "string", "0+"), field("assignment", "bytes", "0+")]),
]);

export const syncGroupResponse = message("SyncGroupResponse", 14, "0-5", 4, [
  field("throttleTimeMs", "int32", "1+"),
  field("errorCode", "int16", "0+"),
  field("protocolType", "string", "5+", { nullable: "5+", default: null }),
  field("protocolName", "string", "5+", { nullable: "5+", default: null }),
  field("assignment", "bytes", "0+"),
]);

// ---- DescribeGroups (key 15). checked: DescribeGroupsRequest/Response.json for v0-5 --------

export const describeGroupsRequest = message("DescribeGroupsRequest", 15, "0-5", 5, [
  field("groups", "[]string", "0+"),
  field("includeAuthorizedOperations", "bool", "3+"),
]);

export const describeGroupsResponse = message("DescribeGroupsResponse", 15, "0-5", 5, [
  field("throttleTimeMs", "int32", "1+"),
  structs("groups", "0+", [
    field("errorCode", "int16", "0+"),
    field("groupId", "string", "0+"),
    field("groupState", "string", "0+"),
    field("protocolType", "string", "0+"),
    field("protocolData", "string", "0+"),
    structs("members", "0+", [
      field("memberId", "string", "0+"),
      field("groupInstanceId", "string", "4+", { nullable: "4+", default: null }),
      field("clientId", "string", "0+"),
      field("clientHost", "string", "0+"),
      field("memberMetadata", "bytes", "0+"),
      field("memberAssignment", "bytes", "0+"),
    ]),
    field("authorizedOperations", "int32", "3+", { default: -2147483648 }),
  ]),
]);

// ---- ListGroups (key 16). checked: ListGroupsRequest/Response.json for v0-4 ----------------

export const listGroupsRequest = message("ListGroupsRequest", 16, "0-4", 3, [field("statesFilter", "[]string", "4+")]);

export const listGroupsResponse = message("ListGroupsResponse", 16, "0-4", 3, [
  field("throttleTimeMs", "int32", "1+"),
  field("errorCode", "int16", "0+"),
  structs("groups", "0+", [field("groupId", "string", "0+"), field("protocolType", "string", "0+"), field("groupState", "string", "4+")]),
]);

// ---- DeleteGroups (key 42). checked: DeleteGroupsRequest/Response.json for v0-2 ------------

export const deleteGroupsRequest = message("DeleteGroupsRequest", 42, "0-2", 2, [field("groupsNames", "[]string", "0+")]);

export const deleteGroupsResponse = message("DeleteGroupsResponse", 42, "0-2", 2, [
  field("throttleTimeMs", "int32", "0+"),
  structs("results", "0+", [field("groupId", "string", "0+"), field("errorCode", "int16", "0+")]),
]);

// ---- SaslHandshake (key 17). checked: SaslHandshakeRequest/Response.json for v0-1 ----------
// v0: the SASL tokens that follow travel as raw size-prefixed frames (no Kafka header);
// v1: they travel in SaslAuthenticate requests.

export const saslHandshakeRequest = message("SaslHandshakeRequest", 17, "0-1", null, [field("mechanism", "string", "0+")]);

export const saslHandshakeResponse = message("SaslHandshakeResponse", 17, "0-1", null, [
  field("errorCode", "int16", "0+"),
  field("mechanisms", "[]string", "0+"),
]);

// ---- SaslAuthenticate (key 36). checked: SaslAuthenticateRequest/Response.json for v0-2 ----

export const saslAuthenticateRequest = message("SaslAuthenticateRequest", 36, "0-2", 2, [field("authBytes", "bytes", "0+")]);

export const saslAuthenticateResponse = message("SaslAuthenticateResponse", 36, "0-2", 2, [
  field("errorCode", "int16", "0+"),
  field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
  field("authBytes", "bytes", "0+"),
  field("sessionLifetimeMs", "int64", "1+", { default: 0 }),
]);

// ---- ApiVersions (key 18). checked: ApiVersionsRequest/Response.json for v0-4 --------------

export const apiVersionsRequest = message("ApiVersionsRequest", 18, "0-4", 3, [
  field("clientSoftwareName", "string", "3+"),
  field("clientSoftwareVersion", "string", "3+"),
]);

export const apiVersionsResponse = message("ApiVersionsResponse", 18, "0-4", 3, [
  field("errorCode", "int16", "0+"),
  structs("apiKeys", "0+", [field("apiKey", "int16", "0+"), field("minVersion", "int16", "0+"), field("maxVersion", "int16", "0+")]),
  field("throttleTimeMs", "int32", "1+"),
  structs("supportedFeatures", "3+", [field("name", "string", "3+"), field("minVersion", "int16", "3+"), field("maxVersion", "int16", "3+")], { tagged: ["3+", 0] }),
  field("finalizedFeaturesEpoch", "int64", "3+", { tagged: ["3+", 1], default: -1 }),
  structs("finalizedFeatures", "3+", [field("name", "string", "3+"), field("maxVersionLevel", "int16", "3+"), field("minVersionLevel", "int16", "3+")], { tagged: ["3+", 2] }),
  field("zkMigrationReady", "bool", "3+", { tagged: ["3+", 3], default: false }),
]);

// ---- CreateTopics (key 19). checked: CreateTopicsRequest/Response.json for v0-7 ------------

export const createTopicsRequest = message("CreateTopicsRequest", 19, "0-7", 5, [
  structs("topics", "0+", [
    field("name", "string", "0+"),
    field("numPartitions", "int32", "0+"),
    field("replicationFactor", "int16", "0+"),
    structs("assignments", "0+", [field("partitionIndex", "int32", "0+"), field("brokerIds", "[]int32", "0+")]),
    structs("configs", "0+", [field("name", "string", "0+"), field("value", "string", "0+", { nullable: "0+" })]),
  ]),
  field("timeoutMs", "int32", "0+"),
  field("validateOnly", "bool", "1+"),
]);

export const createTopicsResponse = message("CreateTopicsResponse", 19, "0-7", 5, [
  field("throttleTimeMs", "int32", "2+"),
  structs("topics", "0+", [
    field("name", "string", "0+"),
    field("topicId", "uuid", "7+"),
    field("errorCode", "int16", "0+"),
    field("errorMessage", "string", "1+", { nullable: "0+", default: null }),
    field("topicConfigErrorCode", "int16", "5+", { tagged: ["5+", 0] }),
    field("numPartitions", "int32", "5+", { default: -1 }),
    field("replicationFactor", "int16", "5+", { default: -1 }),
    structs("configs", "5+", [
      field("name", "string", "5+"),
      field("value", "string", "5+", { nullable: "5+" }),
      field("readOnly", "bool", "5+"),
      field("configSource", "int8", "5+", { default: -1 }),
      field("isSensitive", "bool", "5+"),
    ], { nullable: "5+", default: null }),
  ]),
]);

// ---- DeleteTopics (key 20). checked: DeleteTopicsRequest/Response.json for v0-6 ------------

export const deleteTopicsRequest = message("DeleteTopicsRequest", 20, "0-6", 4, [
  structs("topics", "6+", [field("name", "string", "6+", { nullable: "6+" }), field("topicId", "uuid", "6+")]),
  field("topicNames", "[]string", "0-5"),
  field("timeoutMs", "int32", "0+"),
]);

export const deleteTopicsResponse = message("DeleteTopicsResponse", 20, "0-6", 4, [
  field("throttleTimeMs", "int32", "1+"),
  structs("responses", "0+", [
    field("name", "string", "0+", { nullable: "6+" }),
    field("topicId", "uuid", "6+"),
    field("errorCode", "int16", "0+"),
    field("errorMessage", "string", "5+", { nullable: "5+", default: null }),
  ]),
]);

// ---- InitProducerId (key 22). checked: InitProducerIdRequest/Response.json for v0-4 --------

export const initProducerIdRequest = message("InitProducerIdRequest", 22, "0-4", 2, [
  field("transactionalId", "string", "0+", { nullable: "0+" }),
  field("transactionTimeoutMs", "int32", "0+"),
  field("producerId", "int64", "3+", { default: -1 }),
  field("producerEpoch", "int16", "3+", { default: -1 }),
]);

export const initProducerIdResponse = message("InitProducerIdResponse", 22, "0-4", 2, [
  field("throttleTimeMs", "int32", "0+"),
  field("errorCode", "int16", "0+"),
  field("producerId", "int64", "0+", { default: -1 }),
  field("producerEpoch", "int16", "0+"),
]);

// ---- DescribeConfigs (key 32). checked: DescribeConfigsRequest/Response.json for v0-4 --------

export const describeConfigsRequest = message("DescribeConfigsRequest", 32, "0-4", 4, [
  structs("resources", "0+", [
    field("resourceType", "int8", "0+"),
    field("resourceName", "string", "0+"),
    field("configurationKeys", "[]string", "0+", { nullable: "0+" }),
  ]),
  field("includeSynonyms", "bool", "1+"),
  field("includeDocumentation", "bool", "3+"),
]);

export const describeConfigsResponse = message("DescribeConfigsResponse", 32, "0-4", 4, [
  field("throttleTimeMs", "int32", "0+"),
  structs("results", "0+", [
    field("errorCode", "int16", "0+"),
    field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
    field("resourceType", "int8", "0+"),
    field("resourceName", "string", "0+"),
    structs("configs", "0+", [
      field("name", "string", "0+"),
      field("value", "string", "0+", { nullable: "0+" }),
      field("readOnly", "bool", "0+"),
      field("isDefault", "bool", "0"),
      field("configSource", "int8", "1+", { default: -1 }),
      field("isSensitive", "bool", "0+"),
      structs("synonyms", "1+", [field("name", "string", "1+"), field("value", "string", "1+", { nullable: "0+" }), field("source", "int8", "1+")]),
      field("configType", "int8", "3+"),
      field("documentation", "string", "3+", { nullable: "0+", default: null }),
    ]),
  ]),
]);

// ---- OffsetForLeaderEpoch (key 23). checked: OffsetForLeaderEpochRequest/Response.json v0-4 --

export const offsetForLeaderEpochRequest = message("OffsetForLeaderEpochRequest", 23, "0-4", 4, [
  field("replicaId", "int32", "3+", { default: -2 }),
  structs("topics", "0+", [
    field("topic", "string", "0+"),
    structs("partitions", "0+", [
      field("partition", "int32", "0+"),
      field("currentLeaderEpoch", "int32", "2+", { default: -1 }),
      field("leaderEpoch", "int32", "0+"),
    ]),
  ]),
]);

export const offsetForLeaderEpochResponse = message("OffsetForLeaderEpochResponse", 23, "0-4", 4, [
  field("throttleTimeMs", "int32", "2+"),
  structs("topics", "0+", [
    field("topic", "string", "0+"),
    structs("partitions", "0+", [
      field("errorCode", "int16", "0+"),
      field("partition", "int32", "0+"),
      field("leaderEpoch", "int32", "1+", { default: -1 }),
      field("endOffset", "int64", "0+", { default: -1 }),
    ]),
  ]),
]);

// ---- CreatePartitions (key 37). checked: CreatePartitionsRequest/Response.json for v0-3 -------
// (v2 flexible, v3 as v2: KIP-599's throttling answer)

export const createPartitionsRequest = message("CreatePartitionsRequest", 37, "0-3", 2, [
  structs("topics", "0+", [
    field("name", "string", "0+"),
    field("count", "int32", "0+"),
    structs("assignments", "0+", [field("brokerIds", "[]int32", "0+")], { nullable: "0+" }),
  ]),
  field("timeoutMs", "int32", "0+"),
  field("validateOnly", "bool", "0+"),
]);

export const createPartitionsResponse = message("CreatePartitionsResponse", 37, "0-3", 2, [
  field("throttleTimeMs", "int32", "0+"),
  structs("results", "0+", [
    field("name", "string", "0+"),
    field("errorCode", "int16", "0+"),
    field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
  ]),
]);

// ---- ElectLeaders (key 43). checked: ElectLeadersRequest/Response.json for v0-2 (2+ flexible;
// v1 adds electionType and the top-level errorCode) -----------------------------------------

export const electLeadersRequest = message("ElectLeadersRequest", 43, "0-2", 2, [
  field("electionType", "int8", "1+", { default: 0 }),
  structs("topicPartitions", "0+", [field("topic", "string", "0+"), field("partitions", "[]int32", "0+")], { nullable: "0+" }),
  field("timeoutMs", "int32", "0+", { default: 60_000 }),
]);

export const electLeadersResponse = message("ElectLeadersResponse", 43, "0-2", 2, [
  field("throttleTimeMs", "int32", "0+"),
  field("errorCode", "int16", "1+", { default: 0 }),
  structs("replicaElectionResults", "0+", [
    field("topic", "string", "0+"),
    structs("partitionResult", "0+", [field("partitionId", "int32", "0+"), field("errorCode", "int16", "0+"), field("errorMessage", "string", "0+", { nullable: "0+", default: null })]),
  ]),
]);

// ---- AlterConfigs (key 33), IncrementalAlterConfigs (key 44). checked: their Request/Response.json
// for v0-2 (2+ flexible) and v0-1 (1+ flexible). Both answer with the same per-resource results.

const alterConfigsResults = structs("responses", "0+", [
  field("errorCode", "int16", "0+"),
  field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
  field("resourceType", "int8", "0+"),
  field("resourceName", "string", "0+"),
]);

export const alterConfigsRequest = message("AlterConfigsRequest", 33, "0-2", 2, [
  structs("resources", "0+", [
    field("resourceType", "int8", "0+"),
    field("resourceName", "string", "0+"),
    structs("configs", "0+", [field("name", "string", "0+"), field("value", "string", "0+", { nullable: "0+" })]),
  ]),
  field("validateOnly", "bool", "0+"),
]);

export const alterConfigsResponse = message("AlterConfigsResponse", 33, "0-2", 2, [field("throttleTimeMs", "int32", "0+"), alterConfigsResults]);

export const incrementalAlterConfigsRequest = message("IncrementalAlterConfigsRequest", 44, "0-1", 1, [
  structs("resources", "0+", [
    field("resourceType", "int8", "0+"),
    field("resourceName", "string", "0+"),
    structs("configs", "0+", [field("name", "string", "0+"), field("configOperation", "int8", "0+"), field("value", "string", "0+", { nullable: "0+" })]),
  ]),
  field("validateOnly", "bool", "0+"),
]);

export const incrementalAlterConfigsResponse = message("IncrementalAlterConfigsResponse", 44, "0-1", 1, [field("throttleTimeMs", "int32", "0+"), alterConfigsResults]);
// ---- DescribeAcls (29), CreateAcls (30), DeleteAcls (31). checked: their Request/Response.json
// for v0-1 (2+ is flexible, 3 adds the user resource type; capped at 1: kafkajs speaks 0-1) ----

const aclFilterFields = [
  field("resourceTypeFilter", "int8", "0+"),
  field("resourceNameFilter", "string", "0+", { nullable: "0+" }),
  field("patternTypeFilter", "int8", "1+", { default: 3 }),
  field("principalFilter", "string", "0+", { nullable: "0+" }),
  field("hostFilter", "string", "0+", { nullable: "0+" }),
  field("operation", "int8", "0+"),
  field("permissionType", "int8", "0+"),
];

export const describeAclsRequest = message("DescribeAclsRequest", 29, "0-1", null, aclFilterFields);

export const describeAclsResponse = message("DescribeAclsResponse", 29, "0-1", null, [
  field("throttleTimeMs", "int32", "0+"),
  field("errorCode", "int16", "0+"),
  field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
  structs("resources", "0+", [
    field("resourceType", "int8", "0+"),
    field("resourceName", "string", "0+"),
    field("patternType", "int8", "1+", { default: 3 }),
    structs("acls", "0+", [field("principal", "string", "0+"), field("host", "string", "0+"), field("operation", "int8", "0+"), field("permissionType", "int8", "0+")]),
  ]),
]);

export const createAclsRequest = message("CreateAclsRequest", 30, "0-1", null, [
  structs("creations", "0+", [
    field("resourceType", "int8", "0+"),
    field("resourceName", "string", "0+"),
    field("resourcePatternType", "int8", "1+", { default: 3 }),
    field("principal", "string", "0+"),
    field("host", "string", "0+"),
    field("operation", "int8", "0+"),
    field("permissionType", "int8", "0+"),
  ]),
]);

export const createAclsResponse = message("CreateAclsResponse", 30, "0-1", null, [
  field("throttleTimeMs", "int32", "0+"),
  structs("results", "0+", [field("errorCode", "int16", "0+"), field("errorMessage", "string", "0+", { nullable: "0+", default: null })]),
]);

export const deleteAclsRequest = message("DeleteAclsRequest", 31, "0-1", null, [structs("filters", "0+", aclFilterFields)]);

export const deleteAclsResponse = message("DeleteAclsResponse", 31, "0-1", null, [
  field("throttleTimeMs", "int32", "0+"),
  structs("filterResults", "0+", [
    field("errorCode", "int16", "0+"),
    field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
    structs("matchingAcls", "0+", [
      field("errorCode", "int16", "0+"),
      field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
      field("resourceType", "int8", "0+"),
      field("resourceName", "string", "0+"),
      field("patternType", "int8", "1+", { default: 3 }),
      field("principal", "string", "0+"),
      field("host", "string", "0+"),
      field("operation", "int8", "0+"),
      field("permissionType", "int8", "0+"),
    ]),
  ]),
]);

// ---- AlterPartitionReassignments (key 45), ListPartitionReassignments (key 46). checked: their
// Request/Response.json for v0 (flexible from 0; v1 of 45, KIP-860's allowReplicationFactorChange,
// is not served: a replica count change is always allowed here)

export const alterPartitionReassignmentsRequest = message("AlterPartitionReassignmentsRequest", 45, "0", 0, [
  field("timeoutMs", "int32", "0+", { default: 60_000 }),
  structs("topics", "0+", [
    field("name", "string", "0+"),
    structs("partitions", "0+", [field("partitionIndex", "int32", "0+"), field("replicas", "[]int32", "0+", { nullable: "0+", default: null })]),
  ]),
]);

export const alterPartitionReassignmentsResponse = message("AlterPartitionReassignmentsResponse", 45, "0", 0, [
  field("throttleTimeMs", "int32", "0+"),
  field("errorCode", "int16", "0+"),
  field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
  structs("responses", "0+", [
    field("name", "string", "0+"),
    structs("partitions", "0+", [
      field("partitionIndex", "int32", "0+"),
      field("errorCode", "int16", "0+"),
      field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
    ]),
  ]),
]);

export const listPartitionReassignmentsRequest = message("ListPartitionReassignmentsRequest", 46, "0", 0, [
  field("timeoutMs", "int32", "0+", { default: 60_000 }),
  structs("topics", "0+", [field("name", "string", "0+"), field("partitionIndexes", "[]int32", "0+")], { nullable: "0+", default: null }),
]);

export const listPartitionReassignmentsResponse = message("ListPartitionReassignmentsResponse", 46, "0", 0, [
  field("throttleTimeMs", "int32", "0+"),
  field("errorCode", "int16", "0+"),
  field("errorMessage", "string", "0+", { nullable: "0+", default: null }),
  structs("topics", "0+", [
    field("name", "string", "0+"),
    structs("partitions", "0+", [
      field("partitionIndex", "int32", "0+"),
      field("replicas", "[]int32", "0+"),
      field("addingReplicas", "[]int32", "0+"),
      field("removingReplicas", "[]int32", "0+"),
    ]),
  ]),
]);

/** Every request/response pair we serve, by API key. */
export const MESSAGES: ReadonlyMap<number, { request: MessageDef; response: MessageDef }> = new Map([
  [0, { request: produceRequest, response: produceResponse }],
  [1, { request: fetchRequest, response: fetchResponse }],
  [2, { request: listOffsetsRequest, response: listOffsetsResponse }],
  [3, { request: metadataRequest, response: metadataResponse }],
  [8, { request: offsetCommitRequest, response: offsetCommitResponse }],
  [9, { request: offsetFetchRequest, response: offsetFetchResponse }],
  [10, { request: findCoordinatorRequest, response: findCoordinatorResponse }],
  [11, { request: joinGroupRequest, response: joinGroupResponse }],
  [12, { request: heartbeatRequest, response: heartbeatResponse }],
  [13, { request: leaveGroupRequest, response: leaveGroupResponse }],
  [14, { request: syncGroupRequest, response: syncGroupResponse }],
  [15, { request: describeGroupsRequest, response: describeGroupsResponse }],
  [16, { request: listGroupsRequest, response: listGroupsResponse }],
  [18, { request: apiVersionsRequest, response: apiVersionsResponse }],
  [19, { request: createTopicsRequest, response: createTopicsResponse }],
  [20, { request: deleteTopicsRequest, response: deleteTopicsResponse }],
  [22, { request: initProducerIdRequest, response: initProducerIdResponse }],
  [29, { request: describeAclsRequest, response: describeAclsResponse }],
  [30, { request: createAclsRequest, response: createAclsResponse }],
  [31, { request: deleteAclsRequest, response: deleteAclsResponse }],
  [32, { request: describeConfigsRequest, response: describeConfigsResponse }],
  [42, { request: deleteGroupsRequest, response: deleteGroupsResponse }],
  [23, { request: offsetForLeaderEpochRequest, response: offsetForLeaderEpochResponse }],
  [33, { request: alterConfigsRequest, response: alterConfigsResponse }],
  [37, { request: createPartitionsRequest, response: createPartitionsResponse }],
  [43, { request: electLeadersRequest, response: electLeadersResponse }],
  [44, { request: incrementalAlterConfigsRequest, response: incrementalAlterConfigsResponse }],
  [17, { request: saslHandshakeRequest, response: saslHandshakeResponse }],
  [36, { request: saslAuthenticateRequest, response: saslAuthenticateResponse }],
  [45, { request: alterPartitionReassignmentsRequest, response: alterPartitionReassignmentsResponse }],
  [46, { request: listPartitionReassignmentsRequest, response: listPartitionReassignmentsResponse }],
]);
