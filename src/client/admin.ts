/**
 * @module client/admin
 * Topic administration and offset lookups: thin, checked wrappers over the control-plane
 * operations of docs/protocol.md (createTopic, deleteTopic, describeTopic, createPartitions,
 * alterTopicConfig, metadata, listOffsets, fetchOffsets). Every broker error surfaces as a
 * RunnelError carrying the broker's code.
 */
import { Connection, type BrokerInfo, type ConnectionOptions } from "./connection.ts";
import { type OffsetRequest, fetchCommittedOffsets, listOffsets } from "./offsets.ts";
import { type WireMap, brokerError, isMap, readArray, readInt, readMap, readString } from "./wire.ts";

/** Per-topic options; the broker's defaults fill what is not given. */
export interface TopicConfig {
  "retention.ms"?: number;
  "retention.bytes"?: number;
  "segment.bytes"?: number;
  "segment.ms"?: number;
  "flush.messages"?: number;
  "flush.ms"?: number;
}

export interface PartitionDescription {
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  sizeBytes?: number;
  segmentCount?: number;
}

export interface TopicDescription {
  name: string;
  partitions: PartitionDescription[];
  config: Record<string, number>;
}

export interface TopicSummary {
  name: string;
  partitions: PartitionDescription[];
}

export type AdminOptions = ConnectionOptions;

export class Admin {
  readonly connection: Connection;

  constructor(options: AdminOptions = {}) {
    this.connection = new Connection(options);
  }

  /** Connects and returns the broker's version and limits. */
  broker(): Promise<BrokerInfo> {
    return this.connection.connect();
  }

  async createTopic(name: string, options: { partitions?: number; config?: TopicConfig } = {}): Promise<TopicDescription> {
    const fields: WireMap = { topic: name, partitions: options.partitions ?? 1 };
    if (options.config !== undefined) fields.config = options.config;
    return readTopic(await this.connection.request("createTopic", fields), "createTopic");
  }

  async deleteTopic(name: string): Promise<void> {
    await this.connection.request("deleteTopic", { topic: name });
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    return readTopic(await this.connection.request("describeTopic", { topic: name }), "describeTopic");
  }

  /** Grows a topic to `partitions` in total. Keys hash to different partitions afterwards. */
  async createPartitions(name: string, partitions: number): Promise<TopicDescription> {
    return readTopic(await this.connection.request("createPartitions", { topic: name, partitions }), "createPartitions");
  }

  async alterTopicConfig(name: string, config: TopicConfig): Promise<TopicDescription> {
    return readTopic(await this.connection.request("alterTopicConfig", { topic: name, config }), "alterTopicConfig");
  }

  /** Every topic with its partitions' offsets, sorted by name. */
  async listTopics(): Promise<TopicSummary[]> {
    const response = await this.connection.request("metadata", {});
    return readArray(response.topics, "metadata", "topics").map((item, index) => {
      const topic = readMap(item, "metadata", `topics[${index}]`);
      const name = readString(topic.name, "metadata", `topics[${index}].name`);
      if (topic.error !== undefined) throw brokerError(topic.error, `topic ${name}`);
      return { name, partitions: readPartitions(topic.partitions, "metadata") };
    });
  }

  /** Offsets at "earliest", "latest" or a timestamp (ms), one per request, in order. */
  listOffsets(requests: readonly OffsetRequest[]): Promise<number[]> {
    return listOffsets(this.connection, requests);
  }

  /** A group's committed offsets (-1 where none) for the given partitions. */
  async committedOffsets(group: string, partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Array<{ topic: string; partition: number; offset: number }>> {
    const committed = await fetchCommittedOffsets(this.connection, group, partitions);
    return partitions.map(({ topic, partition }) => ({ topic, partition, offset: committed.get(`${topic}\u0000${partition}`) ?? -1 }));
  }

  /** Broker counters (docs/protocol.md, stats). */
  async stats(): Promise<Record<string, number | string>> {
    const { id: _id, ...counters } = await this.connection.request("stats", {});
    return counters as Record<string, number | string>;
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}

function readTopic(response: WireMap, op: string): TopicDescription {
  const topic = readMap(response.topic, op, "topic");
  const config: Record<string, number> = {};
  if (isMap(topic.config)) {
    for (const [name, value] of Object.entries(topic.config)) if (typeof value === "number") config[name] = value;
  }
  return { name: readString(topic.name, op, "topic.name"), partitions: readPartitions(topic.partitions, op), config };
}

function readPartitions(value: unknown, op: string): PartitionDescription[] {
  return readArray(value, op, "partitions").map((item, index) => {
    const entry = readMap(item, op, `partitions[${index}]`);
    const description: PartitionDescription = {
      partition: readInt(entry.partition, op, `partitions[${index}].partition`),
      logStartOffset: readInt(entry.logStartOffset, op, `partitions[${index}].logStartOffset`),
      nextOffset: readInt(entry.nextOffset, op, `partitions[${index}].nextOffset`),
    };
    if (typeof entry.sizeBytes === "number") description.sizeBytes = entry.sizeBytes;
    if (typeof entry.segmentCount === "number") description.segmentCount = entry.segmentCount;
    return description;
  });
}
