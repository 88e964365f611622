/**
 * End to end (issue 14, "adding a broker and moving partitions"): etcd and two `runnel serve
 * --cluster` processes, a topic of 3 partitions, replication factor 2 and min ISR 2, filled with
 * some megabytes, then an idempotent producer with `replicated` durability recording every
 * acknowledgement. A third broker starts, `rebalance` spreads the replicas over the three, and
 * the moves complete while the producer runs. Then: broker 3 holds byte-identical copies of the
 * partitions moved to it, no acknowledged value is lost or stored twice, and a broker moved off a
 * partition holds none of its records any more. A move to a broker that dies stays pending, is
 * listed, and can be cancelled.
 *
 * RUNNEL_REASSIGN_MB sets how much is stored before the move (default 6; the figure in
 * docs/cluster.md used more). Needs `etcd` (Debian etcd-server).
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { Admin } from "../../src/client/admin.ts";
import { alterPartitionReassignment, listPartitionReassignments, rebalance } from "../../src/client/reassignments.ts";
import { readClusterStatus } from "../../src/cluster/cluster-status.ts";
import { EtcdGateway } from "../../src/cluster/etcd-gateway.ts";
import { EtcdLayout } from "../../src/cluster/etcd-layout.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { waitFor } from "../durability/broker-process.ts";
import { tempDir } from "../server/helpers.ts";
import { etcdOrSkip, TcpProxy } from "./etcd-harness.ts";
import { audit, type PartitionMeta, ProcessCluster, replicaValues, Workload } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("reassignment-processes.test.ts");
const TOPIC = "orders";
const PARTITIONS = 3;
const FILL_MB = Number(process.env.RUNNEL_REASSIGN_MB ?? 6);
const RECORD_BYTES = 1024;
const RECORDS_PER_BATCH = 256;

function addBroker(cluster: ProcessCluster, brokerId: number): Promise<void> {
  cluster.nodes.push({ brokerId, dataDir: tempDir(`runnel-reassign-${brokerId}-`), etcdLink: new TcpProxy(cluster.etcd.clientPort), link: null, process: null });
  return cluster.startBroker(brokerId);
}

function portOf(cluster: ProcessCluster, brokerId: number): number {
  return cluster.node(brokerId).process?.port as number;
}

/** Stores about FILL_MB over the partitions, replicated, through each leader. */
async function fill(cluster: ProcessCluster): Promise<void> {
  const meta = await cluster.metadata(TOPIC);
  const payload = "x".repeat(RECORD_BYTES - 32);
  const batches = Math.ceil((FILL_MB * 1024 * 1024) / (RECORD_BYTES * RECORDS_PER_BATCH) / PARTITIONS);
  await Promise.all(
    (meta?.partitions ?? []).map(async ({ partition, leader }) => {
      for (let batch = 0; batch < batches; batch++) {
        const records = Array.from({ length: RECORDS_PER_BATCH }, (_, index) => ({ value: `fill-${partition}-${batch}-${index}-${payload}` }));
        const answer = await cluster.connection(leader).request("produce", { durability: "replicated", batches: [{ topic: TOPIC, partition, batch: encodeBatch(records) }] }, 20_000);
        expect((answer.results as WireMap[])[0]?.error).toBeUndefined();
      }
    }),
  );
}

/** The replicas of each partition as broker `brokerId` sees them. */
async function replicasOf(cluster: ProcessCluster, brokerId: number): Promise<Map<number, PartitionMeta & { replicas: number[] }>> {
  const answer = await cluster.connection(brokerId).request("metadata", { topics: [TOPIC] }, 2000);
  const metas = ((answer.topics as WireMap[])[0]?.partitions ?? []) as Array<PartitionMeta & { replicas: number[] }>;
  return new Map(metas.map((meta) => [meta.partition, meta]));
}

/** No move in progress, every replica in the ISR, and each partition's replicas at one log end. */
async function waitSettled(cluster: ProcessCluster, admin: Admin, timeoutMs: number): Promise<Map<number, number[]>> {
  let replicas = new Map<number, number[]>();
  await waitFor(
    async () => {
      try {
        if ((await listPartitionReassignments(admin, [TOPIC])).length > 0) return false;
        const view = await replicasOf(cluster, 1);
        replicas = new Map([...view].map(([partition, meta]) => [partition, meta.replicas]));
        for (const meta of view.values()) {
          if (meta.leader < 0 || meta.replicas.some((id) => !meta.isr.includes(id))) return false;
          const ends = await Promise.all(meta.replicas.map(async (id) => (await replicasOf(cluster, id)).get(meta.partition)?.nextOffset));
          if (new Set(ends).size !== 1) return false;
        }
        return true;
      } catch {
        return false;
      }
    },
    timeoutMs,
    "every reassignment complete and every replica in sync",
  );
  return replicas;
}

describe.skipIf(!HAVE_ETCD)("adding a broker and moving partitions to it, as processes", () => {
  test("a rebalance moves replicas to a new broker under load without losing or duplicating an acknowledged value", async () => {
    await using cluster = await ProcessCluster.start("reassign", 2);
    await cluster.createTopic(TOPIC, PARTITIONS);
    await fill(cluster);
    const workload = new Workload(cluster, TOPIC, PARTITIONS);
    await workload.start();
    await workload.resumed(0, 10, "the producer to get going");

    await addBroker(cluster, 3);
    await waitFor(async () => (await cluster.liveBrokerIds()).length === 3, 20_000, "broker 3 to join");
    await using admin = adminOf(cluster, 1);
    const startedMs = performance.now();
    const moves = await rebalance(admin, { dryRun: false });
    const after = await waitSettled(cluster, admin, 60_000);
    const tookMs = performance.now() - startedMs;
    const movedToThree = moves.filter((move) => move.to.includes(3) && !move.from.includes(3)).map((move) => move.partition);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      await workload.resumed(partition, 5, `produce to partition ${partition} after the move`).catch((error: unknown) => {
        if (process.env.RUNNEL_FAULT_LOGS !== undefined) {
          fs.writeFileSync(process.env.RUNNEL_FAULT_LOGS, cluster.nodes.map((node) => `broker ${node.brokerId}:\n${(node.process?.lines ?? []).join("\n")}`).join("\n\n"));
        }
        throw error;
      });
    }

    // A move to a broker that dies stays pending, is reported, and can be cancelled.
    await addBroker(cluster, 4);
    await waitFor(async () => (await cluster.liveBrokerIds()).includes(4), 20_000, "broker 4 to join");
    cluster.signal(4, "SIGSTOP");
    const before = after.get(0) as number[];
    const pending = await alterPartitionReassignment(admin, TOPIC, 0, [...before, 4]);
    expect(pending.addingReplicas).toEqual([4]);
    await waitFor(async () => !(await cluster.liveBrokerIds()).includes(4), 20_000, "stopped broker 4 to leave the cluster");
    await workload.resumed(0, 5, "produce to partition 0 while the move to broker 4 is pending");
    expect((await listPartitionReassignments(admin)).map((move) => [move.partition, move.addingReplicas])).toEqual([[0, [4]]]);
    const status = await readClusterStatus(new EtcdGateway({ endpoints: [`http://127.0.0.1:${cluster.etcd.clientPort}`], requestTimeoutMs: 5000 }), new EtcdLayout("reassign"));
    expect(status.reassigning.map((state) => state.partition)).toEqual([0]);
    await alterPartitionReassignment(admin, TOPIC, 0, null);
    const final = await waitSettled(cluster, admin, 30_000);
    expect(final.get(0)).toEqual(before);
    await cluster.kill(4);

    await workload.stop();
    await waitSettled(cluster, admin, 30_000);
    await cluster.stopAll();
    const holders = new Map([...final].map(([partition, replicas]) => [partition, replicas]));
    const { problems, stored } = await audit(cluster, TOPIC, PARTITIONS, workload.record, holders);
    const leftovers: string[] = [];
    for (const [partition, replicas] of final) {
      for (const brokerId of [1, 2, 3]) {
        if (replicas.includes(brokerId)) continue;
        const held = (await replicaValues(cluster.node(brokerId).dataDir, TOPIC, partition)).values.length;
        if (held > 0) leftovers.push(`broker ${brokerId} still holds ${held} records of ${TOPIC}/${partition}`);
      }
    }
    let copiedBytes = 0;
    for (const partition of movedToThree) copiedBytes += (await replicaValues(cluster.node(3).dataDir, TOPIC, partition)).bytes.length;
    console.log(
      `rebalance with ${FILL_MB} MB stored: ${moves.length} partition(s) changed, ${movedToThree.length} copied to broker 3 (${(copiedBytes / 1024 / 1024).toFixed(1)} MB there at the end), moves done in ${Math.round(tookMs)} ms; ${workload.acks} acknowledged, ${stored} stored`,
    );
    expect(movedToThree.length).toBeGreaterThan(0);
    for (const partition of movedToThree) expect(final.get(partition)).toContain(3);
    expect([...final.values()].filter((replicas) => replicas.includes(3)).length).toBe(2);
    expect(problems).toEqual([]);
    expect(leftovers).toEqual([]);
  }, 150_000);
});

function adminOf(cluster: ProcessCluster, brokerId: number): Admin & AsyncDisposable {
  const admin = new Admin({ broker: `127.0.0.1:${portOf(cluster, brokerId)}`, connectTimeoutMs: 5000, requestTimeoutMs: 10_000 });
  return Object.assign(admin, { [Symbol.asyncDispose]: () => admin.close() });
}
