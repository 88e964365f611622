/**
 * @module client/offsets
 * The control-plane calls the consumer and admin share: partition counts (metadata),
 * offset lookups (listOffsets) and a group's committed offsets (fetchOffsets). Each checks
 * the answer and turns a per-partition error into a RunnelError naming the partition.
 */
import { RunnelError } from "../errors.ts";
import type { Connection } from "./connection.ts";
import type { GroupRequester } from "./coordinator-link.ts";
import { brokerError, malformed, readArray, readInt, readMap, readString } from "./wire.ts";

export type ListOffsetsAt = "earliest" | "latest" | number;

export interface OffsetRequest {
  topic: string;
  partition: number;
  /** "earliest", "latest", or a timestamp (ms): the first offset whose batch has a timestamp >= it. */
  at: ListOffsetsAt;
}

/** Wire bound on partitions per request (docs/protocol.md): larger lists are split. */
const PARTITIONS_PER_REQUEST_MAX = 1_000;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += PARTITIONS_PER_REQUEST_MAX) out.push(items.slice(start, start + PARTITIONS_PER_REQUEST_MAX));
  return out;
}

/**
 * Partition count of each topic; UNKNOWN_TOPIC when one does not exist (with `autoCreate`, only
 * when the broker does not auto-create topics either).
 */
export async function topicPartitionCounts(connection: Connection, topics: readonly string[], options: { autoCreate?: boolean } = {}): Promise<Map<string, number>> {
  const response = await connection.request("metadata", { topics: [...topics], autoCreate: options.autoCreate ?? false });
  const counts = new Map<string, number>();
  for (const [index, item] of readArray(response.topics, "metadata", "topics").entries()) {
    const topic = readMap(item, "metadata", `topics[${index}]`);
    const name = readString(topic.name, "metadata", `topics[${index}].name`);
    if (topic.error !== undefined) throw brokerError(topic.error, `topic ${name}`);
    counts.set(name, readArray(topic.partitions, "metadata", `topics[${index}].partitions`).length);
  }
  for (const topic of topics) {
    if (!counts.has(topic)) throw new RunnelError("UNKNOWN_TOPIC", `topic '${topic}' does not exist (runnel topics list shows the topics there are)`);
  }
  return counts;
}

/** One offset per request entry, in order (-1 when the broker has none, e.g. a timestamp past the end). */
export async function listOffsets(connection: Connection, requests: readonly OffsetRequest[]): Promise<number[]> {
  const offsets: number[] = [];
  for (const chunk of chunks(requests)) {
    const response = await connection.request("listOffsets", { partitions: chunk.map(({ topic, partition, at }) => ({ topic, partition, at })) });
    const entries = readArray(response.partitions, "listOffsets", "partitions");
    if (entries.length !== chunk.length) throw malformed("listOffsets", `${entries.length} answers for ${chunk.length} partitions`);
    for (const [index, item] of entries.entries()) {
      const entry = readMap(item, "listOffsets", `partitions[${index}]`);
      const asked = chunk[index]!;
      if (entry.error !== undefined) throw brokerError(entry.error, `listOffsets of ${asked.topic}/${asked.partition} at ${asked.at}`);
      offsets.push(entry.offset === null || entry.offset === undefined ? -1 : readInt(entry.offset, "listOffsets", `partitions[${index}].offset`));
    }
  }
  return offsets;
}

/** The group's committed offsets, keyed "topic\0partition"; -1 (or absent) when none. */
export async function fetchCommittedOffsets(connection: GroupRequester, group: string, partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, number>> {
  const committed = new Map<string, number>();
  for (const chunk of chunks(partitions)) {
    const response = await connection.request("fetchOffsets", { group, partitions: chunk.map(({ topic, partition }) => ({ topic, partition })) });
    for (const [index, item] of readArray(response.offsets, "fetchOffsets", "offsets").entries()) {
      const entry = readMap(item, "fetchOffsets", `offsets[${index}]`);
      if (entry.error !== undefined) throw brokerError(entry.error, `fetchOffsets of ${String(entry.topic)}/${String(entry.partition)} for group ${group}`);
      const topic = readString(entry.topic, "fetchOffsets", `offsets[${index}].topic`);
      const partition = readInt(entry.partition, "fetchOffsets", `offsets[${index}].partition`);
      committed.set(`${topic}\u0000${partition}`, readInt(entry.offset, "fetchOffsets", `offsets[${index}].offset`));
    }
  }
  return committed;
}
