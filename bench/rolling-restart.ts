/**
 * @module bench/rolling-restart
 * The produce stall of a controlled restart vs. an uncontrolled SIGKILL, in the same run (issue
 * 14's figures): etcd and three `runnel serve --cluster` processes with the default lease settings
 * (clusterLeaseTtlMs 3000, clusterFenceMarginMs 1000), a topic of three partitions (one preferred
 * leader per broker), replication factor 3, min ISR 2, and the failover workload
 * (test/cluster/failover-harness.ts: one idempotent producer with `replicated` durability, one
 * batch in flight per partition, routed by hand to the leaders, retrying every 50 ms).
 *
 * Per round: a rolling restart (SIGTERM each broker in turn — controlled shutdown — wait for its
 * exit, restart it, wait until it is back in every ISR), then a SIGKILL of one leader and its
 * restart. For each stop: the longest time any partition went without an acknowledgement, from
 * the signal until every partition has been acknowledged again.
 *
 *   bun bench/rolling-restart.ts [rounds=2]
 */
import { waitFor } from "../test/durability/broker-process.ts";
import { longestStallMs, ProcessCluster, Workload } from "../test/cluster/failover-harness.ts";

const rounds = Number(process.argv[2] ?? 2);
const TOPIC = "t";
const PARTITIONS = 3;

async function backInEveryIsr(cluster: ProcessCluster, brokerId: number): Promise<void> {
  await waitFor(async () => (await cluster.metadata(TOPIC))?.partitions.every((partition) => partition.isr.includes(brokerId)) === true, 60_000, `broker ${brokerId} back in every ISR`);
}

/** Stops `brokerId` by `how`, waits until every partition is acknowledged again, restarts it; the longest stall. */
async function stopAndMeasure(cluster: ProcessCluster, workload: Workload, brokerId: number, how: "SIGTERM" | "SIGKILL"): Promise<number> {
  const fromMs = performance.now();
  if (how === "SIGTERM") await cluster.terminate(brokerId);
  else await cluster.kill(brokerId);
  for (let partition = 0; partition < PARTITIONS; partition++) await workload.resumed(partition, 3, `partition ${partition} acknowledged again after ${how} of ${brokerId}`, -1, 60_000);
  const stallMs = longestStallMs(workload.record, PARTITIONS, fromMs, performance.now());
  await cluster.startBroker(brokerId);
  await backInEveryIsr(cluster, brokerId);
  return stallMs;
}

async function round(index: number): Promise<{ controlled: number[]; killed: number }> {
  await using cluster = await ProcessCluster.start(`bench-rolling${index}`, 3, "defaults", { args: ["--leader-imbalance-check-interval-ms", "1000"] });
  await cluster.createTopic(TOPIC, PARTITIONS);
  const workload = new Workload(cluster, TOPIC, PARTITIONS);
  await workload.start();
  await waitFor(() => workload.acks >= 60, 20_000, "acknowledgements before the first stop");
  const controlled: number[] = [];
  for (const brokerId of [1, 2, 3]) {
    controlled.push(await stopAndMeasure(cluster, workload, brokerId, "SIGTERM"));
    console.log(`round ${index + 1}: SIGTERM of broker ${brokerId} (controlled shutdown): longest produce stall ${controlled.at(-1)?.toFixed(0)} ms`);
  }
  // Leadership back on the preferred leaders first, so the killed broker leads one partition.
  await waitFor(async () => (await cluster.metadata(TOPIC))?.partitions.every((partition) => partition.leader === partition.replicas[0]) === true, 60_000, "preferred leaders");
  const victim = (await cluster.metadata(TOPIC))?.partitions[0]?.leader as number;
  const killed = await stopAndMeasure(cluster, workload, victim, "SIGKILL");
  console.log(`round ${index + 1}: SIGKILL of broker ${victim} (leader of partition 0): longest produce stall ${killed.toFixed(0)} ms`);
  await workload.stop();
  return { controlled, killed };
}

const controlled: number[] = [];
const killed: number[] = [];
for (let index = 0; index < rounds; index++) {
  const result = await round(index);
  controlled.push(...result.controlled);
  killed.push(result.killed);
}
const summary = (values: number[]) => {
  const sorted = [...values].sort((left, right) => left - right);
  return `min ${sorted[0]?.toFixed(0)}, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)}, max ${sorted.at(-1)?.toFixed(0)} ms (${sorted.length} stops)`;
};
console.log(`controlled restart (SIGTERM): longest produce stall ${summary(controlled)}`);
console.log(`uncontrolled (SIGKILL of a leader): longest produce stall ${summary(killed)}`);
