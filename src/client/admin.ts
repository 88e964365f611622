/**
 * @module client/admin
 * Topic administration and offset lookups: thin, checked wrappers over the control-plane
 * operations of docs/protocol.md (createTopic, deleteTopic, describeTopic, createPartitions,
 * alterTopicConfig, metadata, listOffsets, fetchOffsets) and consumer groups (listGroups,
 * describeGroup, deleteGroup, an unfenced commitOffsets). Every broker error surfaces as a
 * RunnelError carrying the broker's code.
 * A group's requests (describeGroup, deleteGroup, fetchOffsets, commitOffsets) go to the group's
 * coordinator (client/coordinator-link.ts); listGroups answers the groups of the broker asked.
 */
import { CoordinatorLink } from "./coordinator-link.ts";
import { Connection, type BrokerInfo, type ConnectionOptions } from "./connection.ts";
import { deriveVerifier, SCRAM_ITERATIONS_DEFAULT, SCRAM_MECHANISMS } from "../security/scram.ts";
import { type OffsetRequest, fetchCommittedOffsets, listOffsets } from "./offsets.ts";
import { LeaderRouter } from "./leader-router.ts";
import { RunnelError } from "../errors.ts";
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
  /** Cluster mode: the partition's leader (-1: none now), its epoch, replicas and in-sync replicas. */
  leader?: number;
  leaderEpoch?: number;
  replicas?: number[];
  isr?: number[];
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

/** A consumer group as listGroups shows it (docs/protocol.md, "Consumer groups"). */
export interface GroupSummary {
  group: string;
  /** "native" or "classic"; absent for a group with committed offsets and no members. */
  kind?: string;
  /** "empty", "reconciling" or "stable". */
  state: string;
  generation: number;
  members: number;
}

export interface GroupTopicPartitions {
  topic: string;
  partitions: number[];
}

export interface GroupMemberDescription {
  memberId: string;
  clientId: string;
  topics: string[];
  assigned: GroupTopicPartitions[];
  revoking: GroupTopicPartitions[];
  pending: GroupTopicPartitions[];
}

export interface GroupDescription {
  group: string;
  kind?: string;
  state: string;
  generation: number;
  assignor?: string;
  members: GroupMemberDescription[];
}

export type AdminOptions = ConnectionOptions;

/** describeTopic retries a retriable answer within this bound, pausing 20, 40... up to 500 ms. */
const DESCRIBE_RETRY_BOUND_MS = 5_000;
const DESCRIBE_BACKOFF_FIRST_MS = 20;
const DESCRIBE_BACKOFF_MAX_MS = 500;

export class Admin {
  readonly connection: Connection;
  private readonly router: LeaderRouter;

  constructor(private readonly options: AdminOptions = {}) {
    this.connection = new Connection(options);
    this.router = new LeaderRouter(options, this.connection);
  }

  /** Connects and returns the broker's version and limits. */
  broker(): Promise<BrokerInfo> {
    return this.connection.connect();
  }

  /** `replicationFactor` and `minInsyncReplicas` (default 1) need a broker in cluster mode. */
  async createTopic(name: string, options: { partitions?: number; config?: TopicConfig; replicationFactor?: number; minInsyncReplicas?: number } = {}): Promise<TopicDescription> {
    const fields: WireMap = { topic: name, partitions: options.partitions ?? 1 };
    if (options.config !== undefined) fields.config = options.config;
    if (options.replicationFactor !== undefined) fields.replicationFactor = options.replicationFactor;
    if (options.minInsyncReplicas !== undefined) fields.minInsyncReplicas = options.minInsyncReplicas;
    return readTopic(await this.connection.request("createTopic", fields), "createTopic");
  }

  async deleteTopic(name: string): Promise<void> {
    await this.connection.request("deleteTopic", { topic: name });
  }

  /**
   * In a cluster the description comes from the leader of partition 0 (the broker asked may hold
   * no replica of the topic) and each partition also shows its leader, epoch, replicas and ISR.
   * A retriable answer (a replica whose copy of a just-created topic is not ready: NOT_LEADER, a
   * leader changing) is asked again, metadata first, with a growing pause, within a bound.
   */
  async describeTopic(name: string): Promise<TopicDescription> {
    const deadline = Date.now() + DESCRIBE_RETRY_BOUND_MS;
    for (let backoffMs = DESCRIBE_BACKOFF_FIRST_MS; ; backoffMs = Math.min(backoffMs * 2, DESCRIBE_BACKOFF_MAX_MS)) {
      try {
        return await this.describeOnce(name);
      } catch (error) {
        if (!(error instanceof RunnelError) || !error.retriable || Date.now() + backoffMs > deadline) throw error;
        await Bun.sleep(backoffMs);
      }
    }
  }

  private async describeOnce(name: string): Promise<TopicDescription> {
    const metadata = await this.connection.request("metadata", { topics: [name] });
    this.router.learn(metadata);
    const connection = this.router.clustered ? this.router.connectionTo(this.router.leaderOf(name, 0)) : this.connection;
    const topic = readTopic(await connection.request("describeTopic", { topic: name }), "describeTopic");
    if (this.router.clustered) addLeaders(topic, metadata);
    return topic;
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
    const committed = await this.atCoordinator(group, (coordinator) => fetchCommittedOffsets(coordinator, group, partitions));
    return partitions.map(({ topic, partition }) => ({ topic, partition, offset: committed.get(`${topic}\u0000${partition}`) ?? -1 }));
  }

  /** Groups with members or committed offsets, sorted by name. */
  async listGroups(): Promise<GroupSummary[]> {
    const response = await this.connection.request("listGroups", {});
    return readArray(response.groups, "listGroups", "groups").map((item, index) => {
      const entry = readMap(item, "listGroups", `groups[${index}]`);
      const summary: GroupSummary = {
        group: readString(entry.group, "listGroups", `groups[${index}].group`),
        state: readString(entry.state, "listGroups", `groups[${index}].state`),
        generation: readInt(entry.generation, "listGroups", `groups[${index}].generation`),
        members: readInt(entry.members, "listGroups", `groups[${index}].members`),
      };
      if (typeof entry.kind === "string") summary.kind = entry.kind;
      return summary;
    });
  }

  /** A group's members and what each holds, gives up and waits for (state "empty" and no members for an unknown group). */
  async describeGroup(group: string): Promise<GroupDescription> {
    const op = "describeGroup";
    const response = await this.atCoordinator(group, (coordinator) => coordinator.request(op, { group }));
    const description: GroupDescription = {
      group: readString(response.group, op, "group"),
      state: readString(response.state, op, "state"),
      generation: readInt(response.generation, op, "generation"),
      members: readArray(response.members, op, "members").map((item, index) => {
        const member = readMap(item, op, `members[${index}]`);
        return {
          memberId: readString(member.memberId, op, `members[${index}].memberId`),
          clientId: readString(member.clientId, op, `members[${index}].clientId`),
          topics: readArray(member.topics, op, `members[${index}].topics`).map((topic, at) => readString(topic, op, `members[${index}].topics[${at}]`)),
          assigned: readTopicPartitions(member.assigned, op, `members[${index}].assigned`),
          revoking: readTopicPartitions(member.revoking, op, `members[${index}].revoking`),
          pending: readTopicPartitions(member.pending, op, `members[${index}].pending`),
        };
      }),
    };
    if (typeof response.kind === "string") description.kind = response.kind;
    if (typeof response.assignor === "string") description.assignor = response.assignor;
    return description;
  }

  /**
   * Adds a user or changes its password (super-users only). The SCRAM verifiers are derived here:
   * the password never leaves this process.
   */
  async upsertUser(user: string, password: string, options: { iterations?: number } = {}): Promise<{ created: boolean }> {
    const iterations = options.iterations ?? SCRAM_ITERATIONS_DEFAULT;
    const credentials = SCRAM_MECHANISMS.map((mechanism) => ({ mechanism, ...deriveVerifier(mechanism, password, iterations) }));
    const response = await this.connection.request("createUser", { user, credentials });
    return { created: response.created === true };
  }

  /** Removes a user (super-users only); UNKNOWN_USER when there is none. */
  async deleteUser(user: string): Promise<void> {
    await this.connection.request("deleteUser", { user });
  }

  /** The users and their SCRAM mechanisms, sorted by name (super-users only). */
  async listUsers(): Promise<Array<{ name: string; mechanisms: Array<{ mechanism: string; iterations: number }> }>> {
    const op = "listUsers";
    const response = await this.connection.request(op, {});
    return readArray(response.users, op, "users").map((item, index) => {
      const entry = readMap(item, op, `users[${index}]`);
      return {
        name: readString(entry.name, op, `users[${index}].name`),
        mechanisms: readArray(entry.mechanisms, op, `users[${index}].mechanisms`).map((value, at) => {
          const mechanism = readMap(value, op, `users[${index}].mechanisms[${at}]`);
          return { mechanism: readString(mechanism.mechanism, op, "mechanism"), iterations: readInt(mechanism.iterations, op, "iterations") };
        }),
      };
    });
  }

  /** Deletes a group without members and its committed offsets (GROUP_NOT_EMPTY while it has members). */
  async deleteGroup(group: string): Promise<void> {
    await this.atCoordinator(group, (coordinator) => coordinator.request("deleteGroup", { group }));
  }

  /** Every offset the group has committed, in no particular order. */
  async groupOffsets(group: string): Promise<Array<{ topic: string; partition: number; offset: number }>> {
    const response = await this.atCoordinator(group, (coordinator) => coordinator.request("fetchOffsets", { group }));
    return readArray(response.offsets, "fetchOffsets", "offsets").map((item, index) => {
      const entry = readMap(item, "fetchOffsets", `offsets[${index}]`);
      return {
        topic: readString(entry.topic, "fetchOffsets", `offsets[${index}].topic`),
        partition: readInt(entry.partition, "fetchOffsets", `offsets[${index}].partition`),
        offset: readInt(entry.offset, "fetchOffsets", `offsets[${index}].offset`),
      };
    });
  }

  /** Commits offsets for a group as a tool (not fenced: no member id), e.g. to reset them. */
  async commitOffsets(group: string, offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>): Promise<void> {
    const response = await this.atCoordinator(group, (coordinator) => coordinator.request("commitOffsets", { group, offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })) }));
    for (const [index, item] of readArray(response.results, "commitOffsets", "results").entries()) {
      const result = readMap(item, "commitOffsets", `results[${index}]`);
      if (result.error !== undefined) throw brokerError(result.error, `commit of ${String(result.topic)}/${String(result.partition)} for group ${group}`);
    }
  }

  /** Broker counters (docs/protocol.md, stats). */
  async stats(): Promise<Record<string, number | string>> {
    const { id: _id, ...counters } = await this.connection.request("stats", {});
    return counters as Record<string, number | string>;
  }

  close(): Promise<void> {
    return Promise.all([this.router.close(), this.connection.close()]).then(() => undefined);
  }

  /** Runs a group's request at its coordinator (a cluster's; a single node is its own), through a link made for the call. */
  private async atCoordinator<T>(group: string, call: (coordinator: CoordinatorLink) => Promise<T>): Promise<T> {
    const coordinator = new CoordinatorLink(this.connection, this.options, group);
    try {
      return await call(coordinator);
    } finally {
      await coordinator.close();
    }
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

function readTopicPartitions(value: unknown, op: string, field: string): GroupTopicPartitions[] {
  return readArray(value, op, field).map((item, index) => {
    const entry = readMap(item, op, `${field}[${index}]`);
    return {
      topic: readString(entry.topic, op, `${field}[${index}].topic`),
      partitions: readArray(entry.partitions, op, `${field}[${index}].partitions`).map((partition, at) => readInt(partition, op, `${field}[${index}].partitions[${at}]`)),
    };
  });
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

/** Copies each partition's leader, epoch, replicas and ISR from a cluster's metadata answer. */
function addLeaders(topic: TopicDescription, metadata: WireMap): void {
  const entry = readArray(metadata.topics, "metadata", "topics").find((item) => isMap(item) && item.name === topic.name);
  if (!isMap(entry) || entry.partitions === undefined) return;
  const states = new Map<number, WireMap>();
  for (const item of readArray(entry.partitions, "metadata", "partitions")) if (isMap(item) && typeof item.partition === "number") states.set(item.partition, item);
  for (const partition of topic.partitions) {
    const state = states.get(partition.partition);
    if (state === undefined) continue;
    if (typeof state.leader === "number") partition.leader = state.leader;
    if (typeof state.leaderEpoch === "number") partition.leaderEpoch = state.leaderEpoch;
    if (Array.isArray(state.replicas)) partition.replicas = state.replicas.filter((id): id is number => typeof id === "number");
    if (Array.isArray(state.isr)) partition.isr = state.isr.filter((id): id is number => typeof id === "number");
  }
}
