/**
 * The native reassignment ops against two in-process brokers on a real etcd: what a request
 * writes, each validation refusal (INVALID_REPLICA_ASSIGNMENT, UNKNOWN_TOPIC, UNKNOWN_PARTITION),
 * a move that shrinks the replica count completing and the removed broker emptying its copy,
 * cancelling; and outside a cluster, or without alter on the cluster, refusals.
 *
 * Needs `etcd` (Debian etcd-server). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { Admin } from "../../src/client/admin.ts";
import { Connection } from "../../src/client/connection.ts";
import { alterPartitionReassignment, listPartitionReassignments } from "../../src/client/reassignments.ts";
import { startTestBroker, tempDir, type TestBroker } from "../server/helpers.ts";
import { clusterBrokerOptions, type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";
import { batchOf, eventually, produce } from "./harness.ts";

const HAVE_ETCD = etcdOrSkip("reassignment-requests.test.ts");

async function codeOf(pending: Promise<unknown>): Promise<string | undefined> {
  try {
    await pending;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe.skipIf(!HAVE_ETCD)("partition reassignment requests on an etcd cluster", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  const clusterBroker = (brokerId: number): Promise<TestBroker> =>
    startTestBroker(clusterBrokerOptions(etcd, "requests", brokerId));

  test("a move is validated, written, completed by the controller, and the broker left out empties its copy", async () => {
    await using one = await clusterBroker(1);
    await using two = await clusterBroker(2);
    await eventually(() => [one, two].every((node) => node.broker.context.cluster?.brokers().length === 2), "both brokers live");
    const admin = new Admin({ broker: `127.0.0.1:${one.port}` });
    try {
      await admin.createTopic("moves", { partitions: 1, replicationFactor: 2, minInsyncReplicas: 1 });
      await eventually(() => [one, two].every((node) => node.broker.context.log.hasTopic("moves")), "both copies created");
      const state = () => one.broker.context.cluster?.partitionState("moves", 0);
      const leader = state()?.leader as number;
      const follower = leader === 1 ? 2 : 1;
      const leaderNode = leader === 1 ? one : two;
      const followerNode = leader === 1 ? two : one;
      const toLeader = new Connection({ broker: `127.0.0.1:${leaderNode.port}` });
      for (let round = 0; round < 3; round++) expect((await produce(toLeader, "moves", 0, batchOf(`r${round}`), "replicated")).error).toBeUndefined();
      toLeader.abort();
      await eventually(() => followerNode.broker.context.log.partition("moves", 0).nextOffset === 9, "the follower has every record");

      expect(await codeOf(alterPartitionReassignment(admin, "moves", 0, []))).toBe("INVALID_REPLICA_ASSIGNMENT");
      expect(await codeOf(alterPartitionReassignment(admin, "moves", 0, [1, 1]))).toBe("INVALID_REPLICA_ASSIGNMENT");
      expect(await codeOf(alterPartitionReassignment(admin, "moves", 0, [1, 9]))).toBe("INVALID_REPLICA_ASSIGNMENT");
      expect(await codeOf(alterPartitionReassignment(admin, "moves", 0, null))).toBe("INVALID_REPLICA_ASSIGNMENT");
      expect(await codeOf(alterPartitionReassignment(admin, "nothing", 0, [1]))).toBe("UNKNOWN_TOPIC");
      expect(await codeOf(alterPartitionReassignment(admin, "moves", 4, [1]))).toBe("UNKNOWN_PARTITION");
      expect(await listPartitionReassignments(admin)).toEqual([]);

      // Down to the follower alone: leadership moves to it, the old leader leaves and empties its copy.
      const started = await alterPartitionReassignment(admin, "moves", 0, [follower]);
      expect(started.removingReplicas).toEqual([leader]);
      await eventually(() => state()?.replicas.join(",") === String(follower), "the move to complete", 20_000);
      expect(state()?.leader).toBe(follower);
      expect(state()?.isr).toEqual([follower]);
      await eventually(() => leaderNode.broker.context.log.partition("moves", 0).nextOffset === 0, "the old leader to empty its copy");
      expect(followerNode.broker.context.log.partition("moves", 0).nextOffset).toBe(9);
      expect(await listPartitionReassignments(admin)).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 60_000);
});

describe.skipIf(!HAVE_ETCD)("a broker moved off a partition while it was down", () => {
  let etcd: EtcdServer;
  const dirs = [tempDir("runnel-offline-1-"), tempDir("runnel-offline-2-")];
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  const clusterBroker = (brokerId: number): Promise<TestBroker> =>
    startTestBroker({ ...clusterBrokerOptions(etcd, "offline", brokerId), dataDir: dirs[brokerId - 1] as string });

  test("empties its copy when it starts again", async () => {
    const nodes = new Map([[1, await clusterBroker(1)], [2, await clusterBroker(2)]]);
    try {
      await eventually(() => nodes.get(1)?.broker.context.cluster?.brokers().length === 2, "both brokers live");
      const admin = new Admin({ broker: `127.0.0.1:${nodes.get(1)?.port}` });
      await admin.createTopic("away", { partitions: 1, replicationFactor: 2, minInsyncReplicas: 1 });
      await eventually(() => [...nodes.values()].every((node) => node.broker.context.log.hasTopic("away")), "both copies created");
      const leader = nodes.get(1)?.broker.context.cluster?.partitionState("away", 0)?.leader as number;
      const follower = leader === 1 ? 2 : 1;
      const toLeader = new Connection({ broker: `127.0.0.1:${nodes.get(leader)?.port}` });
      expect((await produce(toLeader, "away", 0, batchOf("kept"), "replicated")).error).toBeUndefined();
      toLeader.abort();
      await eventually(() => nodes.get(follower)?.broker.context.log.partition("away", 0).nextOffset === 3, "the follower's copy");
      await nodes.get(follower)?.[Symbol.asyncDispose]();
      nodes.delete(follower);

      const survivor = nodes.get(leader) as TestBroker;
      await eventually(() => survivor.broker.context.cluster?.brokers().length === 1, "the follower gone");
      const mover = new Admin({ broker: `127.0.0.1:${survivor.port}` });
      await alterPartitionReassignment(mover, "away", 0, [leader]);
      await eventually(() => survivor.broker.context.cluster?.partitionState("away", 0)?.replicas.join(",") === String(leader), "the move to complete", 20_000);
      await mover.close();
      await admin.close();

      const back = await clusterBroker(follower);
      nodes.set(follower, back);
      await eventually(() => back.broker.context.log.partition("away", 0).nextOffset === 0, "the returning broker to empty its copy");
      expect(survivor.broker.context.log.partition("away", 0).nextOffset).toBe(3);
    } finally {
      for (const node of nodes.values()) await node[Symbol.asyncDispose]();
    }
  }, 60_000);
});

const ROOT = path.resolve(import.meta.dir, "../..");

/** Runs the CLI as a child process (asynchronously: the brokers answering it run in this one). */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, "src/main.ts", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe.skipIf(!HAVE_ETCD)("runnel cluster rebalance and reassign", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  const clusterBroker = (brokerId: number): Promise<TestBroker> =>
    startTestBroker(clusterBrokerOptions(etcd, "cli", brokerId));

  test("a dry run prints the plan and changes nothing; rebalance applies it; reassign needs --replicas or --cancel", async () => {
    await using one = await clusterBroker(1);
    const admin = new Admin({ broker: `127.0.0.1:${one.port}` });
    await admin.createTopic("crowded", { partitions: 4, replicationFactor: 1 });
    await admin.close();
    await using two = await clusterBroker(2);
    await eventually(() => one.broker.context.cluster?.brokers().length === 2, "broker 2 live");
    const broker = `127.0.0.1:${one.port}`;
    const placement = () => [0, 1, 2, 3].map((partition) => one.broker.context.cluster?.partitionState("crowded", partition)?.replicas.join(","));
    expect(placement()).toEqual(["1", "1", "1", "1"]);

    const dry = await cli("cluster", "rebalance", "--broker", broker, "--dry-run", "--format", "json");
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as { dryRun: boolean; moves: Array<{ partition: number; to: number[] }> };
    expect(plan.dryRun).toBe(true);
    expect(plan.moves.map((move) => move.to)).toEqual([[2], [2]]);
    expect(placement()).toEqual(["1", "1", "1", "1"]);

    const applied = await cli("cluster", "rebalance", "--broker", broker);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain("2 partition(s) to move");
    await eventually(() => placement().filter((replicas) => replicas === "2").length === 2, "two partitions moved to broker 2", 20_000);
    await eventually(() => two.broker.context.log.hasTopic("crowded"), "broker 2's copy");

    const usage = await cli("cluster", "reassign", "--broker", broker, "--topic", "crowded", "--partition", "0");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("--replicas");
    const moved = await cli("cluster", "reassign", "--broker", broker, "--topic", "crowded", "--partition", "0", "--replicas", "1,2");
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain("reassignment started");
    await eventually(() => placement()[0] === "1,2", "partition 0 on both brokers", 20_000);
  }, 60_000);
});

describe("partition reassignment requests outside a cluster", () => {
  test("a single node answers INVALID_REQUEST, and without alter on the cluster AUTHORIZATION_FAILED", async () => {
    await using single = await startTestBroker({ kafkaPort: -1 });
    const admin = new Admin({ broker: `127.0.0.1:${single.port}` });
    await using guarded = await startTestBroker({ kafkaPort: -1, authorizer: "acl" });
    const anonymous = new Admin({ broker: `127.0.0.1:${guarded.port}` });
    try {
      expect(await codeOf(alterPartitionReassignment(admin, "t", 0, [1]))).toBe("INVALID_REQUEST");
      expect(await codeOf(listPartitionReassignments(admin))).toBe("INVALID_REQUEST");
      expect(await codeOf(alterPartitionReassignment(anonymous, "t", 0, [1]))).toBe("AUTHORIZATION_FAILED");
      expect(await codeOf(listPartitionReassignments(anonymous))).toBe("AUTHORIZATION_FAILED");
    } finally {
      await admin.close();
      await anonymous.close();
    }
  });
});
