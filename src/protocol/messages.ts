/**
 * @module protocol/messages
 * The wire's messages, sans-IO: a msgpack decoder with explicit limits, one zod schema per
 * request (the contract of docs/protocol.md, section 4), the response shapes, and encoders for
 * response frames — including the fetch response head, which the server follows with file
 * bytes it never copies.
 *
 * zod runs on the envelope only. A produce request's batches are msgpack `bin`, which decode as
 * views into the frame buffer: the record bytes are never parsed or copied here.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { z } from "zod";
import { type ErrorCode, RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { ACL_LIMITS, aclEntrySchema, aclFilterSchema } from "../security/acl.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame.ts";
import { scanMsgpack } from "./msgpack-scan.ts";
import { writeFetchHead, writeProduceResponse } from "./response-writer.ts";

export const PROTOCOL_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];

/** Limits of the request grammar (frame and batch sizes are configured, see config.ts). */
export const WIRE_LIMITS = {
  /** Copies of one partition a createTopic may ask for (cluster mode). */
  replicationFactorMax: 16,
  /** Nesting of msgpack containers in one request. */
  depthMax: 16,
  /** msgpack values (of any kind) in one request. */
  itemsMax: 200_000,
  /** Elements of one msgpack array. */
  arrayLengthMax: 100_000,
  /** Entries of one msgpack map. */
  mapLengthMax: 1_000,
  /** Bytes of one msgpack str. */
  strBytesMax: 64 * 1024,
  /** Batches in one produce request. */
  produceBatchesMax: 10_000,
  /** Partitions in one fetch, listOffsets, commitOffsets or fetchOffsets request. */
  partitionsPerRequestMax: 1_000,
  /** Topic names in one metadata request. */
  topicsPerRequestMax: 10_000,
  /** Characters of a committed offset's metadata string. */
  offsetMetadataLengthMax: 1_024,
  /** Topics one group member subscribes to, and topics of one group (the union of its members'). */
  groupTopicsMax: 1_000,
  /** Ceiling of the broker's fetchWaitMsMax, to which a fetch's maxWaitMs is clamped (see hello limits). */
  maxWaitMsMax: 300_000,
  /** Characters of one SCRAM message (authenticate). */
  scramMessageLengthMax: 1_024,
} as const;

/** Builds the request decoder. `frameBytesMax` bounds bin; the rest are WIRE_LIMITS. */
export function createRequestDecoder(frameBytesMax: number): (body: Uint8Array) => unknown {
  const decoder = new Decoder({
    maxStrLength: WIRE_LIMITS.strBytesMax,
    maxBinLength: frameBytesMax,
    maxArrayLength: WIRE_LIMITS.arrayLengthMax,
    maxMapLength: WIRE_LIMITS.mapLengthMax,
    maxExtLength: 0,
  });
  return (body) => {
    scanMsgpack(body, WIRE_LIMITS);
    try {
      return decoder.decode(body);
    } catch (error) {
      throw new RunnelError("INVALID_REQUEST", `malformed msgpack: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  };
}

// ---------------------------------------------------------------- request schemas

const correlationId = z.uint32();
const offset = z.int().min(0);
/**
 * Field rules, one per input (docs/protocol.md, section 6). The schema checks only the type
 * (INVALID_REQUEST); every value of the right type is judged by the broker's own rule, which
 * answers the specific code from every operation alike:
 * - a partition index is any int >= 0; one the topic does not have is UNKNOWN_PARTITION;
 * - a topic name is any str; the name rule (server/topic-rules.ts) answers INVALID_TOPIC_NAME;
 * - a partition count is any int; outside 1..partitionsPerTopicMax is INVALID_PARTITIONS;
 * - a topic config is a map; an unknown option or a wrong-typed or out-of-bounds value is
 *   INVALID_CONFIG (log/topic-config.ts).
 */
const partitionIndex = z.int().min(0);
const topicName = z.string();
const partitionCount = z.int();
const shortString = z.string().min(1).max(LIMITS.shortStringLengthMax);
const topicConfig = z.record(z.string(), z.unknown());

export const requestSchemas = {
  hello: z.object({ versions: z.array(z.int().min(0)).min(1).max(64), clientId: z.string().max(LIMITS.shortStringLengthMax).optional() }),
  metadata: z.object({
    topics: z.array(topicName).max(WIRE_LIMITS.topicsPerRequestMax).optional(),
    /** Create named topics that are missing, when the broker allows auto-creation (producers set it). */
    autoCreate: z.boolean().default(false),
  }),
  createTopic: z.object({
    topic: topicName,
    partitions: partitionCount,
    config: topicConfig.optional(),
    /** Cluster mode (docs/cluster.md): copies of each partition, and the ISR size a replicated write needs. */
    replicationFactor: z.int().min(1).max(WIRE_LIMITS.replicationFactorMax).optional(),
    minInsyncReplicas: z.int().min(1).max(WIRE_LIMITS.replicationFactorMax).optional(),
  }),
  deleteTopic: z.object({ topic: topicName }),
  describeTopic: z.object({ topic: topicName }),
  createPartitions: z.object({ topic: topicName, partitions: partitionCount }),
  alterTopicConfig: z.object({ topic: topicName, config: topicConfig }),
  produce: z.object({
    durability: z.enum(["none", "written", "synced", "replicated"]).default("written"),
    batches: z
      .array(z.object({ topic: topicName, partition: partitionIndex, batch: z.instanceof(Uint8Array) }))
      .min(1)
      .max(WIRE_LIMITS.produceBatchesMax),
  }),
  fetch: z.object({
    partitions: z
      .array(z.object({ topic: topicName, partition: partitionIndex, offset, maxBytes: z.int().min(1).optional() }))
      .min(1)
      .max(WIRE_LIMITS.partitionsPerRequestMax),
    maxBytes: z.int().min(1).default(1024 * 1024),
    /** Any wait is taken and clamped to the broker's fetchWaitMsMax (handlers/fetch.ts). */
    maxWaitMs: z.int().min(0).default(0),
    minBytes: z.int().min(0).default(1),
  }),
  /** A follower's fetch from a leader, for every partition it follows there (docs/protocol.md, replicaFetch; src/cluster/). */
  replicaFetch: z.object({
    brokerId: z.int().min(0).max(0x7fff_ffff),
    partitions: z
      .array(
        z.object({
          topic: topicName,
          partition: partitionIndex,
          /** The leader epoch the follower believes current: older is FENCED_LEADER_EPOCH, newer NOT_LEADER. */
          leaderEpoch: z.int().min(0).max(0x7fff_ffff),
          fetchOffset: offset,
          /** Epoch of the follower's last batch (-1 when its log is empty): the divergence check. */
          lastFetchedEpoch: z.int().min(-1).max(0x7fff_ffff),
        }),
      )
      .min(1)
      .max(WIRE_LIMITS.partitionsPerRequestMax),
    maxBytes: z.int().min(1).default(1024 * 1024),
    maxWaitMs: z.int().min(0).max(WIRE_LIMITS.maxWaitMsMax).default(0),
  }),
  /** Move leadership back to preferred leaders (docs/protocol.md, electLeaders; cluster mode). */
  electLeaders: z.object({
    topic: topicName.optional(),
    partitions: z.array(partitionIndex).min(1).max(WIRE_LIMITS.partitionsPerRequestMax).optional(),
    timeoutMs: z.int().min(100).max(600_000).default(15_000),
  }),
  listOffsets: z.object({
    partitions: z
      .array(z.object({ topic: topicName, partition: partitionIndex, at: z.union([z.literal("earliest"), z.literal("latest"), z.int().min(0)]) }))
      .min(1)
      .max(WIRE_LIMITS.partitionsPerRequestMax),
  }),
  commitOffsets: z.object({
    group: shortString,
    /** A group member's commit is fenced (COMMIT_FENCED); without memberId it is a tool's, and is not. */
    memberId: shortString.optional(),
    /** Required with memberId: the generation of the member's latest heartbeat answer. */
    generation: z.int().min(0).optional(),
    offsets: z
      .array(
        z.object({
          topic: topicName,
          partition: partitionIndex,
          offset,
          metadata: z.string().max(WIRE_LIMITS.offsetMetadataLengthMax).default(""),
        }),
      )
      .min(1)
      .max(WIRE_LIMITS.partitionsPerRequestMax),
  }),
  fetchOffsets: z.object({
    group: shortString,
    partitions: z.array(z.object({ topic: topicName, partition: partitionIndex })).max(WIRE_LIMITS.partitionsPerRequestMax).optional(),
  }),
  stats: z.object({}),
  /** An idempotent producer's identity: none for a new one, or the one held, to bump its epoch. */
  initProducer: z.object({
    producerId: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    producerEpoch: z.int().min(0).max(0x7fff).optional(),
  }),
  /** Consumer groups (docs/protocol.md, section 4, "Consumer groups"); bounds beyond the types are the coordinator's. */
  joinGroup: z.object({
    group: shortString,
    memberId: shortString.optional(),
    clientId: z.string().max(LIMITS.shortStringLengthMax).optional(),
    topics: z.array(topicName).min(1).max(WIRE_LIMITS.arrayLengthMax),
    assignor: z.enum(["sticky", "range", "roundRobin"]).optional(),
    sessionTimeoutMs: z.int().optional(),
    rebalanceTimeoutMs: z.int().optional(),
  }),
  heartbeat: z.object({
    group: shortString,
    memberId: shortString,
    memberEpoch: z.int().min(0),
    owned: z
      .array(z.object({ topic: topicName, partitions: z.array(partitionIndex).max(LIMITS.partitionsPerTopicMax) }))
      .max(WIRE_LIMITS.groupTopicsMax)
      .default([]),
    /** Hold the answer up to this long (capped at the heartbeat interval) unless the member has news. */
    waitMs: z.int().min(0).max(WIRE_LIMITS.maxWaitMsMax).default(0),
  }),
  leaveGroup: z.object({ group: shortString, memberId: shortString }),
  listGroups: z.object({}),
  describeGroup: z.object({ group: shortString }),
  deleteGroup: z.object({ group: shortString }),
  /** Which broker coordinates the group (cluster: the leader of its partition of __consumer_offsets). */
  findCoordinator: z.object({ group: shortString }),
  /** ACL management (docs/protocol.md, "ACLs"; security/acl.ts holds the entry's rules). */
  createAcls: z.object({ acls: z.array(aclEntrySchema).min(1).max(ACL_LIMITS.entriesPerRequestMax) }),
  deleteAcls: z.object({ filters: z.array(aclFilterSchema).min(1).max(ACL_LIMITS.entriesPerRequestMax) }),
  describeAcls: z.object({ filter: aclFilterSchema.default({}) }),
  /** One step of a SCRAM exchange (docs/protocol.md, authenticate): client-first, then client-final. */
  authenticate: z.object({ mechanism: z.enum(["SCRAM-SHA-256", "SCRAM-SHA-512"]), message: z.string().min(1).max(WIRE_LIMITS.scramMessageLengthMax) }),
  /** Adds a user or replaces its verifiers; the client derives them, the password never travels. */
  createUser: z.object({
    user: shortString,
    credentials: z
      .array(
        z.object({
          mechanism: z.enum(["SCRAM-SHA-256", "SCRAM-SHA-512"]),
          salt: z.instanceof(Uint8Array),
          iterations: z.int().min(1),
          storedKey: z.instanceof(Uint8Array),
          serverKey: z.instanceof(Uint8Array),
        }),
      )
      .min(1)
      .max(2),
  }),
  deleteUser: z.object({ user: shortString }),
  listUsers: z.object({}),
  /** Cluster mode: move a partition's replicas (docs/protocol.md; cluster/reassignment.ts); null replicas cancels. */
  alterPartitionReassignments: z.object({
    topic: topicName,
    partition: partitionIndex,
    replicas: z.array(z.int().min(0).max(0x7fff_ffff)).max(WIRE_LIMITS.replicationFactorMax).nullable(),
  }),
  listPartitionReassignments: z.object({ topics: z.array(topicName).max(WIRE_LIMITS.arrayLengthMax).optional() }),
} as const;

export type Operation = keyof typeof requestSchemas;
export type RequestOf<Op extends Operation> = z.infer<(typeof requestSchemas)[Op]>;
export type TopicConfigInput = z.infer<typeof topicConfig>;

export function isOperation(op: string): op is Operation {
  return Object.hasOwn(requestSchemas, op);
}

/** Formats a zod failure as one line naming the field: `batches[0].partition: Too small ...`. */
export function describeSchemaError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid request";
  const path = issue.path.reduce<string>(
    (text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`),
    "",
  );
  return `${path === "" ? "request" : path}: ${issue.message}`;
}

/** Validates a decoded request against its op's schema; throws INVALID_REQUEST naming the field. */
export function parseRequest<Op extends Operation>(op: Op, value: unknown): RequestOf<Op> {
  const result = requestSchemas[op].safeParse(value);
  if (!result.success) throw new RunnelError("INVALID_REQUEST", describeSchemaError(result.error));
  return result.data as RequestOf<Op>;
}

/** The id of a decoded value when it has a valid one, else null (for error answers). */
export function readCorrelationId(value: unknown): number | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const id = (value as { id?: unknown }).id;
  return correlationId.safeParse(id).success ? (id as number) : null;
}

// ---------------------------------------------------------------- responses

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function toWireError(error: RunnelError): WireError {
  return error.details === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, details: error.details };
}

export interface WirePartitionInfo {
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  sizeBytes: number;
  segmentCount: number;
}

export interface WireTopicDescription {
  name: string;
  partitions: WirePartitionInfo[];
  config: Record<string, number>;
}

export interface FetchPartitionResult {
  topic: string;
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  recordsBytes: number;
  error?: WireError;
}

const encoder = new Encoder({ ignoreUndefined: true });

/** A whole response frame: u32 length + the msgpack encoding of `body`. */
export function encodeResponseFrame(body: Record<string, unknown>): Uint8Array {
  const encoded = encoder.encodeSharedRef(body); // reused buffer: copied once, right here
  const frame = new Uint8Array(FRAME_HEADER_BYTES + encoded.length);
  writeFrameHeader(frame, 0, encoded.length);
  frame.set(encoded, FRAME_HEADER_BYTES);
  return frame;
}

/** One produce result per batch, in request order (docs/protocol.md, produce). */
export type ProduceBatchResult =
  | { topic: string; partition: number; baseOffset: number; lastOffset: number }
  | { topic: string; partition: number; error: WireError };

/**
 * The produce response frame `{id, results}`: written by hand when every batch succeeded (the
 * common case, see response-writer.ts), else by the generic encoder — the same bytes either way.
 */
export function encodeProduceResponseFrame(id: number, results: ProduceBatchResult[]): Uint8Array {
  return writeProduceResponse(id, results) ?? encodeResponseFrame({ id, results });
}

export function encodeErrorFrame(id: number | null, error: RunnelError): Uint8Array {
  return encodeResponseFrame({ id, error: toWireError(error) });
}

/** "records" as a fixstr key (0xa7 + 7 bytes) then the bin32 head (0xc6 + u32 length). */
const RECORDS_KEY = new Uint8Array([0xa7, 0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x73]);
const BIN32_HEAD_BYTES = 5;

/**
 * The fetch response up to the first records byte. The frame is
 *
 *   u32 length | 0x83 | "id" <id> | "partitions" [<FetchPartitionResult>...] | "records" 0xc6 <u32 n>
 *
 * followed by exactly n = `recordsBytes` bytes of batches that the caller sends itself (with
 * sendfile). The map is always 3 entries and `records` always bin32 — a non-minimal but valid
 * msgpack encoding that every library decodes — so the head can be written before the bytes
 * that follow it are read. Written by hand when no entry carries an error (response-writer.ts),
 * else through the generic encoder: the same bytes either way.
 */
export function encodeFetchResponseHead(id: number, partitions: FetchPartitionResult[], recordsBytes: number): Uint8Array {
  return writeFetchHead(id, partitions, recordsBytes) ?? encodeFetchResponseHeadGeneric(id, partitions, recordsBytes);
}

/** encodeFetchResponseHead through the generic encoder (exported for the tests that compare both). */
export function encodeFetchResponseHeadGeneric(id: number, partitions: FetchPartitionResult[], recordsBytes: number): Uint8Array {
  const entries = encoder.encodeSharedRef({ id, partitions });
  if (entries[0] !== 0x82) throw new Error("fetch head: expected a fixmap of 2 entries");
  const headBytes = FRAME_HEADER_BYTES + entries.length + RECORDS_KEY.length + BIN32_HEAD_BYTES;
  const head = new Uint8Array(headBytes);
  writeFrameHeader(head, 0, headBytes - FRAME_HEADER_BYTES + recordsBytes);
  head.set(entries, FRAME_HEADER_BYTES);
  head[FRAME_HEADER_BYTES] = 0x83;
  let position = FRAME_HEADER_BYTES + entries.length;
  head.set(RECORDS_KEY, position);
  position += RECORDS_KEY.length;
  head[position] = 0xc6;
  writeFrameHeader(head, position + 1, recordsBytes);
  return head;
}

/**
 * The head of a response whose last entry is `records: bin32` of `recordsBytes` bytes the caller
 * sends itself (replicaFetch): `body` (at most 14 entries, no `records`) as a fixmap with one
 * more entry, then the records key and the bin32 prefix. Same layout rule as the fetch head.
 */
export function encodeRecordsResponseHead(body: Record<string, unknown>, recordsBytes: number): Uint8Array {
  const entries = encoder.encode(body);
  const count = (entries[0] ?? 0) - 0x80;
  if (count < 0 || count > 14) throw new Error("records head: expected a fixmap of at most 14 entries");
  const headBytes = FRAME_HEADER_BYTES + entries.length + RECORDS_KEY.length + BIN32_HEAD_BYTES;
  const head = new Uint8Array(headBytes);
  writeFrameHeader(head, 0, headBytes - FRAME_HEADER_BYTES + recordsBytes);
  head.set(entries, FRAME_HEADER_BYTES);
  head[FRAME_HEADER_BYTES] = 0x80 + count + 1;
  let position = FRAME_HEADER_BYTES + entries.length;
  head.set(RECORDS_KEY, position);
  position += RECORDS_KEY.length;
  head[position] = 0xc6;
  writeFrameHeader(head, position + 1, recordsBytes);
  return head;
}

/**
 * Frame bytes kept back for the fetch head when budgeting records. The server still measures the
 * real head and drops trailing slices if head + records would pass the frame limit; config.ts
 * requires frameBytesMax >= batchBytesMax + this, so one batch always fits beside a normal head.
 */
export const FETCH_HEAD_RESERVE_BYTES = 1024 * 1024;
