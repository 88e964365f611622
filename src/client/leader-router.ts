/**
 * @module client/leader-router
 * Where a partition's requests go. A single broker's metadata has no `brokers`: everything goes
 * to the bootstrap connection, as always. A cluster's metadata lists every live broker and each
 * partition's `leader` (docs/protocol.md, "Clients in a cluster"): produce and fetch requests for
 * a partition then go to its leader, over one connection per broker, opened when first needed.
 *
 * The router only remembers what the last metadata answers said; the Producer and Consumer ask
 * it to refresh (`markStale` + their own metadata request, or `refresh`) when a leader answers
 * NOT_LEADER or FENCED_LEADER_EPOCH, or its connection is lost. A leader of -1 (none right now)
 * or a broker missing from the list routes to the bootstrap connection, whose answer (NOT_LEADER,
 * retriable) leads to the next refresh.
 */
import type { RunnelError } from "../errors.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { listOffsets, type OffsetRequest } from "./offsets.ts";
import { type WireMap, isMap, malformed, readArray, readInt, readMap, readString } from "./wire.ts";

/** Brokers in one metadata answer, at most (a bound on the connections a client may open). */
const CLUSTER_BROKERS_MAX = 1_000;

/**
 * How long a leader's connection may try to (re)connect before its requests fail: a leader that
 * died is looked up again (metadata from the bootstrap list) instead of being waited for for the
 * whole connectTimeoutMs. Lower when the caller's connectTimeoutMs is lower.
 */
const LEADER_CONNECT_TIMEOUT_MS = 2_000;

/** Codes after which a client asks for metadata again before its retry. */
const REROUTE_CODES: ReadonlySet<string> = new Set(["NOT_LEADER", "FENCED_LEADER_EPOCH", "BROKER_UNAVAILABLE", "UNKNOWN_PARTITION", "TIMEOUT"]);

/** True when `error` means the partition's leader may have moved (refresh metadata, then retry). */
export function meansLeaderMoved(error: RunnelError): boolean {
  return REROUTE_CODES.has(error.code);
}

export class LeaderRouter {
  private readonly brokers = new Map<number, string>();
  private readonly connections = new Map<number, Connection>();
  /** Leader broker id per partition, per topic (-1: none known). */
  private readonly leaders = new Map<string, number[]>();
  private refreshing: Promise<void> | null = null;
  private closed = false;
  /** Set when a leader may have moved; the next `refreshIfStale` asks the bootstrap broker. */
  stale = false;
  /** When the leaders were last learned (Date.now()). */
  private learnedAtMs = 0;

  /**
   * `bootstrap`: the connection metadata is asked on (and everything goes to on a single node).
   * `frameBuffers`: passed to each leader connection (the Consumer's fetch buffers).
   */
  constructor(
    private readonly options: ConnectionOptions,
    readonly bootstrap: Connection,
    private readonly frameBuffers = 0,
  ) {}

  /** True once a metadata answer listed the cluster's brokers. */
  get clustered(): boolean {
    return this.brokers.size > 0;
  }

  /** Learns brokers and leaders from a metadata answer (a single node's answer changes nothing). */
  learn(response: WireMap): void {
    if (response.brokers === undefined) return;
    const brokers = readArray(response.brokers, "metadata", "brokers");
    if (brokers.length > CLUSTER_BROKERS_MAX) throw malformed("metadata", `${brokers.length} brokers listed; at most ${CLUSTER_BROKERS_MAX}`);
    this.brokers.clear();
    for (const [index, item] of brokers.entries()) {
      const broker = readMap(item, "metadata", `brokers[${index}]`);
      const host = readString(broker.host, "metadata", `brokers[${index}].host`);
      const port = readInt(broker.port, "metadata", `brokers[${index}].port`);
      this.brokers.set(readInt(broker.brokerId, "metadata", `brokers[${index}].brokerId`), host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);
    }
    for (const [brokerId, connection] of this.connections) {
      // A broker gone from the list, or back at another address: its connection is stale.
      if (this.brokers.get(brokerId) !== connection.address) {
        connection.abort();
        this.connections.delete(brokerId);
      }
    }
    for (const [index, item] of readArray(response.topics, "metadata", "topics").entries()) {
      const topic = readMap(item, "metadata", `topics[${index}]`);
      if (typeof topic.name !== "string" || topic.partitions === undefined) continue;
      const leaders: number[] = [];
      for (const entry of readArray(topic.partitions, "metadata", `topics[${index}].partitions`)) {
        if (!isMap(entry)) continue;
        const partition = readInt(entry.partition, "metadata", `topics[${index}].partitions[].partition`);
        leaders[partition] = typeof entry.leader === "number" ? entry.leader : -1;
      }
      this.leaders.set(topic.name, leaders);
    }
    this.stale = false;
    this.learnedAtMs = Date.now();
  }

  /** The partition's leader id (-1 when none is known). */
  leaderOf(topic: string, partition: number): number {
    return this.leaders.get(topic)?.[partition] ?? -1;
  }

  /** The connection a partition's produce or fetch goes to: its leader's, else the bootstrap one. */
  connectionFor(topic: string, partition: number): Connection {
    if (this.brokers.size === 0) return this.bootstrap;
    return this.connectionTo(this.leaderOf(topic, partition));
  }

  /** The connection to broker `brokerId`, opened lazily; the bootstrap connection for an unknown one. */
  connectionTo(brokerId: number): Connection {
    const existing = this.connections.get(brokerId);
    if (existing !== undefined) return existing;
    const address = this.brokers.get(brokerId);
    if (address === undefined || this.closed) return this.bootstrap;
    const connectTimeoutMs = Math.min(this.options.connectTimeoutMs ?? LEADER_CONNECT_TIMEOUT_MS, LEADER_CONNECT_TIMEOUT_MS);
    const connection = new Connection({ ...this.options, broker: address, connectTimeoutMs }, this.frameBuffers);
    this.connections.set(brokerId, connection);
    return connection;
  }

  /**
   * Asks the bootstrap broker for `topics` when a leader may have moved, or the leaders are older
   * than `maxAgeMs` (a follower still serves reads below its high watermark, so a consumer on a
   * former leader gets no error that would tell it).
   */
  refreshIfStale(topics: readonly string[], maxAgeMs: number): Promise<void> {
    if (!this.clustered || (!this.stale && Date.now() - this.learnedAtMs <= maxAgeMs)) return Promise.resolve();
    return this.refresh(topics);
  }

  /** Asks the bootstrap broker for `topics`' metadata and learns it. */
  refresh(topics: readonly string[]): Promise<void> {
    this.refreshing ??= this.bootstrap
      .request("metadata", { topics: [...topics], autoCreate: false })
      .then((response) => this.learn(response))
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /** Every leader connection (not the bootstrap one), for closing. */
  leaderConnections(): Connection[] {
    return [...this.connections.values()];
  }

  async close(): Promise<void> {
    this.closed = true;
    const connections = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(connections.map((connection) => connection.close()));
  }

  abort(): void {
    this.closed = true;
    for (const connection of this.connections.values()) connection.abort();
    this.connections.clear();
  }
}

/**
 * listOffsets of each request at its partition's leader (a single node: the bootstrap broker);
 * offsets in request order. In a cluster a broker that is not a partition's leader answers from
 * its own replica (behind the leader), or NOT_LEADER when it holds none.
 */
export async function listOffsetsAtLeaders(router: LeaderRouter, requests: readonly OffsetRequest[]): Promise<number[]> {
  if (!router.clustered) return listOffsets(router.bootstrap, requests);
  const byLeader = new Map<number, number[]>();
  requests.forEach((request, index) => {
    const leader = router.leaderOf(request.topic, request.partition);
    const indexes = byLeader.get(leader) ?? [];
    indexes.push(index);
    byLeader.set(leader, indexes);
  });
  const offsets: number[] = new Array<number>(requests.length).fill(-1);
  await Promise.all(
    [...byLeader].map(async ([leader, indexes]) => {
      const found = await listOffsets(router.connectionTo(leader), indexes.map((index) => requests[index]!));
      indexes.forEach((index, at) => (offsets[index] = found[at]!));
    }),
  );
  return offsets;
}
