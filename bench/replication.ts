/**
 * @module bench/replication
 * Replication figures, in one run on this machine (docs/cluster.md):
 *   1. produce throughput to a single node (durability `written`) against a 3-broker in-process
 *      cluster's leader (replication factor 3, minInsyncReplicas 2) with `written` and with
 *      `replicated` — the same batches, the same number in flight, reported as ratios;
 *   2. follower catch-up: a leader holding `--catchup-mib` MiB gains a new replica; how fast
 *      the follower copies it (MB/s).
 * Every broker runs in this one process (one event loop), so the cluster figures include the
 * followers' work competing with the leader's: a lower bound for separate machines.
 *
 * usage: bun bench/replication.ts [--batches 2000] [--records 100] [--catchup-mib 64]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Connection } from "../src/client/connection.ts";
import type { WireMap } from "../src/client/wire.ts";
import { StaticClusterState } from "../src/cluster/static-cluster-view.ts";
import { configSchema } from "../src/config.ts";
import { encodeBatch } from "../src/format/record-batch.ts";
import { silentLogger } from "../src/logger.ts";
import { type Broker, startBroker } from "../src/server/broker.ts";

const IN_FLIGHT = 16;
const VALUE_BYTES = 100;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

function batch(records: number): Uint8Array {
  const value = "v".repeat(VALUE_BYTES);
  return encodeBatch(Array.from({ length: records }, (_, i) => ({ key: `k${i}`, value })));
}

async function startNode(state: StaticClusterState | null, brokerId: number, dirs: string[]): Promise<Broker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `runnel-bench-replication-${brokerId}-`));
  dirs.push(dataDir);
  const config = configSchema.parse({ port: 0, httpPort: -1, kafkaPort: -1, logLevel: "silent", dataDir });
  const broker = await startBroker({ config, logger: silentLogger(), ...(state === null ? {} : { cluster: state.viewFor(brokerId) }) });
  state?.setBroker({ brokerId, host: "127.0.0.1", port: broker.port, kafkaPort: null });
  return broker;
}

/** Sends `count` produces of `bytes`, IN_FLIGHT at a time; returns records per second and MB/s. */
async function produceRun(port: number, topic: string, durability: string, count: number, bytes: Uint8Array, records: number): Promise<{ recordsPerSecond: number; mbPerSecond: number }> {
  const connection = new Connection({ broker: `127.0.0.1:${port}` });
  let next = 0;
  const startedMs = performance.now();
  async function lane(): Promise<void> {
    while (next < count) {
      next++;
      const answer = await connection.request("produce", { durability, batches: [{ topic, partition: 0, batch: bytes }] });
      const result = (answer.results as WireMap[])[0]!;
      if (result.error !== undefined) throw new Error(`produce failed: ${JSON.stringify(result.error)}`);
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const seconds = (performance.now() - startedMs) / 1000;
  await connection.close();
  return { recordsPerSecond: (count * records) / seconds, mbPerSecond: (count * bytes.length) / seconds / 1e6 };
}

async function main(): Promise<void> {
  const batches = option("batches", 2000);
  const records = option("records", 100);
  const catchupMiB = option("catchup-mib", 64);
  const bytes = batch(records);
  const dirs: string[] = [];
  const brokers: Broker[] = [];
  try {
    const single = await startNode(null, 0, dirs);
    brokers.push(single);
    single.context.log.createTopic("bench", { partitions: 1 });
    const state = new StaticClusterState();
    const cluster = [await startNode(state, 1, dirs), await startNode(state, 2, dirs), await startNode(state, 3, dirs)];
    brokers.push(...cluster);
    state.setTopic("bench", { replicationFactor: 3, minInsyncReplicas: 2 });
    for (const broker of cluster) broker.context.log.createTopic("bench", { partitions: 1 });
    state.setPartition("bench", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2, 3], replicas: [1, 2, 3] });

    const alone = await produceRun(single.port, "bench", "written", batches, bytes, records);
    const leaderWritten = await produceRun(cluster[0]!.port, "bench", "written", batches, bytes, records);
    const replicated = await produceRun(cluster[0]!.port, "bench", "replicated", batches, bytes, records);
    const line = (name: string, run: { recordsPerSecond: number; mbPerSecond: number }) =>
      `${name.padEnd(36)} ${Math.round(run.recordsPerSecond).toString().padStart(10)} records/s ${run.mbPerSecond.toFixed(1).padStart(8)} MB/s  ${(run.recordsPerSecond / alone.recordsPerSecond).toFixed(2)}x`;
    console.log(`produce: ${batches} batches of ${records} records (${bytes.length} bytes), ${IN_FLIGHT} in flight`);
    console.log(line("single node, written", alone));
    console.log(line("3 replicas, leader, written", leaderWritten));
    console.log(line("3 replicas, replicated (min ISR 2)", replicated));

    // Catch-up: a new topic on the leader alone, then a second replica is added.
    for (const broker of cluster) broker.context.log.createTopic("catchup", { partitions: 1 });
    state.setTopic("catchup", { replicationFactor: 2, minInsyncReplicas: 1 });
    state.setPartition("catchup", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1] });
    const catchupBatch = batch(1000);
    const leaderLog = cluster[0]!.context.log.partition("catchup", 0);
    while (leaderLog.info().sizeBytes < catchupMiB * 1024 * 1024) leaderLog.append(catchupBatch.slice());
    const target = leaderLog.nextOffset;
    const followerLog = cluster[1]!.context.log.partition("catchup", 0);
    const startedMs = performance.now();
    state.setPartition("catchup", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1, 2] });
    while (followerLog.nextOffset < target) await Bun.sleep(1);
    const seconds = (performance.now() - startedMs) / 1000;
    const sizeBytes = followerLog.info().sizeBytes;
    console.log(`follower catch-up: ${(sizeBytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s = ${(sizeBytes / 1e6 / seconds).toFixed(1)} MB/s`);
  } finally {
    for (const broker of brokers) await broker.stop();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
