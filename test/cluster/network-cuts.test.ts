/**
 * Network cuts between brokers (issue 14's proof): etcd and three `runnel serve --cluster`
 * processes, each behind a TCP proxy it advertises (`--advertised-port`), which the test cuts and
 * heals (failover-harness.ts `brokerLinks`: every byte dropped, as on a partitioned network; links
 * are told apart by the client id of their `hello`, so one broker's fetches can be cut alone). The
 * workload and the audit are faults.test.ts's: an idempotent `replicated` producer routed by hand,
 * a consumer on the leaders, every replica's log read from disk at the end (no acknowledged value
 * lost or stored twice, replicas byte-identical, nothing a consumer read disappeared).
 *
 * - the leader cut off from its followers and its clients, not from etcd: it stays leader (its
 *   lease lives), its ISR shrinks to itself after replicaLagTimeMaxMs, and with min ISR 2 it
 *   refuses `replicated` produces (NOT_ENOUGH_REPLICAS) from a client that still reaches it;
 *   healed, the followers catch up and rejoin, and produce goes on;
 * - a follower cut off from the leader only: it leaves that leader's ISR, produce goes on with the
 *   two others, and healed, it comes back into the ISR.
 *
 * RUNNEL_FAULT_SEED picks the seeded times. Needs `etcd`; skipped loudly outside CI without it.
 */
import { describe, expect, test } from "bun:test";
import type { WireMap } from "../../src/client/wire.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { waitFor } from "../durability/broker-process.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { finishAndAudit, runningWorkload, type PartitionMeta, ProcessCluster, seeded, Workload } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("network-cuts.test.ts");
const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? 14);
const PARTITIONS = 2;
const TOPIC = "cuts";
/** Short, so a cut follower leaves the ISR within the test's bound. */
const LAG_MAX_MS = 2000;

/** The cluster, the topic and the workload, run a seeded while (failover-harness.ts). */
function running(name: string, random: () => number): ReturnType<typeof runningWorkload> {
  return runningWorkload(name, TOPIC, PARTITIONS, random, { brokerLinks: true, args: ["--replica-lag-time-max-ms", String(LAG_MAX_MS)] });
}

/** Stops the workload and the brokers once the replicas agree, and audits them. */
function finish(cluster: ProcessCluster, workload: Workload): Promise<string[]> {
  return finishAndAudit(cluster, workload, TOPIC, PARTITIONS);
}

/** Partition 0 as a broker other than `notFrom` sees it (the view from etcd). */
async function partitionZero(cluster: ProcessCluster, notFrom: number): Promise<PartitionMeta | undefined> {
  return (await cluster.metadata(TOPIC, [notFrom]))?.partitions.find((meta) => meta.partition === 0);
}

describe.skipIf(!HAVE_ETCD)("network cuts between brokers, as processes", () => {
  test("a leader cut off from its followers and clients but not from etcd shrinks its ISR, refuses replicated produces, and healed, the followers catch up", async () => {
    const started = await running("leader-cut", seeded(SEED + 6));
    await using cluster = started.cluster;
    const { workload, leader } = started;
    cluster.isolate(leader);
    // Still the leader (its lease lives), alone in its ISR once its followers lag past the bound.
    await waitFor(async () => {
      const meta = await partitionZero(cluster, leader);
      return meta?.leader === leader && meta.isr.length === 1 && meta.isr[0] === leader;
    }, 25_000, `broker ${leader} alone in partition 0's ISR`);
    const direct = cluster.directConnection(leader);
    try {
      const batch = encodeBatch([{ value: "probe" }]);
      const answer = await direct.request("produce", { durability: "replicated", batches: [{ topic: TOPIC, partition: 0, batch }] });
      expect(((answer.results as WireMap[])[0]!.error as WireMap | undefined)?.code).toBe("NOT_ENOUGH_REPLICAS");
    } finally {
      direct.abort();
    }
    cluster.healLinks();
    await waitFor(async () => (await partitionZero(cluster, leader))?.isr.length === 3, 25_000, "partition 0's ISR full again");
    await workload.resumed(0, 20, "produce to partition 0 to go on after the heal");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);

  test("a follower cut off from the leader only leaves its ISR while produce goes on, and healed, comes back", async () => {
    const started = await running("follower-cut", seeded(SEED + 7));
    await using cluster = started.cluster;
    const { workload, leader } = started;
    const follower = cluster.nodes.map((node) => node.brokerId).find((brokerId) => brokerId !== leader) as number;
    cluster.cutBetween(leader, follower);
    await waitFor(async () => {
      const meta = await partitionZero(cluster, follower);
      return meta?.leader === leader && meta.isr.length === 2 && !meta.isr.includes(follower);
    }, 25_000, `broker ${follower} out of partition 0's ISR`);
    await workload.resumed(0, 20, "produce to partition 0 to go on without the cut-off follower");
    expect(await cluster.liveBrokerIds()).toContain(follower);
    cluster.healLinks();
    await waitFor(async () => (await partitionZero(cluster, leader))?.isr.includes(follower) === true, 25_000, `broker ${follower} back in partition 0's ISR`);
    await workload.resumed(0, 10, "produce to go on with every link healed");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);
});
