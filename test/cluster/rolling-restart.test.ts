/**
 * End to end: etcd and three `runnel serve --cluster` processes, a topic of three partitions,
 * replication factor 3, min ISR 2, one idempotent producer with `replicated` durability. A
 * rolling restart: each broker in turn is SIGTERMed (controlled shutdown: it hands its
 * leaderships and ISR seats away first), waited for, restarted and waited for until it is back in
 * every ISR. Then: each broker led nothing when it exited, produce went on throughout, the
 * automatic rebalance put leadership back on the preferred leaders, and after a clean stop every
 * replica's log holds each acknowledged value once (test/cluster/failover-harness.ts's audit).
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { describe, expect, test } from "bun:test";
import { waitFor } from "../durability/broker-process.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { audit, longestStallMs, ProcessCluster, Workload } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("rolling-restart.test.ts");
const PARTITIONS = 3;
const TOPIC = "orders";

/** The broker's last controlled-shutdown line, parsed (its `leading` field is what it led as it ended). */
function drainLine(lines: readonly string[]): Record<string, unknown> | undefined {
  const line = [...lines].reverse().find((text) => text.includes("controlled shutdown: leadership moved away") || text.includes("controlled shutdown timed out"));
  return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
}

async function everyIsrHolds(cluster: ProcessCluster, brokerId: number): Promise<boolean> {
  const meta = await cluster.metadata(TOPIC);
  return meta !== null && meta.partitions.length === PARTITIONS && meta.partitions.every((partition) => partition.isr.includes(brokerId));
}

async function onPreferredLeaders(cluster: ProcessCluster): Promise<boolean> {
  const meta = await cluster.metadata(TOPIC);
  return meta !== null && meta.partitions.length === PARTITIONS && meta.partitions.every((partition) => partition.leader === partition.replicas[0]);
}

describe.skipIf(!HAVE_ETCD)("rolling restart with controlled shutdown, as processes", () => {
  test("no acknowledged value is lost or duplicated, no broker leads as it exits, leadership returns to the preferred leaders", async () => {
    await using cluster = await ProcessCluster.start("rolling", 3, "short", { args: ["--leader-imbalance-check-interval-ms", "1000"] });
    await cluster.createTopic(TOPIC, PARTITIONS);
    const preferred = (await cluster.metadata(TOPIC))?.partitions.map((partition) => partition.replicas[0]);
    expect(new Set(preferred).size).toBe(3); // one preferred leadership per broker: each stop moves one
    const workload = new Workload(cluster, TOPIC, PARTITIONS);
    await workload.start();
    await waitFor(() => workload.acks >= 30, 20_000, "acknowledgements before the restart");

    const stalls: number[] = [];
    for (const brokerId of [1, 2, 3]) {
      const fromMs = performance.now();
      const { code, lines } = await cluster.terminate(brokerId);
      expect(code).toBe(0);
      expect(drainLine(lines)).toMatchObject({ leading: 0, kept: 0 });
      for (let partition = 0; partition < PARTITIONS; partition++) await workload.resumed(partition, 5, `produce to partition ${partition} with broker ${brokerId} stopped`);
      stalls.push(longestStallMs(workload.record, PARTITIONS, fromMs, performance.now()));
      await cluster.startBroker(brokerId);
      await waitFor(() => everyIsrHolds(cluster, brokerId), 30_000, `broker ${brokerId} back in every ISR`);
    }
    await waitFor(() => onPreferredLeaders(cluster), 30_000, "leadership back on the preferred leaders");
    for (let partition = 0; partition < PARTITIONS; partition++) await workload.resumed(partition, 5, `produce to partition ${partition} after the restart`);
    await workload.stop();
    await cluster.waitConverged(TOPIC, PARTITIONS, 20_000);
    await cluster.stopAll();

    const { problems, stored } = await audit(cluster, TOPIC, PARTITIONS, workload.record);
    console.log(`rolling restart: ${workload.acks} acknowledged, ${stored} stored; longest produce stall per stop: ${stalls.map((ms) => ms.toFixed(0)).join(", ")} ms`);
    expect(problems).toEqual([]);
    expect(stored).toBeGreaterThanOrEqual(workload.acks);
  }, 150_000);
});
