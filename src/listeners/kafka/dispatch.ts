/**
 * @module listeners/kafka/dispatch
 * One request frame in, one response frame (or none, or "close") out. Sans-IO.
 *
 *   request  = apiKey:int16 apiVersion:int16 correlationId:int32 clientId:nullable int16 string
 *              [tagged fields, header v2 = flexible versions] body
 *   response = correlationId:int32 [tagged fields, header v1 = flexible, except ApiVersions] body
 *
 * Kafka's rules for the unexpected: an ApiVersions request of a version we do not serve gets a v0
 * body with UNSUPPORTED_VERSION (35) and our ranges; any other unknown API key or version, and a
 * body that does not decode, closes the connection (Kafka's broker does the same: it cannot know
 * the shape of an error body for a version it does not speak).
 */
import type { Session } from "../../security/session.ts";
import { NOT_TIMED } from "../../broker/metrics.ts";
import type { ReadSlice } from "../../log/api.ts";
import { RunnelError } from "../../errors.ts";
import { decodeMessage, encodeMessage, isFlexible, KafkaReader, type KafkaStruct, KafkaWriter } from "./codec.ts";
import type { KafkaContext, KafkaHandler } from "./context.ts";
import { API_KEYS, inVersions, MESSAGES } from "./definitions.ts";
import { KAFKA_ERROR } from "./errors.ts";
import { handleAlterConfigs } from "./handlers/alter-configs.ts";
import { apiVersionsBody, handleApiVersions } from "./handlers/api-versions.ts";
import { handleCreatePartitions } from "./handlers/create-partitions.ts";
import { handleCreateAcls, handleDeleteAcls, handleDescribeAcls } from "./handlers/acls.ts";
import { handleCreateTopics } from "./handlers/create-topics.ts";
import { handleDeleteGroups } from "./handlers/delete-groups.ts";
import { handleDeleteTopics } from "./handlers/delete-topics.ts";
import { handleDescribeGroups } from "./handlers/describe-groups.ts";
import { handleDescribeConfigs } from "./handlers/describe-configs.ts";
import { handleFetch } from "./handlers/fetch.ts";
import { handleFindCoordinator } from "./handlers/find-coordinator.ts";
import { handleHeartbeat } from "./handlers/heartbeat.ts";
import { handleIncrementalAlterConfigs } from "./handlers/incremental-alter-configs.ts";
import { handleInitProducerId } from "./handlers/init-producer-id.ts";
import { handleJoinGroup } from "./handlers/join-group.ts";
import { handleLeaveGroup } from "./handlers/leave-group.ts";
import { handleListGroups } from "./handlers/list-groups.ts";
import { handleListOffsets } from "./handlers/list-offsets.ts";
import { handleMetadata } from "./handlers/metadata.ts";
import { handleElectLeaders } from "./handlers/elect-leaders.ts";
import { handleOffsetCommit } from "./handlers/offset-commit.ts";
import { handleOffsetFetch } from "./handlers/offset-fetch.ts";
import { handleOffsetForLeaderEpoch } from "./handlers/offset-for-leader-epoch.ts";
import { handleAlterPartitionReassignments, handleListPartitionReassignments } from "./handlers/partition-reassignments.ts";
import { handleProduce } from "./handlers/produce.ts";
import { handleSyncGroup } from "./handlers/sync-group.ts";
import { handleSaslAuthenticate } from "./handlers/sasl-authenticate.ts";
import { handleSaslHandshake } from "./handlers/sasl-handshake.ts";
import { authenticateStep, closesConnection, expectsRawToken, mustAuthenticate } from "./sasl.ts";

const HANDLERS: ReadonlyMap<number, KafkaHandler> = new Map<number, KafkaHandler>([
  [API_KEYS.produce, handleProduce],
  [API_KEYS.fetch, handleFetch],
  [API_KEYS.listOffsets, handleListOffsets],
  [API_KEYS.metadata, handleMetadata],
  [API_KEYS.offsetCommit, handleOffsetCommit],
  [API_KEYS.offsetFetch, handleOffsetFetch],
  [API_KEYS.findCoordinator, handleFindCoordinator],
  [API_KEYS.joinGroup, handleJoinGroup],
  [API_KEYS.heartbeat, handleHeartbeat],
  [API_KEYS.leaveGroup, handleLeaveGroup],
  [API_KEYS.syncGroup, handleSyncGroup],
  [API_KEYS.describeGroups, handleDescribeGroups],
  [API_KEYS.listGroups, handleListGroups],
  [API_KEYS.apiVersions, handleApiVersions],
  [API_KEYS.createTopics, handleCreateTopics],
  [API_KEYS.deleteTopics, handleDeleteTopics],
  [API_KEYS.initProducerId, handleInitProducerId],
  [API_KEYS.describeConfigs, handleDescribeConfigs],
  [API_KEYS.deleteGroups, handleDeleteGroups],
  [API_KEYS.offsetForLeaderEpoch, handleOffsetForLeaderEpoch],
  [API_KEYS.alterConfigs, handleAlterConfigs],
  [API_KEYS.createPartitions, handleCreatePartitions],
  [API_KEYS.electLeaders, handleElectLeaders],
  [API_KEYS.incrementalAlterConfigs, handleIncrementalAlterConfigs],
  [API_KEYS.describeAcls, handleDescribeAcls],
  [API_KEYS.createAcls, handleCreateAcls],
  [API_KEYS.deleteAcls, handleDeleteAcls],
  [API_KEYS.saslHandshake, handleSaslHandshake],
  [API_KEYS.saslAuthenticate, handleSaslAuthenticate],
  [API_KEYS.alterPartitionReassignments, handleAlterPartitionReassignments],
  [API_KEYS.listPartitionReassignments, handleListPartitionReassignments],
]);

/** What a connection may send before it authenticates, when authentication is on. */
const BEFORE_AUTHENTICATION: ReadonlySet<number> = new Set([API_KEYS.apiVersions, API_KEYS.saslHandshake, API_KEYS.saslAuthenticate]);

/** An encoded response: memory pieces and file slices in order, size prefix included. */
export interface KafkaFrame {
  parts: Array<Uint8Array | ReadSlice>;
  bytes: number;
}

/** `closeAfter`: the connection closes once the reply is sent (a failed authentication). */
export type DispatchResult = { kind: "reply"; frame: KafkaFrame; closeAfter?: boolean } | { kind: "none" } | { kind: "close"; reason: string };

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** The connection's identity (security/session.ts). */
  session: Session;
}

const REQUEST_HEADER_FIXED_BYTES = 8;

/** Decodes and answers one request frame body (the bytes after the size prefix). */
export function dispatch(context: KafkaContext, frame: Uint8Array, session: Session): DispatchResult | Promise<DispatchResult> {
  if (expectsRawToken(session)) return rawToken(context, frame, session);
  if (frame.length < REQUEST_HEADER_FIXED_BYTES) return { kind: "close", reason: `a ${frame.length}-byte frame is too short for a request header` };
  const reader = new KafkaReader(frame);
  const header: RequestHeader = { apiKey: reader.int16(), apiVersion: reader.int16(), correlationId: reader.int32(), clientId: null, session };
  const pair = MESSAGES.get(header.apiKey);
  const handler = HANDLERS.get(header.apiKey);
  if (pair === undefined || handler === undefined) return { kind: "close", reason: `unknown API key ${header.apiKey}` };
  if (!BEFORE_AUTHENTICATION.has(header.apiKey) && mustAuthenticate(context, session)) {
    return { kind: "close", reason: `${pair.request.name} before SASL authentication (this broker requires it)` };
  }
  if (!inVersions(pair.request.validVersions, header.apiVersion)) {
    if (header.apiKey === API_KEYS.apiVersions) return reply(header, apiVersionsBody(KAFKA_ERROR.UNSUPPORTED_VERSION), 0);
    return { kind: "close", reason: `${pair.request.name} version ${header.apiVersion} is not served (${pair.request.validVersions.join("-")})` };
  }
  let request: KafkaStruct;
  try {
    header.clientId = reader.string(false, "clientId");
    const bodyStart = isFlexible(pair.request, header.apiVersion) ? skipTaggedFields(reader) : reader.position;
    request = decodeMessage(pair.request, header.apiVersion, frame, bodyStart);
  } catch (error) {
    return { kind: "close", reason: error instanceof Error ? error.message : String(error) };
  }
  const metrics = context.broker.metrics;
  const startedMs = metrics === null ? NOT_TIMED : metrics.kafka.startTimer();
  const answer = handler(context, request, header.apiVersion, header);
  if (answer instanceof Promise) {
    return answer.then(
      (body) => {
        observe(context, header.apiKey, startedMs, false);
        return body === null ? { kind: "none" } : reply(header, body, header.apiVersion);
      },
      (error: unknown) => {
        observe(context, header.apiKey, startedMs, true);
        throw error;
      },
    );
  }
  observe(context, header.apiKey, startedMs, false);
  return answer === null ? { kind: "none" } : reply(header, answer, header.apiVersion);
}

const API_NAME_BY_KEY: ReadonlyMap<number, string> = new Map(Object.entries(API_KEYS).map(([name, key]) => [key, name]));

/** Counts an answered request on the metrics' "kafka" listener (per-partition errors are the answer's, not counted here). */
function observe(context: KafkaContext, apiKey: number, startedMs: number, failed: boolean): void {
  context.broker.metrics?.kafka.observe(API_NAME_BY_KEY.get(apiKey) ?? "unknown", startedMs === NOT_TIMED ? NOT_TIMED : (performance.now() - startedMs) / 1000, failed);
}

/** The header's tagged section (header v2): nothing in it is used; returns where the body starts. */
function skipTaggedFields(reader: KafkaReader): number {
  const count = reader.uvarint();
  for (let index = 0; index < count; index++) {
    reader.uvarint();
    reader.take(reader.uvarint(), "header tagged field");
  }
  return reader.position;
}

/** Encodes a response frame: size, header (v0, or v1 for flexible versions except ApiVersions), body. */
export function reply(header: RequestHeader, body: KafkaStruct, version: number): DispatchResult {
  const frame = encodeResponseFrame(header.apiKey, version, header.correlationId, body);
  return closesConnection(body) ? { kind: "reply", frame, closeAfter: true } : { kind: "reply", frame };
}

/**
 * After SaslHandshake v0 the SASL tokens travel bare: `u32 size + token` each way, no header.
 * A failure closes the connection without an answer (there is no field to carry one).
 */
function rawToken(context: KafkaContext, token: Uint8Array, session: Session): DispatchResult {
  const result = authenticateStep(context, session, token);
  if (result.errorCode !== KAFKA_ERROR.NONE) return { kind: "close", reason: result.errorMessage ?? "SASL authentication failed" };
  const framed = new Uint8Array(4 + result.token.length);
  new DataView(framed.buffer).setUint32(0, result.token.length);
  framed.set(result.token, 4);
  return { kind: "reply", frame: { parts: [framed], bytes: framed.length } };
}

/**
 * Encodes a request frame, a client's side of the wire (the bench's Kafka client and the tests):
 * size, header v1 (apiKey, apiVersion, correlationId, clientId) — v2 with its empty tagged section
 * for flexible versions — then the body, as one buffer.
 */
export function encodeRequestFrame(apiKey: number, version: number, correlationId: number, clientId: Uint8Array, body: KafkaStruct): Uint8Array {
  const pair = MESSAGES.get(apiKey);
  if (pair === undefined) throw new Error(`no definition for API key ${apiKey}`);
  const writer = new KafkaWriter();
  writer.int32(0); // size, patched below
  writer.int16(apiKey);
  writer.int16(version);
  writer.int32(correlationId);
  writer.int16(clientId.length);
  writer.raw(clientId);
  if (isFlexible(pair.request, version)) writer.uvarint(0);
  encodeMessage(pair.request, version, body, writer);
  const bytes = writer.finishBytes();
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setInt32(0, bytes.length - 4);
  return bytes;
}

/**
 * Decodes a response frame (the bytes after its size), a client's side of the wire: the
 * correlation id must be the one expected; header v1's tagged section for flexible versions
 * except ApiVersions (whose answer keeps header v0 so any client can read it).
 */
export function decodeResponseFrame(apiKey: number, version: number, correlationId: number, frame: Uint8Array): KafkaStruct {
  const pair = MESSAGES.get(apiKey);
  if (pair === undefined) throw new RunnelError("INVALID_REQUEST", `no definition for API key ${apiKey}`);
  const reader = new KafkaReader(frame);
  const got = reader.int32();
  if (got !== correlationId) throw new RunnelError("INVALID_REQUEST", `answer ${got} came for request ${correlationId}`);
  if (isFlexible(pair.response, version) && apiKey !== API_KEYS.apiVersions) reader.uvarint();
  return decodeMessage(pair.response, version, frame, reader.position);
}

export function encodeResponseFrame(apiKey: number, version: number, correlationId: number, body: KafkaStruct): KafkaFrame {
  const pair = MESSAGES.get(apiKey);
  if (pair === undefined) throw new Error(`no definition for API key ${apiKey}`);
  const writer = new KafkaWriter();
  writer.int32(0); // size, patched below
  writer.int32(correlationId);
  if (isFlexible(pair.response, version) && apiKey !== API_KEYS.apiVersions) writer.uvarint(0);
  encodeMessage(pair.response, version, body, writer);
  const { parts, bytes } = writer.finish();
  const first = parts[0] as Uint8Array;
  new DataView(first.buffer, first.byteOffset, first.byteLength).setInt32(0, bytes - 4);
  return { parts, bytes };
}
