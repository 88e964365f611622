/**
 * @module server/context
 * What every request handler may use: the configuration, the log, the consumer-group offset
 * store, the long-poll notifier, the counters, the memory budget and the logger; plus the reply shapes handlers
 * return to the connection, which owns the bytes on the wire.
 */
import type { BrokerMetrics } from "../broker/metrics.ts";
import type { GroupCoordinator } from "../broker/group-coordinator.ts";
import type { HeartbeatWaits } from "../broker/heartbeat-waits.ts";
import type { Config } from "../config.ts";
import { encodeResponseFrame } from "../protocol/messages.ts";
import type { LogManager, ReadSlice } from "../log/api.ts";
import type { Logger } from "../logger.ts";
import type { MemoryBudget } from "./memory-budget.ts";
import type { ReadTurns } from "./read-turns.ts";
import type { CreateQuota } from "./create-quota.ts";
import type { CommittedOffsets } from "../broker/offset-store.ts";
import type { PartitionNotifier } from "../broker/partition-notifier.ts";
import type { ProducerIdAllocator } from "../broker/producer-ids.ts";
import type { BrokerStats } from "./stats.ts";
import type { ClusterView } from "../cluster/cluster-view.ts";
import type { AclStore } from "../security/acl-store.ts";
import type { Authenticator } from "../security/authenticator.ts";
import type { ReplicaManager } from "../cluster/replica-manager.ts";
import type { ReplicatedOffsets } from "../cluster/replicated-offsets.ts";

export interface BrokerContext {
  readonly config: Config;
  readonly log: LogManager;
  /** Committed offsets: the local offset store on a single node; in a cluster, `__consumer_offsets` (cluster/replicated-offsets.ts) once joined. */
  readonly offsets: CommittedOffsets;
  /** Cluster mode, once joined: where each group's coordinator is (findCoordinator); absent or null on a single node. */
  readonly coordinators?: ReplicatedOffsets | null;
  /** The native listener's advertised address (findCoordinator's answer on a single node). */
  readonly advertised?: { host: string; port: number };
  readonly notifier: PartitionNotifier;
  /** Idempotent-producer ids (initProducer). */
  readonly producerIds: ProducerIdAllocator;
  /** Consumer-group membership and assignment (joinGroup, heartbeat, commit fencing). */
  readonly groups: GroupCoordinator;
  /** Heartbeats parked until their member has news. */
  readonly heartbeatWaits: HeartbeatWaits;
  readonly stats: BrokerStats;
  /** Broker-wide budget for partial frames and queued answers (bufferedBytesMax). */
  readonly memory: MemoryBudget;
  /** Fair turns for connections sending large frames (server/read-turns.ts). */
  readonly readTurns: ReadTurns;
  readonly logger: Logger;
  readonly startedAtMs: number;
  /** sendfile is on (config.zeroCopy and libc.sendfile available). */
  readonly zeroCopy: boolean;
  /** True once shutdown began: new requests get SHUTTING_DOWN, long polls end early. */
  readonly isShuttingDown: () => boolean;
  /** Counters and histograms the data path feeds (broker/metrics.ts); null when metrics are off. */
  readonly metrics: BrokerMetrics | null;
  /** The broker-wide rate of partition creations (partitionCreatesPerSecond). */
  readonly createQuota: CreateQuota;
  /** The cluster this broker belongs to (cluster/cluster-view.ts); null for a single node. */
  readonly cluster: ClusterView | null;
  /** The ACL (security/acl-store.ts) the authorizer checks requests against when `authorizer` is "acl". */
  readonly acls: AclStore;
  /** Authentication (security/authenticator.ts): whether it is required, SCRAM, the users, failure limits. */
  readonly authenticator: Authenticator;
  /**
   * The data plane over `cluster` (cluster/replica-manager.ts: leader epochs, follower fetching,
   * high watermark, replicated acks); absent or null on a single node.
   */
  readonly replication?: ReplicaManager | null;
}

/** A whole response frame, already encoded. */
export interface FrameReply {
  kind: "frame";
  frame: Uint8Array;
}

/** A fetch response: the encoded head, then each slice's file bytes, in order. */
export interface FetchReply {
  kind: "fetch";
  head: Uint8Array;
  slices: ReadSlice[];
}

/** No response at all (produce with durability none). */
export interface NoReply {
  kind: "none";
}

export type Reply = FrameReply | FetchReply | NoReply;

export const NO_REPLY: NoReply = { kind: "none" };

/**
 * Replies of requests whose *application* is asynchronous (creating or deleting a topic), with
 * the promise that settles once it is applied. The connection applies no later request of its
 * own until then, so requests on one connection take effect in order. Replies that are merely
 * answered later (a long-poll fetch, a synced produce) are not here and hold nothing up.
 */
const applications = new WeakMap<Promise<Reply>, Promise<unknown>>();

/** Marks `reply` as applied only when `applied` settles (by default: when it does). */
export function appliedLater(reply: Promise<Reply>, applied: Promise<unknown> = reply): Promise<Reply> {
  applications.set(reply, applied);
  return reply;
}

/** The promise `reply` is applied by, when its application is asynchronous; else undefined. */
export function applicationOf(reply: Promise<Reply>): Promise<unknown> | undefined {
  return applications.get(reply);
}

/** Replies after which the connection closes (an address throttled for failed authentications). */
const closing = new WeakSet<Reply>();

/** Marks `reply` as the connection's last: it is sent, then the connection closes. */
export function closesConnection(reply: Reply): Reply {
  closing.add(reply);
  return reply;
}

export function isClosingReply(reply: Reply): boolean {
  return closing.has(reply);
}

/** Releases the slices a reply holds (when it will never be sent). */
export function releaseReply(reply: Reply): void {
  if (reply.kind === "fetch") for (const slice of reply.slices) slice.release();
}

/** A response frame `{id, ...body}`. */
export function frameReply(id: number, body: Record<string, unknown>): FrameReply {
  return { kind: "frame", frame: encodeResponseFrame({ id, ...body }) };
}
