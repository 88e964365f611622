/**
 * On-demand preferred-leader election with the automatic rebalance off, as processes (etcd and
 * three `runnel serve --cluster`): after a broker's controlled restart its partition stays on
 * another leader, `runnel cluster status` lists it as electable, and the native `electLeaders`
 * op, `runnel cluster elect-leaders` and Kafka ElectLeaders (key 43) each bring leadership back to
 * the preferred leader.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import * as path from "node:path";
import { describe, expect, test } from "bun:test";
import type { ClusterStatus } from "../../src/cluster/cluster-status.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { API_KEYS } from "../../src/listeners/kafka/definitions.ts";
import { waitFor } from "../durability/broker-process.ts";
import { RawKafka } from "../listeners/kafka/raw-kafka.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { ProcessCluster } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("elect-leaders.test.ts");
const ROOT = path.resolve(import.meta.dir, "../..");
const TOPIC = "orders";
const PARTITIONS = 3;

/** Runs `runnel cluster ...` without blocking this process (the brokers reach etcd through its proxies). */
async function runCli(args: string[]): Promise<{ code: number; json: Record<string, unknown> }> {
  const child = Bun.spawn([process.execPath, "src/main.ts", "cluster", ...args, "--format", "json"], { cwd: ROOT, stdout: "pipe", stderr: "ignore", timeout: 30_000 });
  const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  return { code, json: JSON.parse(stdout) as Record<string, unknown> };
}

/** SIGTERM `brokerId`, restart it, and wait until it is back in every ISR. */
async function restart(cluster: ProcessCluster, brokerId: number): Promise<void> {
  expect((await cluster.terminate(brokerId)).code).toBe(0);
  await cluster.startBroker(brokerId);
  await waitFor(async () => (await cluster.metadata(TOPIC))?.partitions.every((partition) => partition.isr.includes(brokerId)) === true, 30_000, `broker ${brokerId} back in every ISR`);
}

async function leaderOf(cluster: ProcessCluster, preferred: number): Promise<number | undefined> {
  return (await cluster.metadata(TOPIC))?.partitions.find((partition) => partition.replicas[0] === preferred)?.leader;
}

describe.skipIf(!HAVE_ETCD)("preferred-leader election on demand, as processes", () => {
  test("a restarted broker's partition waits off its preferred leader until electLeaders, runnel cluster elect-leaders or Kafka ElectLeaders", async () => {
    await using cluster = await ProcessCluster.start("elect", 3, "short", { args: ["--auto-leader-rebalance-enable", "false"] });
    await cluster.createTopic(TOPIC, PARTITIONS);
    const url = `etcd://127.0.0.1:${cluster.etcd.clientPort}/elect`;

    await restart(cluster, 1);
    expect(await leaderOf(cluster, 1)).not.toBe(1);
    const status = (await runCli(["status", "--cluster", url])).json as unknown as ClusterStatus;
    expect(status.draining).toEqual([]);
    expect(status.notPreferred.map((partition) => ({ preferred: partition.replicas[0], electable: partition.electable }))).toEqual([{ preferred: 1, electable: true }]);

    const answer = await cluster.connection(2).request("electLeaders", { topic: TOPIC }, 20_000);
    const outcomes = (answer.results as WireMap[]).map((result) => `${result.preferred}:${result.outcome}`).sort();
    expect(outcomes).toEqual(["1:elected", "2:alreadyPreferred", "3:alreadyPreferred"]);
    expect(await leaderOf(cluster, 1)).toBe(1);

    await restart(cluster, 2);
    expect(await leaderOf(cluster, 2)).not.toBe(2);
    const elected = await runCli(["elect-leaders", "--cluster", url, "--topic", TOPIC]);
    expect(elected.code).toBe(0);
    expect((elected.json.results as Array<{ preferred: number; outcome: string }>).filter((result) => result.outcome === "elected").map((result) => result.preferred)).toEqual([2]);
    expect(await leaderOf(cluster, 2)).toBe(2);
    expect(((await runCli(["status", "--cluster", url])).json as unknown as ClusterStatus).notPreferred).toEqual([]);

    await restart(cluster, 3);
    expect(await leaderOf(cluster, 3)).not.toBe(3);
    const kafkaAddress = String(cluster.node(1).process?.startLine.kafka);
    await using kafka = await RawKafka.connect(Number(kafkaAddress.split(":").at(-1)));
    const kafkaAnswer = await kafka.request(API_KEYS.electLeaders, 2, { electionType: 0, topicPartitions: [{ topic: TOPIC, partitions: [0, 1, 2, 7] }], timeoutMs: 20_000 });
    const meta = await cluster.metadata(TOPIC);
    const preferredOf = (partition: number) => meta?.partitions.find((entry) => entry.partition === partition)?.replicas[0];
    const codes = ((kafkaAnswer.replicaElectionResults as WireMap[])[0]?.partitionResult as WireMap[]).map((result) => [preferredOf(result.partitionId as number) ?? "none", result.errorCode]);
    expect(codes.sort()).toEqual([[1, 84], [2, 84], [3, 0], ["none", 3]]);
    expect(await leaderOf(cluster, 3)).toBe(3);
  }, 120_000);

  test("electLeaders refuses partitions without a topic, and a topic the cluster lacks", async () => {
    await using cluster = await ProcessCluster.start("elect-refusals", 3, "short");
    await expect(cluster.connection(1).request("electLeaders", { partitions: [0] })).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    await expect(cluster.connection(1).request("electLeaders", { topic: "nope" })).rejects.toMatchObject({ code: "UNKNOWN_TOPIC" });
  }, 60_000);
});
