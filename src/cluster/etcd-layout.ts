/**
 * @module cluster/etcd-layout
 * Where a cluster keeps its state in etcd, and the JSON records stored there (zod-checked on
 * read: a record some other program wrote wrong is skipped and logged, never trusted):
 *
 *   /runnel/<cluster>/brokers/<id>                        BrokerRecord, on that broker's lease
 *   /runnel/<cluster>/controller                          ControllerRecord, on the controller's lease
 *   /runnel/<cluster>/topics/<topic>                      TopicRecord
 *   /runnel/<cluster>/topics/<topic>/partitions/<n>       PartitionRecord
 *   /runnel/<cluster>/producer-ids                        ProducerIdsRecord (cluster-wide id counter)
 *   /runnel/<cluster>/incarnations/<id>                   {incarnation}: the disk etcd knows for a broker id (cluster/incarnation.ts)
 *   /runnel/<cluster>/elections/<id>                      ElectionRecord, on its requester's lease
 *
 * Topic names cannot contain "/", so every key parses back unambiguously.
 */
import { z } from "zod";
import { RunnelError } from "../errors.ts";
import type { BrokerEndpoint, PartitionState } from "./cluster-view.ts";

/** Cluster names: like topic names, and short (they are in every key). */
export const CLUSTER_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,64}$/;
export const BROKER_ID_MAX = 1_000_000;

const brokerId = z.int().min(0).max(BROKER_ID_MAX);

export const brokerRecordSchema = z.object({
  brokerId,
  host: z.string().min(1).max(255),
  port: z.int().min(0).max(65_535),
  kafkaPort: z.int().min(0).max(65_535).nullable(),
  /** In controlled shutdown: the controller moves its leaderships and ISR seats away. */
  draining: z.boolean().optional(),
});
export type BrokerRecord = z.infer<typeof brokerRecordSchema>;

export const controllerRecordSchema = z.object({ brokerId });

export const topicRecordSchema = z.object({
  partitions: z.int().min(1),
  replicationFactor: z.int().min(1),
  minInsyncReplicas: z.int().min(1),
  /** Topic config overrides, as the native createTopic request gave them. */
  config: z.record(z.string(), z.unknown()).default({}),
});
export type TopicRecord = z.infer<typeof topicRecordSchema>;

export const partitionRecordSchema = z.object({
  leader: z.int().min(-1).max(BROKER_ID_MAX),
  leaderEpoch: z.int().min(0),
  isr: z.array(brokerId).min(1),
  replicas: z.array(brokerId).min(1),
  /** A reassignment in progress (cluster/reassignment.ts); absent in records written before it existed. */
  addingReplicas: z.array(brokerId).default([]),
  removingReplicas: z.array(brokerId).default([]),
});
export type PartitionRecord = z.infer<typeof partitionRecordSchema>;

/** The cluster-wide producer id counter: ids below `reservedEnd` were handed to some broker. */
export const producerIdsRecordSchema = z.object({ reservedEnd: z.int().min(0).max(Number.MAX_SAFE_INTEGER) });
export type ProducerIdsRecord = z.infer<typeof producerIdsRecordSchema>;

/** A preferred-leader election request: one topic's partitions (all when absent), or every topic. */
export const electionRecordSchema = z.object({
  topic: z.string().min(1).max(255).optional(),
  partitions: z.array(z.int().min(0)).max(100_000).optional(),
});
export type ElectionRecord = z.infer<typeof electionRecordSchema>;

export type ParsedKey =
  | { kind: "broker"; brokerId: number }
  | { kind: "producerIds" }
  | { kind: "election"; id: string }
  | { kind: "controller" }
  | { kind: "topic"; topic: string }
  | { kind: "partition"; topic: string; partition: number }
  | { kind: "unknown" };

export class EtcdLayout {
  readonly prefix: string;

  constructor(readonly cluster: string) {
    if (!CLUSTER_NAME_PATTERN.test(cluster)) throw new RunnelError("INVALID_CONFIG", `cluster name ${JSON.stringify(cluster)} must be 1-64 characters of [a-zA-Z0-9._-]`);
    this.prefix = `/runnel/${cluster}/`;
  }

  get brokersPrefix(): string {
    return `${this.prefix}brokers/`;
  }

  brokerKey(id: number): string {
    return `${this.brokersPrefix}${id}`;
  }

  incarnationKey(id: number): string {
    return `${this.prefix}incarnations/${id}`;
  }

  get controllerKey(): string {
    return `${this.prefix}controller`;
  }

  get producerIdsKey(): string {
    return `${this.prefix}producer-ids`;
  }

  get electionsPrefix(): string {
    return `${this.prefix}elections/`;
  }

  electionKey(id: string): string {
    return `${this.electionsPrefix}${id}`;
  }

  topicKey(topic: string): string {
    return `${this.prefix}topics/${topic}`;
  }

  partitionKey(topic: string, partition: number): string {
    return `${this.prefix}topics/${topic}/partitions/${partition}`;
  }

  parse(key: string): ParsedKey {
    if (!key.startsWith(this.prefix)) return { kind: "unknown" };
    const parts = key.slice(this.prefix.length).split("/");
    if (parts.length === 1 && parts[0] === "controller") return { kind: "controller" };
    if (parts.length === 1 && parts[0] === "producer-ids") return { kind: "producerIds" };
    if (parts.length === 2 && parts[0] === "brokers" && /^\d+$/.test(parts[1] ?? "")) return { kind: "broker", brokerId: Number(parts[1]) };
    if (parts.length === 2 && parts[0] === "elections" && (parts[1] ?? "") !== "") return { kind: "election", id: parts[1] as string };
    if (parts[0] !== "topics" || (parts[1] ?? "") === "") return { kind: "unknown" };
    const topic = parts[1] as string;
    if (parts.length === 2) return { kind: "topic", topic };
    if (parts.length === 4 && parts[2] === "partitions" && /^\d+$/.test(parts[3] ?? "")) return { kind: "partition", topic, partition: Number(parts[3]) };
    return { kind: "unknown" };
  }
}

export function encodePartition(state: Omit<PartitionState, "version">): string {
  const record: PartitionRecord = {
    leader: state.leader,
    leaderEpoch: state.leaderEpoch,
    isr: [...state.isr],
    replicas: [...state.replicas],
    addingReplicas: [...(state.addingReplicas ?? [])],
    removingReplicas: [...(state.removingReplicas ?? [])],
  };
  // A partition not being moved is stored as before reassignments existed.
  if (record.addingReplicas.length === 0 && record.removingReplicas.length === 0) {
    const { addingReplicas: _adding, removingReplicas: _removing, ...plain } = record;
    return JSON.stringify(plain);
  }
  return JSON.stringify(record);
}

export function encodeBroker(endpoint: BrokerEndpoint, draining = false): string {
  const record: BrokerRecord = { brokerId: endpoint.brokerId, host: endpoint.host, port: endpoint.port, kafkaPort: endpoint.kafkaPort, ...(draining ? { draining } : {}) };
  return JSON.stringify(record);
}

/** Parses a stored JSON record; undefined when it is not valid JSON of that shape. */
export function decodeRecord<T>(schema: z.ZodType<T>, value: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
