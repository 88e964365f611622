/**
 * A broker's disk lost (issue 14's proof list; docs/cluster.md): a follower is SIGKILLed, its
 * data directory replaced by an empty one, and started again with the same broker id while the
 * idempotent `replicated` workload runs. It must copy every partition back from the leaders and
 * rejoin the ISR only once caught up; then the leader of partition 0 is SIGKILLed, so the
 * rebuilt broker may become leader. The audit reads every replica from disk: no acknowledged
 * value lost or duplicated, replicas byte-identical, nothing a consumer read disappeared.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { waitFor } from "../durability/broker-process.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { audit, ProcessCluster, seeded, Workload } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("disk-lost.test.ts");
const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? 21);
const PARTITIONS = 2;

describe.skipIf(!HAVE_ETCD)("a follower's disk lost", () => {
  test("the rebuilt broker copies everything back before it rejoins the ISR; a later leader failover loses nothing", async () => {
    const random = seeded(SEED);
    await using cluster = await ProcessCluster.start("disk-lost");
    await cluster.createTopic("ledger", PARTITIONS);
    const workload = new Workload(cluster, "ledger", PARTITIONS);
    await workload.start();
    await Bun.sleep(500 + Math.floor(random() * 1000));

    const metadata = await cluster.metadata("ledger");
    const leaders = new Set(metadata?.partitions.map((partition) => partition.leader));
    const victim = cluster.running().find((brokerId) => !leaders.has(brokerId)) ?? (metadata?.partitions[0]?.isr.find((id) => id !== metadata.partitions[0]?.leader) as number);
    await cluster.kill(victim);
    const dataDir = cluster.node(victim).dataDir;
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.mkdirSync(dataDir);
    await workload.resumed(0, 10, "produce to go on while the victim is down");
    await cluster.startBroker(victim);

    // Back in every ISR only once it holds what the leader had.
    await waitFor(
      async () => {
        const now = await cluster.metadata("ledger");
        return now !== null && now.partitions.length === PARTITIONS && now.partitions.every((partition) => partition.isr.includes(victim));
      },
      30_000,
      `broker ${victim} back in every ISR after its disk was replaced`,
    );
    await workload.resumed(0, 10, "produce to go on after the rebuild");

    const leader = (await cluster.metadata("ledger"))?.partitions[0]?.leader as number;
    await cluster.kill(leader);
    await workload.resumed(0, 10, "produce to partition 0 to resume on its new leader");
    await cluster.startBroker(leader);
    await workload.stop();
    await cluster.waitConverged("ledger", PARTITIONS, 30_000);
    await cluster.stopAll();

    const { problems, stored } = await audit(cluster, "ledger", PARTITIONS, workload.record);
    console.log(`seed ${SEED}: disk of ${victim} replaced, then leader ${leader} killed; ${workload.acks} acknowledged, ${stored} stored`);
    expect(problems).toEqual([]);
    expect(stored).toBeGreaterThanOrEqual(workload.acks);
  }, 90_000);
});
