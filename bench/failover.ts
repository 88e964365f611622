/**
 * @module bench/failover
 * Failover and replicated throughput with real processes (issue 14's figures):
 *
 * 1. Failover time: etcd and three `runnel serve --cluster` processes with the default lease
 *    settings (clusterLeaseTtlMs 3000, clusterFenceMarginMs 1000), a topic of one partition,
 *    replication factor 3, min ISR 2, and the failover workload (test/cluster/failover-harness.ts:
 *    an idempotent producer with `replicated` durability, one batch in flight, routed by hand to
 *    the leader from native `metadata`, retrying every 50 ms). The leader is SIGKILLed; we time
 *    from the kill to the first acknowledgement from another broker. Fresh cluster per round.
 * 2. Throughput: 100-record batches (11 KB), 16 in flight, to a single-node process (`written`)
 *    and to the leader of the 3-process cluster (`replicated`, min ISR 2), in the same run.
 *
 *   bun bench/failover.ts [rounds=5] [batches=2000]
 */
import { Connection } from "../src/client/connection.ts";
import type { WireMap } from "../src/client/wire.ts";
import { encodeBatch } from "../src/format/record-batch.ts";
import * as fs from "node:fs";
import { spawnBroker, waitFor } from "../test/durability/broker-process.ts";
import { tempDir } from "../test/server/helpers.ts";
import { ProcessCluster, Workload } from "../test/cluster/failover-harness.ts";

const rounds = Number(process.argv[2] ?? 5);
const batches = Number(process.argv[3] ?? 2000);
const IN_FLIGHT = 16;
const RECORDS = 100;

async function failoverRound(round: number): Promise<number> {
  await using cluster = await ProcessCluster.start(`bench${round}`, 3, "defaults");
  await cluster.createTopic("t", 1);
  const workload = new Workload(cluster, "t", 1);
  await workload.start();
  await waitFor(() => workload.acks >= 50, 20_000, "acknowledgements before the kill");
  const leader = (await cluster.metadata("t"))?.partitions[0]?.leader as number;
  const killedAtMs = performance.now();
  await cluster.kill(leader);
  await waitFor(() => workload.record.acks.some((ack) => ack.atMs > killedAtMs && ack.brokerId !== leader), 30_000, "the first acknowledgement from the new leader");
  const first = workload.record.acks.find((ack) => ack.atMs > killedAtMs && ack.brokerId !== leader);
  await workload.stop();
  if (first === undefined) throw new Error("no acknowledgement after the kill");
  return first.atMs - killedAtMs;
}

async function produceRun(port: number, topic: string, durability: string): Promise<number> {
  const bytes = encodeBatch(Array.from({ length: RECORDS }, (_, i) => ({ key: `k${i}`, value: "v".repeat(100) })));
  const connection = new Connection({ broker: `127.0.0.1:${port}` });
  let next = 0;
  const startedMs = performance.now();
  async function lane(): Promise<void> {
    while (next < batches) {
      next++;
      const answer = await connection.request("produce", { durability, batches: [{ topic, partition: 0, batch: bytes }] });
      const result = (answer.results as WireMap[])[0] as WireMap;
      if (result.error !== undefined) throw new Error(`produce failed: ${JSON.stringify(result.error)}`);
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const seconds = (performance.now() - startedMs) / 1000;
  await connection.close();
  return (batches * RECORDS) / seconds;
}

async function throughput(): Promise<{ single: number; replicated: number }> {
  const dir = tempDir("runnel-bench-single-");
  const single = await spawnBroker(dir, 0);
  let singleRate: number;
  try {
    const admin = new Connection({ broker: `127.0.0.1:${single.port}` });
    await admin.request("createTopic", { topic: "t", partitions: 1 });
    await admin.close();
    singleRate = await produceRun(single.port, "t", "written");
  } finally {
    await single.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await using cluster = await ProcessCluster.start("bench-throughput", 3, "defaults");
  await cluster.createTopic("t", 1);
  const leader = (await cluster.metadata("t"))?.partitions[0]?.leader as number;
  const port = cluster.node(leader).process?.port as number;
  return { single: singleRate, replicated: await produceRun(port, "t", "replicated") };
}

const timesMs: number[] = [];
for (let round = 0; round < rounds; round++) {
  const ms = await failoverRound(round);
  timesMs.push(ms);
  console.log(`round ${round + 1}: ${ms.toFixed(0)} ms from SIGKILL to the first acknowledgement on the new leader`);
}
const sorted = [...timesMs].sort((left, right) => left - right);
console.log(`failover (clusterLeaseTtlMs 3000, clusterFenceMarginMs 1000): min ${sorted[0]?.toFixed(0)}, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)}, max ${sorted[sorted.length - 1]?.toFixed(0)} ms`);
const rates = await throughput();
console.log(`single node, written: ${rates.single.toFixed(0)} records/s`);
console.log(`3 processes, replicated, min ISR 2: ${rates.replicated.toFixed(0)} records/s (${(rates.replicated / rates.single).toFixed(2)}x)`);
