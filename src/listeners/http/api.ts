/**
 * @module listeners/http/api
 * The console's JSON API, read-only, every answer bounded:
 *
 *   GET /api/overview                       version, uptime, listeners, disk, totals, counters
 *   GET /api/topics?search=&offset=&limit=  one page of topics (name order) with sizes, offsets, traffic
 *   GET /api/topics/NAME                    a topic's partitions and config
 *   GET /api/groups?search=&offset=&limit=  one page of groups with committed offsets and lag
 *   GET /api/messages?topic=&partition=&offset=|timestampMs=&limit=
 *                                           messages of a partition from an offset or a time
 *
 * The message read takes the copy path (pread of at most MESSAGES_READ_BYTES_MAX) and decodes
 * batches here; keys and values go out base64-encoded, cut at VALUE_PREVIEW_BYTES_MAX, so the
 * page can show them as text or hex. Errors answer `{error: {code, message}}` with 400/404.
 */
import { RunnelError, toRunnelError } from "../../errors.ts";
import { forEachRecordFrom } from "../../log/read-records.ts";
import type { BrokerContext } from "../../server/context.ts";
import { authorize, CLUSTER, groupResource, isAuthorizationOn, requireAuthorized, topicResource } from "../../security/authorizer.ts";
import type { Session } from "../../security/session.ts";
import type { BrokerView } from "./broker-view.ts";
import { describeQuietly, diskOf, groupLag, topicTotals } from "./inventory.ts";

/** Largest page of topics or groups. */
export const PAGE_LIMIT_MAX = 200;
/** Most messages one read answers. */
export const MESSAGES_LIMIT_MAX = 200;
/** Bytes of the log one message read copies at most. */
export const MESSAGES_READ_BYTES_MAX = 1024 * 1024;
/** Bytes of each key and value sent to the page. */
export const VALUE_PREVIEW_BYTES_MAX = 4096;
/** Longest search string. */
const SEARCH_LENGTH_MAX = 255;

type Query = URLSearchParams;

function intParam(query: Query, name: string, fallback: number, min: number, max: number): number {
  const text = query.get(name);
  if (text === null || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new RunnelError("INVALID_REQUEST", `${name}: expected an integer from ${min} to ${max}`);
  return value;
}

function searchParam(query: Query): string {
  return (query.get("search") ?? "").slice(0, SEARCH_LENGTH_MAX).toLowerCase();
}

function page<T>(items: readonly T[], query: Query): { total: number; offset: number; items: T[] } {
  const offset = intParam(query, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = intParam(query, "limit", 50, 1, PAGE_LIMIT_MAX);
  return { total: items.length, offset, items: items.slice(offset, offset + limit) };
}

export function overview(view: BrokerView, context: BrokerContext): Record<string, unknown> {
  const topics = context.log.listTopics();
  let partitions = 0;
  let storedBytes = 0;
  for (const topic of topics) {
    const description = describeQuietly(context, topic);
    if (description === null) continue;
    partitions += description.partitions.length;
    storedBytes += topicTotals(description.partitions).sizeBytes;
  }
  const totals = { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0 };
  for (const traffic of context.metrics?.traffic.byTopic.values() ?? []) {
    totals.bytesIn += traffic.bytesIn;
    totals.messagesIn += traffic.messagesIn;
    totals.bytesOut += traffic.bytesOut;
    totals.messagesOut += Math.round(traffic.messagesOut);
  }
  return {
    version: view.version,
    phase: view.phase,
    ready: view.ready,
    nowMs: Date.now(),
    startedAtMs: view.startedAtMs,
    uptimeMs: Date.now() - view.startedAtMs,
    listeners: view.listeners,
    dataDir: view.dataDir,
    disk: { ...diskOf(view.dataDir), storedBytes },
    topics: topics.length,
    partitions,
    groups: view.groups?.groupNames().length ?? 0,
    sendPath: context.zeroCopy ? "sendfile" : "copy",
    totals,
    stats: { ...context.stats, fetchesWaiting: context.notifier.size },
  };
}

/**
 * The authorizer's word on one console API call (authorizer acl; the HTTP principal is
 * User:ANONYMOUS until HTTP authentication exists): the overview needs describe on the cluster, a
 * topic's page describe on it, its messages read on it. Lists are filtered by the callers below.
 */
export function authorizeApi(context: BrokerContext, session: Session, path: string, query: Query): void {
  if (!isAuthorizationOn(context)) return;
  if (path === "/api/overview") requireAuthorized(context, session, "describe", CLUSTER);
  else if (path.startsWith("/api/topics/")) requireAuthorized(context, session, "describe", topicResource(decodeURIComponent(path.slice("/api/topics/".length))));
  else if (path === "/api/messages") requireAuthorized(context, session, "read", topicResource(query.get("topic") ?? ""));
}

/** `names` less those the session may not describe (all of them without a session or with authorization off). */
function describable(context: BrokerContext, session: Session | undefined, type: "topic" | "group", names: string[]): string[] {
  if (session === undefined || !isAuthorizationOn(context)) return names;
  return names.filter((name) => authorize(context, session, "describe", type === "topic" ? topicResource(name) : groupResource(name)));
}

export function listTopics(context: BrokerContext, query: Query, session?: Session): Record<string, unknown> {
  const search = searchParam(query);
  const names = describable(context, session, "topic", context.log.listTopics().filter((name) => name.toLowerCase().includes(search)).sort());
  const { total, offset, items } = page(names, query);
  const topics = items.map((name) => {
    const description = describeQuietly(context, name);
    const partitions = description?.partitions ?? [];
    const traffic = context.metrics?.traffic.byTopic.get(name);
    return {
      name,
      partitions: partitions.length,
      ...topicTotals(partitions),
      logEndOffsets: partitions.map((partition) => partition.nextOffset),
      bytesIn: traffic?.bytesIn ?? 0,
      messagesIn: traffic?.messagesIn ?? 0,
      bytesOut: traffic?.bytesOut ?? 0,
      messagesOut: Math.round(traffic?.messagesOut ?? 0),
    };
  });
  return { total, offset, topics };
}

export function describeTopic(context: BrokerContext, name: string): Record<string, unknown> {
  const description = context.log.describeTopic(name); // UNKNOWN_TOPIC -> 404
  const traffic = context.metrics?.traffic.byTopic.get(name);
  return {
    name,
    config: description.config,
    partitions: description.partitions,
    ...topicTotals(description.partitions),
    bytesIn: traffic?.bytesIn ?? 0,
    messagesIn: traffic?.messagesIn ?? 0,
    bytesOut: traffic?.bytesOut ?? 0,
    messagesOut: Math.round(traffic?.messagesOut ?? 0),
  };
}

export function listGroups(view: BrokerView, context: BrokerContext, query: Query, session?: Session): Record<string, unknown> {
  const groups = view.groups;
  if (groups === null) return { total: 0, offset: 0, groups: [] };
  const search = searchParam(query);
  const names = describable(context, session, "group", groups.groupNames().filter((name) => name.toLowerCase().includes(search)).sort());
  const { total, offset, items } = page(names, query);
  return { total, offset, groups: items.map((name) => groupLag(context, groups, name)).filter((group) => group !== null) };
}

function base64Preview(bytes: Uint8Array | null): { base64: string; bytes: number; truncated: boolean } | null {
  if (bytes === null) return null;
  const shown = bytes.subarray(0, VALUE_PREVIEW_BYTES_MAX);
  return { base64: Buffer.from(shown.buffer, shown.byteOffset, shown.byteLength).toString("base64"), bytes: bytes.length, truncated: shown.length < bytes.length };
}

export function readMessages(context: BrokerContext, query: Query): Record<string, unknown> {
  const topic = query.get("topic") ?? "";
  const partitionIndex = intParam(query, "partition", 0, 0, 1_000_000);
  const limit = intParam(query, "limit", 20, 1, MESSAGES_LIMIT_MAX);
  const partition = context.log.partition(topic, partitionIndex);
  const timestampMs = query.get("timestampMs");
  let from = intParam(query, "offset", partition.logStartOffset, 0, Number.MAX_SAFE_INTEGER);
  if (timestampMs !== null && timestampMs !== "") {
    from = partition.offsetForTimestamp(intParam(query, "timestampMs", 0, 0, Number.MAX_SAFE_INTEGER)) ?? partition.nextOffset;
  }
  from = Math.min(Math.max(from, partition.logStartOffset), partition.nextOffset);
  const messages: Array<Record<string, unknown>> = [];
  let offset = from;
  while (messages.length < limit && offset < partition.nextOffset) {
    const before = messages.length;
    offset = readBatchesInto(partition, offset, limit, messages);
    if (messages.length === before) break;
  }
  return { topic, partition: partitionIndex, from, logStartOffset: partition.logStartOffset, logEndOffset: partition.nextOffset, messages };
}

/** Copies one bounded slice from `offset`, appends its messages; returns the offset after them. */
function readBatchesInto(partition: ReturnType<BrokerContext["log"]["partition"]>, offset: number, limit: number, out: Array<Record<string, unknown>>): number {
  return forEachRecordFrom(partition, offset, MESSAGES_READ_BYTES_MAX, undefined, (record) => {
    if (out.length >= limit) return;
    out.push({ offset: record.offset, timestamp: record.timestamp, key: base64Preview(record.key), value: base64Preview(record.value), headers: record.headers === null ? null : Object.keys(record.headers) });
  });
}

/** The HTTP status for a failure of an API call. */
export function statusOf(error: unknown): { status: number; body: Record<string, unknown> } {
  const failure = toRunnelError(error);
  const status = failure.code === "UNKNOWN_TOPIC" || failure.code === "UNKNOWN_PARTITION" ? 404 : failure.code === "AUTHORIZATION_FAILED" ? 403 : failure.code === "INTERNAL" ? 500 : 400;
  return { status, body: { error: { code: failure.code, message: failure.message } } };
}
