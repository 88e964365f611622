/**
 * @module test/cluster/harness
 * In-process clusters for the data-plane tests: several real brokers on 127.0.0.1:0, each with
 * a StaticClusterView over one shared StaticClusterState (the test plays the controller: it sets
 * leaders, epochs and ISRs), each with its own temp data dir. A broker can be stopped and
 * started again on its data dir (a crash-free restart) under the same broker id.
 */
import * as fs from "node:fs";
import { Connection } from "../../src/client/connection.ts";
import type { WireMap } from "../../src/client/wire.ts";
import type { PartitionState } from "../../src/cluster/cluster-view.ts";
import { StaticClusterState, type StaticClusterView } from "../../src/cluster/static-cluster-view.ts";
import { type Config, configSchema } from "../../src/config.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import type { Partition } from "../../src/log/api.ts";
import { silentLogger } from "../../src/logger.ts";
import { type Broker, startBroker } from "../../src/server/broker.ts";
import { tempDir } from "../server/helpers.ts";

export interface ClusterNode {
  readonly brokerId: number;
  readonly dataDir: string;
  broker: Broker | null;
  view: StaticClusterView | null;
}

export class TestCluster implements AsyncDisposable {
  readonly state = new StaticClusterState();
  readonly nodes: ClusterNode[] = [];
  private readonly connections: Connection[] = [];

  private constructor(private readonly overrides: Partial<Config>) {}

  /** `size` brokers with ids 1..size; `prepare` runs on each data directory before its broker starts. */
  static async start(size: number, overrides: Partial<Config> = {}, prepare: (dataDir: string) => void = () => {}): Promise<TestCluster> {
    const cluster = new TestCluster(overrides);
    for (let brokerId = 1; brokerId <= size; brokerId++) {
      const dataDir = tempDir(`runnel-cluster-${brokerId}-`);
      prepare(dataDir);
      cluster.nodes.push({ brokerId, dataDir, broker: null, view: null });
    }
    for (const node of cluster.nodes) await cluster.startNode(node.brokerId);
    return cluster;
  }

  node(brokerId: number): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.brokerId === brokerId);
    if (node === undefined) throw new Error(`no broker ${brokerId}`);
    return node;
  }

  broker(brokerId: number): Broker {
    const broker = this.node(brokerId).broker;
    if (broker === null) throw new Error(`broker ${brokerId} is stopped`);
    return broker;
  }

  async startNode(brokerId: number): Promise<Broker> {
    const node = this.node(brokerId);
    const config = configSchema.parse({ port: 0, httpPort: -1, kafkaPort: 0, logLevel: "silent", ...this.overrides, dataDir: node.dataDir });
    const view = this.state.viewFor(brokerId);
    const broker = await startBroker({ config, logger: silentLogger(), cluster: view });
    node.broker = broker;
    node.view = view;
    this.state.setBroker({ brokerId, host: "127.0.0.1", port: broker.port, kafkaPort: broker.kafkaPort });
    return broker;
  }

  async stopNode(brokerId: number): Promise<void> {
    const node = this.node(brokerId);
    node.view?.close();
    await node.broker?.stop();
    node.broker = null;
    node.view = null;
  }

  /** Creates the topic on every running broker (the control plane's job) and tells the views its replication. */
  createTopic(topic: string, partitions: number, minInsyncReplicas: number, replicationFactor = this.nodes.length): void {
    this.state.setTopic(topic, { replicationFactor, minInsyncReplicas });
    for (const node of this.nodes) node.broker?.context.log.createTopic(topic, { partitions });
  }

  setPartition(topic: string, partition: number, state: Omit<PartitionState, "version">): PartitionState {
    return this.state.setPartition(topic, partition, state);
  }

  partitionState(topic: string, partition: number): PartitionState {
    const state = this.state.partitionState(topic, partition);
    if (state === undefined) throw new Error(`no state for ${topic}-${partition}`);
    return state;
  }

  log(brokerId: number, topic: string, partition: number): Partition {
    return this.broker(brokerId).context.log.partition(topic, partition);
  }

  /** A native client connection to a broker (closed with the cluster). */
  connect(brokerId: number): Connection {
    const connection = new Connection({ broker: `127.0.0.1:${this.broker(brokerId).port}`, requestTimeoutMs: 20_000 });
    this.connections.push(connection);
    return connection;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const connection of this.connections) connection.abort();
    for (const node of this.nodes) {
      node.view?.close();
      await node.broker?.stop();
      fs.rmSync(node.dataDir, { recursive: true, force: true });
    }
  }
}

/** One batch of `count` records whose values are `${tag}:${i}`. */
export function batchOf(tag: string, count = 3): Uint8Array {
  const records = [];
  for (let i = 0; i < count; i++) records.push({ key: `k${i}`, value: `${tag}:${i}` });
  return encodeBatch(records, { nowMs: 1_700_000_000_000 });
}

/** A produce of one batch; resolves with the broker's one result (an error is a result too). */
export async function produce(connection: Connection, topic: string, partition: number, batch: Uint8Array, durability: string): Promise<WireMap> {
  const answer = await connection.request("produce", { durability, batches: [{ topic, partition, batch }] });
  return (answer.results as WireMap[])[0]!;
}

/** Every byte of a partition's log from its start (the comparison of replicas). */
export function logBytes(partition: Partition): Uint8Array {
  if (partition.nextOffset === partition.logStartOffset) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let offset = partition.logStartOffset;
  while (offset < partition.nextOffset) {
    const slice = partition.read(offset, 1 << 20)!;
    const bytes = partition.readBytes(slice);
    slice.release();
    chunks.push(bytes);
    let position = 0;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (position < bytes.length) {
      offset = view.getInt32(position) * 0x1_0000_0000 + view.getUint32(position + 4) + view.getInt32(position + 23) + 1;
      position += 12 + view.getInt32(position + 8);
    }
  }
  return Buffer.concat(chunks);
}

/** The leader epoch of each batch of a partition's log, in order. */
export function batchEpochs(partition: Partition): number[] {
  const bytes = logBytes(partition);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const epochs: number[] = [];
  for (let position = 0; position < bytes.length; position += 12 + view.getInt32(position + 8)) epochs.push(view.getInt32(position + 12));
  return epochs;
}

/** Resolves when `condition` holds, re-checking every few ms; rejects after `timeoutMs`. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}
