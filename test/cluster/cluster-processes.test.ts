/**
 * `runnel serve --cluster ... --broker-id N` as real processes on one etcd, and `runnel cluster
 * status`: three brokers join and elect one controller; SIGKILL of the controller's broker moves
 * the controller and its partitions' leadership (higher epoch, leaders from the ISR) within the
 * lease TTL, and status then reports the under-replicated partitions (exit 3); a fourth broker
 * started with a live id refuses to start with BROKER_ID_IN_USE.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ClusterStatus } from "../../src/cluster/cluster-status.ts";
import { Admin } from "../../src/client/admin.ts";
import { type BrokerProcess, spawnBroker, waitFor } from "../durability/broker-process.ts";
import { tempDir } from "../server/helpers.ts";
import { type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("cluster-processes.test.ts");
const ROOT = path.resolve(import.meta.dir, "../..");

describe.skipIf(!HAVE_ETCD)("runnel serve --cluster, as processes", () => {
  let etcd: EtcdServer;
  const dirs: string[] = [];
  const processes: BrokerProcess[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await Promise.all(processes.map((broker) => broker.kill()));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    await etcd[Symbol.asyncDispose]();
  });

  const url = () => `etcd://127.0.0.1:${etcd.clientPort}/procs`;
  const clusterArgs = (brokerId: number) => ["--cluster", url(), "--broker-id", String(brokerId), "--cluster-lease-ttl-ms", "2000", "--cluster-fence-margin-ms", "500"];

  function status(): { code: number; status: ClusterStatus | null; stderr: string } {
    const result = Bun.spawnSync([process.execPath, "src/main.ts", "cluster", "status", "--cluster", url(), "--format", "json"], { cwd: ROOT, timeout: 20_000 });
    const stdout = result.stdout.toString();
    return { code: result.exitCode ?? -1, status: stdout.trim() === "" ? null : (JSON.parse(stdout) as ClusterStatus), stderr: result.stderr.toString() };
  }

  test("three brokers join, one controls; SIGKILL of the controller moves it and its leaderships", async () => {
    for (const brokerId of [1, 2, 3]) {
      const dir = tempDir("runnel-cluster-");
      dirs.push(dir);
      processes.push(await spawnBroker(dir, 0, clusterArgs(brokerId)));
    }
    await waitFor(() => status().status?.brokers.length === 3 && status().status?.controller !== null, 15_000, "three brokers and a controller");
    const admin = new Admin({ broker: `127.0.0.1:${processes[0]?.port}` });
    await admin.createTopic("procs", { partitions: 3, replicationFactor: 3, minInsyncReplicas: 2 });
    await admin.close();
    const healthy = status();
    expect(healthy.code).toBe(0);
    expect(healthy.status?.partitions).toBe(3);
    const controller = healthy.status?.controller as number;
    await processes[controller - 1]?.kill();
    await waitFor(
      () => {
        const now = status().status;
        return now !== null && now.brokers.length === 2 && now.controller !== null && now.controller !== controller && now.underReplicated.length === 3;
      },
      15_000,
      "the controller to move and every partition to drop the dead broker",
    );
    const degraded = status();
    expect(degraded.code).toBe(3);
    for (const partition of degraded.status?.underReplicated ?? []) {
      expect(partition.leader).not.toBe(controller);
      expect(partition.isr).not.toContain(controller);
      expect(partition.isr.length).toBe(2);
    }
    const moved = (degraded.status?.underReplicated ?? []).filter((partition) => partition.leaderEpoch > 0);
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.every((partition) => partition.leaderEpoch === 1)).toBe(true);
  }, 60_000);

  test("a broker started with a live broker id exits 1 naming BROKER_ID_IN_USE", () => {
    const dir = tempDir("runnel-cluster-");
    dirs.push(dir);
    const live = status().status?.brokers[0]?.brokerId as number;
    const result = Bun.spawnSync([process.execPath, "src/main.ts", "serve", "--port", "0", "--http-port", "-1", "--kafka-port", "-1", "--data-dir", dir, ...clusterArgs(live)], { cwd: ROOT, timeout: 20_000 });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.toString()).toContain(`broker id ${live} is already live in cluster procs`);
    expect(result.stderr.toString()).toContain("[BROKER_ID_IN_USE]");
  }, 30_000);
});
