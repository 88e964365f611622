/**
 * More faults of issue 14's proof, each on its own etcd and three `runnel serve --cluster`
 * processes with the failover workload (failover-harness.ts: idempotent `replicated` producer
 * routed by hand, a consumer on the leaders, the audit of every replica's log from disk):
 *
 * - the leader SIGSTOPped past its lease, then SIGCONT: it acknowledges nothing after it wakes
 *   (fenced), rejoins as a follower and truncates what it alone had;
 * - two failovers back to back: the leader killed, and once produce resumed and the old leader is
 *   restarting, the new leader killed too;
 * - the leader cut off from etcd but not from clients (a TCP proxy on its etcd link): it stops
 *   acknowledging within the lease, another leads; healed, it rejoins as a follower;
 * - etcd restarted mid-run: produce goes on afterwards and nothing is lost;
 * - a follower killed and restarted (its high watermark back from its last periodic checkpoint,
 *   possibly stale), and the
 *   leader killed as soon as that follower is back in the ISR: the KIP-101 schedule, where a
 *   follower that truncated to its stale high watermark would lose acknowledged records;
 * - the controller paused past its lease, then resumed: another broker controls meanwhile, and
 *   the old one's writes (if any) are refused; produce goes on and nothing is lost.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { describe, expect, test } from "bun:test";
import { waitFor } from "../durability/broker-process.ts";
import { EtcdGateway } from "../../src/cluster/etcd-gateway.ts";
import { EtcdLayout } from "../../src/cluster/etcd-layout.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { finishAndAudit, runningWorkload, FAULT_LEASE_TTL_MS, ProcessCluster, seeded, Workload } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("faults.test.ts");
const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? 14);
const PARTITIONS = 2;
const TOPIC = "faults";

/** The cluster, the topic and the workload, run a seeded while (failover-harness.ts). */
function running(name: string, random: () => number): ReturnType<typeof runningWorkload> {
  return runningWorkload(name, TOPIC, PARTITIONS, random);
}

/** Stops the workload and the brokers once the replicas agree, and audits them. */
function finish(cluster: ProcessCluster, workload: Workload): Promise<string[]> {
  return finishAndAudit(cluster, workload, TOPIC, PARTITIONS);
}

describe.skipIf(!HAVE_ETCD)("faults, as processes", () => {
  test("a leader paused past its lease acknowledges nothing once it wakes, then follows and truncates", async () => {
    const started = await running("paused", seeded(SEED));
    await using cluster = started.cluster;
    const { workload, leader } = started;
    cluster.signal(leader, "SIGSTOP");
    await workload.resumed(0, 20, "produce to partition 0 to resume on a new leader", leader);
    await Bun.sleep(FAULT_LEASE_TTL_MS);
    const wokeAtMs = performance.now();
    cluster.signal(leader, "SIGCONT");
    await workload.resumed(0, 20, "produce to go on after the old leader woke");
    expect(workload.acksFrom(leader, wokeAtMs)).toBe(0);
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);

  test("two failovers back to back lose and duplicate nothing", async () => {
    const started = await running("twice", seeded(SEED + 1));
    await using cluster = started.cluster;
    const { workload, leader: first } = started;
    await cluster.kill(first);
    await workload.resumed(0, 10, "produce to resume after the first failover");
    const second = (await cluster.metadata(TOPIC))?.partitions[0]?.leader as number;
    expect(second).not.toBe(first);
    await cluster.startBroker(first);
    await cluster.kill(second);
    await workload.resumed(0, 10, "produce to resume after the second failover");
    await cluster.startBroker(second);
    await workload.resumed(0, 10, "produce to go on with every broker back");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);

  test("a leader cut off from etcd but not from clients stops acknowledging within its lease, then follows", async () => {
    const started = await running("cutoff", seeded(SEED + 2));
    await using cluster = started.cluster;
    const { workload, leader } = started;
    const cutAtMs = performance.now();
    cluster.node(leader).etcdLink.cut();
    await workload.resumed(0, 20, "produce to partition 0 to resume on a new leader", leader);
    expect(workload.acksFrom(leader, cutAtMs + FAULT_LEASE_TTL_MS)).toBe(0);
    cluster.node(leader).etcdLink.heal();
    await workload.resumed(0, 20, "produce to go on with the cut-off broker healed");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);

  test("etcd restarted mid-run: produce goes on afterwards and nothing is lost", async () => {
    const started = await running("etcd-restart", seeded(SEED + 3));
    await using cluster = started.cluster;
    const { workload } = started;
    await cluster.etcd.restart();
    await workload.resumed(0, 20, "produce to go on after etcd's restart");
    await workload.resumed(1, 20, "produce to partition 1 too");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);

  test("a follower restarted with a fresh high watermark, then the leader killed once it is back in the ISR, loses nothing", async () => {
    const started = await running("kip101", seeded(SEED + 4));
    await using cluster = started.cluster;
    const { workload, leader } = started;
    const follower = cluster.nodes.map((node) => node.brokerId).find((brokerId) => brokerId !== leader) as number;
    await cluster.kill(follower);
    await cluster.startBroker(follower);
    await waitFor(async () => (await cluster.metadata(TOPIC))?.partitions[0]?.isr.includes(follower) === true, 25_000, `broker ${follower} back in the ISR`);
    await cluster.kill(leader);
    await workload.resumed(0, 20, "produce to resume on a new leader", leader);
    await cluster.startBroker(leader);
    await workload.resumed(0, 10, "produce to go on with every broker back");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);

  test("the controller paused past its lease, then resumed: another controls, produce goes on, nothing is lost", async () => {
    const started = await running("paused-controller", seeded(SEED + 5));
    await using cluster = started.cluster;
    const { workload } = started;
    const gateway = new EtcdGateway({ endpoints: [cluster.etcd.endpoint], requestTimeoutMs: 2000 });
    const layout = new EtcdLayout("paused-controller");
    const controllerOf = async () => {
      const stored = (await gateway.range(layout.controllerKey)).kvs[0];
      return stored === undefined ? null : (JSON.parse(stored.value) as { brokerId: number }).brokerId;
    };
    const paused = (await controllerOf()) as number;
    cluster.signal(paused, "SIGSTOP");
    await waitFor(async () => ![null, paused].includes(await controllerOf()), 20_000, "another broker to take the controller");
    await workload.resumed(0, 10, "produce to partition 0 with the controller paused", paused);
    cluster.signal(paused, "SIGCONT");
    await workload.resumed(0, 10, "produce to partition 0 after the old controller woke");
    await workload.resumed(1, 10, "produce to partition 1 after the old controller woke");
    expect(await finish(cluster, workload)).toEqual([]);
  }, 60_000);
});
