/**
 * Test support for the end-to-end fault tests (issue 14, "Proof"): etcd and three real
 * `runnel serve --cluster` processes; a workload of one idempotent producer routing by hand to
 * each partition's leader (native `metadata`, re-read on NOT_LEADER or a lost connection) with
 * unique values and `replicated` durability, every answer recorded as ok / failed / unknown; a
 * consumer reading each partition's leader during the run; and the final audit over every
 * replica's log read from disk after a clean stop.
 *
 * A failed or unknown produce is retried with the same batch (same producer id and sequence), so
 * an idempotent broker must store it once whatever happened to the first try.
 *
 * Environment: RUNNEL_FAULT_SEED picks the seeded fault times (the tests print it);
 * RUNNEL_FAULT_LOGS=<file> writes every broker's last log lines there when the replicas fail to
 * converge.
 */
import * as fs from "node:fs";
import { Connection } from "../../src/client/connection.ts";
import { decodeRecords, encodeBatch, scanBatches, verifyBatch } from "../../src/format/record-batch.ts";
import { openLogManager } from "../../src/log/log-manager.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { type BrokerProcess, spawnBroker, waitFor } from "../durability/broker-process.ts";
import { tempDir } from "../server/helpers.ts";
import { type EtcdServer, startEtcd, TcpProxy } from "./etcd-harness.ts";
import { logBytes } from "./harness.ts";

export const FAULT_LEASE_TTL_MS = 2000;
export const FAULT_FENCE_MARGIN_MS = 500;

interface Node {
  readonly brokerId: number;
  readonly dataDir: string;
  /** The broker's own link to etcd (cut it to isolate the broker from etcd only). */
  readonly etcdLink: TcpProxy;
  /**
   * With `brokerLinks`: the proxy in front of the broker's native port, the address it
   * advertises (`--advertised-port`), so other brokers' fetchers and the tests' clients all pass
   * through it; its links are tagged by client id, so one peer's can be cut (null without).
   */
  readonly link: TcpProxy | null;
  process: BrokerProcess | null;
}

export interface ClusterOptions {
  /** A cuttable proxy in front of each broker (network cuts between brokers, and to clients). */
  brokerLinks?: boolean;
  /** More `runnel serve` flags for every broker. */
  args?: readonly string[];
}

export interface PartitionMeta {
  partition: number;
  leader: number;
  leaderEpoch: number;
  isr: number[];
  replicas: number[];
  nextOffset: number;
}

/** A tiny seeded generator (mulberry32): fault times are reproducible from the printed seed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

export class ProcessCluster implements AsyncDisposable {
  readonly nodes: Node[] = [];
  private readonly connections = new Map<number, Connection>();

  /** `lease: "defaults"` runs the brokers with the default clusterLeaseTtlMs / clusterFenceMarginMs (the figures). */
  private constructor(
    readonly etcd: EtcdServer,
    readonly name: string,
    private readonly lease: "short" | "defaults",
    private readonly options: ClusterOptions,
  ) {}

  static async start(name: string, size = 3, lease: "short" | "defaults" = "short", options: ClusterOptions = {}): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(await startEtcd(), name, lease, options);
    for (let brokerId = 1; brokerId <= size; brokerId++) {
      // The link's target is the broker's port, known once it listens (startBroker).
      const link = options.brokerLinks === true ? new TcpProxy(0, { tagLinks: true }) : null;
      cluster.nodes.push({ brokerId, dataDir: tempDir(`runnel-fault-${brokerId}-`), etcdLink: new TcpProxy(cluster.etcd.clientPort), link, process: null });
    }
    try {
      await Promise.all(cluster.nodes.map((node) => cluster.startBroker(node.brokerId)));
      await waitFor(async () => (await cluster.liveBrokerIds()).length === size, 20_000, `${size} live brokers`);
    } catch (error) {
      // Nothing may outlive a failed start: etcd, brokers and directories go.
      await cluster[Symbol.asyncDispose]();
      throw error;
    }
    return cluster;
  }

  node(brokerId: number): Node {
    const node = this.nodes.find((candidate) => candidate.brokerId === brokerId);
    if (node === undefined) throw new Error(`no broker ${brokerId}`);
    return node;
  }

  async startBroker(brokerId: number): Promise<void> {
    const node = this.node(brokerId);
    const url = `etcd://127.0.0.1:${node.etcdLink.port}/${this.name}`;
    const lease = this.lease === "short" ? ["--cluster-lease-ttl-ms", String(FAULT_LEASE_TTL_MS), "--cluster-fence-margin-ms", String(FAULT_FENCE_MARGIN_MS)] : [];
    const advertised = node.link === null ? [] : ["--advertised-port", String(node.link.port)];
    const args = ["--cluster", url, "--broker-id", String(brokerId), ...lease, ...advertised, ...(this.options.args ?? [])];
    // A restarted broker's id may still be on its old lease for up to a TTL: retry a bounded time.
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        node.process = await spawnBroker(node.dataDir, 0, args);
        node.link?.retarget(node.process.port);
        break;
      } catch (error) {
        if (Date.now() > deadline || !String(error).includes("BROKER_ID_IN_USE")) throw error;
        await Bun.sleep(250);
      }
    }
    this.connections.get(brokerId)?.abort();
    this.connections.delete(brokerId);
  }

  async kill(brokerId: number): Promise<void> {
    await this.node(brokerId).process?.kill();
    this.node(brokerId).process = null;
  }

  /** SIGTERM (a clean stop) and wait for the exit: its exit code and its last log lines. */
  async terminate(brokerId: number): Promise<{ code: number; lines: string[] }> {
    const node = this.node(brokerId);
    const running = node.process;
    if (running === null) throw new Error(`broker ${brokerId} is down`);
    const code = await running.stop();
    node.process = null;
    this.connections.get(brokerId)?.abort();
    this.connections.delete(brokerId);
    return { code, lines: running.lines };
  }

  signal(brokerId: number, signal: "SIGSTOP" | "SIGCONT"): void {
    this.node(brokerId).process?.process.kill(signal);
  }

  /** A connection to a live broker (one per broker, replaced when it restarts). */
  connection(brokerId: number): Connection {
    const existing = this.connections.get(brokerId);
    if (existing !== undefined) return existing;
    const process = this.node(brokerId).process;
    if (process === null) throw new Error(`broker ${brokerId} is down`);
    const port = this.node(brokerId).link?.port ?? process.port;
    const connection = new Connection({ broker: `127.0.0.1:${port}`, requestTimeoutMs: 5000, connectTimeoutMs: 1000 });
    this.connections.set(brokerId, connection);
    return connection;
  }

  /** A new connection to the broker's own port, past its link (the caller aborts it). */
  directConnection(brokerId: number): Connection {
    const process = this.node(brokerId).process;
    if (process === null) throw new Error(`broker ${brokerId} is down`);
    return new Connection({ broker: `127.0.0.1:${process.port}`, requestTimeoutMs: 5000, connectTimeoutMs: 1000 });
  }

  private linkOf(brokerId: number): TcpProxy {
    const link = this.node(brokerId).link;
    if (link === null) throw new Error("start the cluster with brokerLinks to cut links between brokers");
    return link;
  }

  /** Cuts `brokerId` off from every other broker and every client; its etcd link stays. */
  isolate(brokerId: number): void {
    this.linkOf(brokerId).cut();
    for (const node of this.nodes) if (node.brokerId !== brokerId) this.linkOf(node.brokerId).cutTag(`replica-${brokerId}`);
  }

  /** Cuts the links between two brokers (each one's fetches from the other), nothing else. */
  cutBetween(a: number, b: number): void {
    this.linkOf(a).cutTag(`replica-${b}`);
    this.linkOf(b).cutTag(`replica-${a}`);
  }

  /** Heals every cut between brokers and to clients. */
  healLinks(): void {
    for (const node of this.nodes) node.link?.heal();
  }

  /** Brokers whose process runs (not necessarily reachable: one may be stopped). */
  running(): number[] {
    return this.nodes.filter((node) => node.process !== null).map((node) => node.brokerId);
  }

  /** The native metadata of `topic` from the first running broker that answers. */
  async metadata(topic: string, exclude: readonly number[] = []): Promise<{ brokers: number[]; partitions: PartitionMeta[] } | null> {
    for (const brokerId of this.running()) {
      if (exclude.includes(brokerId)) continue;
      try {
        const answer = await this.connection(brokerId).request("metadata", { topics: [topic] }, 2000);
        const entry = (answer.topics as WireMap[])[0];
        const partitions = (entry?.partitions as PartitionMeta[] | undefined) ?? [];
        return { brokers: ((answer.brokers as WireMap[] | undefined) ?? []).map((broker) => broker.brokerId as number), partitions };
      } catch {
        // next broker
      }
    }
    return null;
  }

  async liveBrokerIds(): Promise<number[]> {
    return (await this.metadata("-none-"))?.brokers ?? [];
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    const first = this.running()[0] as number;
    await this.connection(first).request("createTopic", { topic, partitions, replicationFactor: this.nodes.length, minInsyncReplicas: 2 });
    await this.waitConverged(topic, partitions, 20_000);
  }

  /** Every partition has a live leader, a full ISR and the same log end on every replica. */
  async waitConverged(topic: string, partitions: number, timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        const ends = new Map<number, number>();
        for (const brokerId of this.running()) {
          let answer: WireMap;
          try {
            answer = await this.connection(brokerId).request("metadata", { topics: [topic] }, 2000);
          } catch {
            return false;
          }
          const entry = (answer.topics as WireMap[])[0];
          const metas = (entry?.partitions as PartitionMeta[] | undefined) ?? [];
          if (metas.length !== partitions) return false;
          for (const meta of metas) {
            if (meta.leader < 0 || meta.isr.length !== this.nodes.length) return false;
            const seen = ends.get(meta.partition);
            if (seen !== undefined && seen !== meta.nextOffset) return false;
            ends.set(meta.partition, meta.nextOffset);
          }
        }
        return true;
      },
      timeoutMs,
      `${topic}: every partition led, ISR full, replicas at one log end`,
    ).catch(async (error) => {
      const views = await Promise.all(this.running().map(async (brokerId) => `broker ${brokerId}: ${JSON.stringify((await this.metadata(topic, this.running().filter((other) => other !== brokerId)))?.partitions ?? null)}`));
      const logs = this.nodes.map((node) => `broker ${node.brokerId} log:\n${(node.process?.lines ?? []).slice(-40).join("\n")}`);
      if (process.env.RUNNEL_FAULT_LOGS !== undefined) fs.writeFileSync(process.env.RUNNEL_FAULT_LOGS, logs.join("\n\n"));
      throw new Error(`${String(error)}; ${views.join("; ")}`);
    });
  }

  /** Stops every broker cleanly (SIGTERM), keeping the data directories. */
  async stopAll(): Promise<void> {
    for (const connection of this.connections.values()) connection.abort();
    this.connections.clear();
    for (const node of this.nodes) {
      await node.process?.stop();
      node.process = null;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const connection of this.connections.values()) connection.abort();
    for (const node of this.nodes) {
      if (node.process !== null) {
        node.process.process.kill("SIGCONT");
        await node.process.kill();
      }
      node.etcdLink[Symbol.dispose]();
      node.link?.[Symbol.dispose]();
      fs.rmSync(node.dataDir, { recursive: true, force: true });
    }
    await this.etcd[Symbol.asyncDispose]();
  }
}

export type Outcome = "ok" | "failed" | "unknown";

/** What the workload saw: each value's answers in order, where acknowledged values landed. */
export interface WorkloadRecord {
  readonly attempts: Map<string, Outcome[]>;
  /** value -> "partition@offset" as acknowledged. */
  readonly acked: Map<string, string>;
  /** "partition@offset" -> value, as a consumer read it from a leader during the run. */
  readonly consumed: Map<string, string>;
  /** Each acknowledgement: which broker answered, when it arrived (performance.now ms), which partition. */
  readonly acks: Array<{ brokerId: number; atMs: number; partition: number }>;
  /** The last refusal per partition (for failure messages). */
  readonly lastErrors: Map<number, string>;
  producerId: number;
}

/** Retriable codes, and thrown client errors: the value is retried with its batch. */
const UNKNOWN_CODES = new Set(["TIMEOUT", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "BROKER_UNAVAILABLE"]);

/**
 * One idempotent producer over `partitions` partitions (one batch in flight per partition, each
 * batch one record `p<partition>-<n>`) and one consumer, until `stop()`. Routes by hand to the
 * leader named by metadata; re-reads metadata after any failure.
 */
export class Workload {
  readonly record: WorkloadRecord = { attempts: new Map(), acked: new Map(), consumed: new Map(), acks: [], lastErrors: new Map(), producerId: -1 };
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private leaders = new Map<number, number>();

  constructor(private readonly cluster: ProcessCluster, private readonly topic: string, private readonly partitions: number) {}

  async start(): Promise<void> {
    const first = this.cluster.running()[0] as number;
    const identity = await this.cluster.connection(first).request("initProducer", {});
    this.record.producerId = identity.producerId as number;
    await this.refreshLeaders();
    for (let partition = 0; partition < this.partitions; partition++) this.loops.push(this.produceLoop(partition, identity.producerEpoch as number));
    for (let partition = 0; partition < this.partitions; partition++) this.loops.push(this.consumeLoop(partition));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** Acknowledgements so far. */
  get acks(): number {
    return this.record.acked.size;
  }

  /** Acknowledgements so far on one partition. */
  acksOn(partition: number): number {
    return this.record.acks.filter((ack) => ack.partition === partition).length;
  }

  /** Acknowledgements `brokerId` gave that arrived after `sinceMs` (performance.now). */
  acksFrom(brokerId: number, sinceMs: number): number {
    return this.record.acks.filter((ack) => ack.brokerId === brokerId && ack.atMs > sinceMs).length;
  }

  /**
   * Waits until `count` more acknowledgements of `partition` arrived (bounded), from any broker
   * but `notFrom` when given; names the last refusal if they do not come.
   */
  async resumed(partition: number, count: number, what: string, notFrom = -1, timeoutMs = 20_000): Promise<void> {
    const counted = () => this.record.acks.filter((ack) => ack.partition === partition && ack.brokerId !== notFrom).length;
    const target = counted() + count;
    await waitFor(() => counted() >= target, timeoutMs, what).catch(async (error) => {
      throw new Error(`${String(error)}; last refusal: ${this.record.lastErrors.get(partition)}; metadata: ${JSON.stringify(await this.cluster.metadata(this.topic))}`);
    });
  }

  private async refreshLeaders(exclude: readonly number[] = []): Promise<void> {
    const meta = await this.cluster.metadata(this.topic, exclude);
    if (meta === null) return;
    for (const partition of meta.partitions) this.leaders.set(partition.partition, partition.leader);
  }

  private async produceLoop(partition: number, producerEpoch: number): Promise<void> {
    for (let sequence = 0; !this.stopped; sequence++) {
      const value = `p${partition}-${sequence}`;
      const batch = encodeBatch([{ value }], { producer: { producerId: this.record.producerId, producerEpoch, baseSequence: sequence } });
      const outcomes: Outcome[] = [];
      this.record.attempts.set(value, outcomes);
      // Retry this value until it is acknowledged (or the run ends): its sequence must not be skipped.
      while (!this.stopped) {
        const leader = this.leaders.get(partition) ?? -1;
        const outcome = await this.produceOnce(partition, batch, value);
        outcomes.push(outcome);
        if (outcome === "ok") break;
        await Bun.sleep(50);
        // Not from the broker that refused: cut off from etcd, its own metadata may be stale.
        await this.refreshLeaders([leader]);
      }
    }
  }

  private async produceOnce(partition: number, batch: Uint8Array, value: string): Promise<Outcome> {
    const leader = this.leaders.get(partition) ?? -1;
    if (leader < 0 || !this.cluster.running().includes(leader)) {
      this.record.lastErrors.set(partition, `no running leader (${leader})`);
      return "failed";
    }
    try {
      const answer = await this.cluster.connection(leader).request("produce", { durability: "replicated", batches: [{ topic: this.topic, partition, batch }] }, 4000);
      const result = (answer.results as WireMap[])[0] as WireMap;
      const error = result.error as { code: string } | undefined;
      if (error === undefined) {
        this.record.acked.set(value, `${partition}@${result.baseOffset as number}`);
        this.record.acks.push({ brokerId: leader, atMs: performance.now(), partition });
        return "ok";
      }
      this.record.lastErrors.set(partition, `broker ${leader}: ${JSON.stringify(error)}`);
      return UNKNOWN_CODES.has(error.code) ? "unknown" : "failed";
    } catch (error) {
      this.record.lastErrors.set(partition, `broker ${leader}: ${String(error)}`);
      return "unknown";
    }
  }

  /** Reads the partition from its current leader, recording what it saw at which offset. */
  private async consumeLoop(partition: number): Promise<void> {
    let offset = 0;
    while (!this.stopped) {
      const leader = this.leaders.get(partition) ?? -1;
      if (leader < 0 || !this.cluster.running().includes(leader)) {
        await Bun.sleep(50);
        continue;
      }
      try {
        const response = await this.cluster.connection(leader).request("fetch", { partitions: [{ topic: this.topic, partition, offset }], maxWaitMs: 100 }, 2000);
        const entry = (response.partitions as WireMap[])[0] as WireMap;
        if (entry.error !== undefined) throw new Error(JSON.stringify(entry.error));
        const records = response.records as Uint8Array;
        for (const span of scanBatches(records)) {
          const bytes = records.subarray(span.position, span.position + span.bytes);
          for (const one of decodeRecords(bytes, verifyBatch(bytes))) this.record.consumed.set(`${partition}@${one.offset}`, new TextDecoder().decode(one.value ?? new Uint8Array()));
          offset = span.header.baseOffset + span.header.recordCount;
        }
      } catch {
        await Bun.sleep(50);
      }
    }
  }
}

/** Every record of a partition as one replica stores it: [offset, value]. */
export async function replicaValues(dataDir: string, topic: string, partition: number): Promise<{ bytes: Uint8Array; values: Array<[number, string]> }> {
  const log = await openLogManager({ dataDir });
  try {
    const bytes = new Uint8Array(logBytes(log.partition(topic, partition)));
    const values: Array<[number, string]> = [];
    for (const span of scanBatches(bytes)) {
      const batch = bytes.subarray(span.position, span.position + span.bytes);
      for (const one of decodeRecords(batch, verifyBatch(batch))) values.push([one.offset, new TextDecoder().decode(one.value ?? new Uint8Array())]);
    }
    return { bytes, values };
  } finally {
    await log.close();
  }
}

/**
 * A fault test's start: the cluster (with `options`), `topic` of `partitions`, the workload
 * running for a seeded while, and partition 0's leader then. Everything is disposed if a step fails.
 */
export async function runningWorkload(
  name: string,
  topic: string,
  partitions: number,
  random: () => number,
  options: ClusterOptions = {},
): Promise<{ cluster: ProcessCluster; workload: Workload; leader: number }> {
  const cluster = await ProcessCluster.start(name, 3, "short", options);
  try {
    await cluster.createTopic(topic, partitions);
    const workload = new Workload(cluster, topic, partitions);
    await workload.start();
    await Bun.sleep(300 + Math.floor(random() * 1000));
    const leader = (await cluster.metadata(topic))?.partitions[0]?.leader as number;
    return { cluster, workload, leader };
  } catch (error) {
    await cluster[Symbol.asyncDispose]();
    throw error;
  }
}

/** A fault test's end: stop the workload, wait for the replicas to agree, stop the brokers, audit; the problems found. */
export async function finishAndAudit(cluster: ProcessCluster, workload: Workload, topic: string, partitions: number): Promise<string[]> {
  await workload.stop();
  await cluster.waitConverged(topic, partitions, 25_000);
  await cluster.stopAll();
  return (await audit(cluster, topic, partitions, workload.record)).problems;
}

/**
 * The audit, after a clean stop of every broker: each partition's log is byte-identical on every
 * replica (same offsets, same epochs); every acknowledged value is there once, at its
 * acknowledged offset; no value is stored twice; everything a consumer read is still there.
 * Returns the problems found (empty: all held) and counts.
 */
export async function audit(
  cluster: ProcessCluster,
  topic: string,
  partitions: number,
  record: WorkloadRecord,
  /** Which brokers hold each partition (after a reassignment); default: every broker. */
  holders?: ReadonlyMap<number, readonly number[]>,
): Promise<{ problems: string[]; stored: number }> {
  const problems: string[] = [];
  const where = new Map<string, string>();
  let stored = 0;
  for (let partition = 0; partition < partitions; partition++) {
    const nodes = cluster.nodes.filter((node) => holders?.get(partition)?.includes(node.brokerId) ?? true);
    const replicas = await Promise.all(nodes.map((node) => replicaValues(node.dataDir, topic, partition)));
    const reference = replicas[0] as { bytes: Uint8Array; values: Array<[number, string]> };
    replicas.forEach((replica, index) => {
      if (!Buffer.from(replica.bytes).equals(Buffer.from(reference.bytes))) {
        problems.push(`${topic}/${partition}: broker ${nodes[index]?.brokerId}'s log differs from broker ${nodes[0]?.brokerId}'s (${replica.values.length} vs ${reference.values.length} records)`);
      }
    });
    for (const [offset, value] of reference.values) {
      stored++;
      const at = `${partition}@${offset}`;
      if (where.has(value)) problems.push(`${value} stored twice: ${where.get(value)} and ${at}`);
      where.set(value, at);
    }
  }
  for (const [value, at] of record.acked) {
    const found = where.get(value);
    if (found === undefined) problems.push(`acknowledged ${value} (${at}) was lost`);
    else if (found !== at) problems.push(`acknowledged ${value} at ${at} is stored at ${found}`);
  }
  const byPosition = new Map([...where].map(([value, at]) => [at, value]));
  for (const [at, value] of record.consumed) {
    if (byPosition.get(at) !== value) problems.push(`a consumer read ${value} at ${at}, which later disappeared (now ${byPosition.get(at) ?? "nothing"})`);
  }
  return { problems, stored };
}

/**
 * The longest time any partition went without an acknowledgement around [fromMs, toMs]
 * (performance.now): the largest gap between two consecutive acknowledgements of one partition
 * where the gap overlaps the window.
 */
export function longestStallMs(record: WorkloadRecord, partitions: number, fromMs: number, toMs: number): number {
  let longest = 0;
  for (let partition = 0; partition < partitions; partition++) {
    const times = record.acks.filter((ack) => ack.partition === partition).map((ack) => ack.atMs).sort((left, right) => left - right);
    for (let index = 1; index < times.length; index++) {
      const [previous, next] = [times[index - 1] as number, times[index] as number];
      if (next > fromMs && previous < toMs) longest = Math.max(longest, next - previous);
    }
  }
  return longest;
}
