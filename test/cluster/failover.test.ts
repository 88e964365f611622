/**
 * End to end: etcd and three `runnel serve --cluster` processes, a topic of replication factor 3
 * and min ISR 2, an idempotent producer with `replicated` durability and unique values, a
 * consumer reading the leaders. The leader of partition 0 is SIGKILLed at a seeded time; produce
 * resumes on the new leader; the killed broker restarts and catches up. Then every replica's log
 * is read from disk: no acknowledged value lost, none stored twice, replicas byte-identical, and
 * nothing a consumer read has disappeared.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { describe, expect, test } from "bun:test";
import { etcdOrSkip } from "./etcd-harness.ts";
import { audit, ProcessCluster, seeded, Workload } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("failover.test.ts");
const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? 14);
const PARTITIONS = 2;

describe.skipIf(!HAVE_ETCD)("failover of a SIGKILLed leader, as processes", () => {
  test("no acknowledged value is lost or duplicated, replicas agree, consumers saw only what stays", async () => {
    const random = seeded(SEED);
    await using cluster = await ProcessCluster.start("failover");
    await cluster.createTopic("orders", PARTITIONS);
    const workload = new Workload(cluster, "orders", PARTITIONS);
    await workload.start();
    await Bun.sleep(500 + Math.floor(random() * 1500));
    const leader = (await cluster.metadata("orders"))?.partitions[0]?.leader as number;
    await cluster.kill(leader);
    await workload.resumed(0, 20, "produce to partition 0 to resume on its new leader");
    const newLeader = (await cluster.metadata("orders"))?.partitions[0]?.leader;
    await cluster.startBroker(leader);
    const acksAtRestart = workload.acksOn(0);
    await workload.resumed(0, 20, "produce to go on with the old leader back");
    await workload.stop();
    await cluster.waitConverged("orders", PARTITIONS, 20_000);
    await cluster.stopAll();

    const { problems, stored } = await audit(cluster, "orders", PARTITIONS, workload.record);
    const retried = [...workload.record.attempts.values()].filter((outcomes) => outcomes.length > 1).length;
    console.log(`seed ${SEED}: killed ${leader}, new leader ${newLeader}; ${workload.acks} acknowledged, ${retried} retried, ${stored} stored, ${workload.record.consumed.size} consumed`);
    expect(newLeader).not.toBe(leader);
    expect(problems).toEqual([]);
    expect(workload.acksOn(0)).toBeGreaterThan(acksAtRestart);
    expect(stored).toBeGreaterThanOrEqual(workload.acks);
  }, 60_000);
});
