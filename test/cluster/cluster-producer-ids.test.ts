/**
 * Cluster-wide producer ids on a real etcd: blocks reserved by compare-and-swap never overlap,
 * even when brokers race for them; allocators of different brokers never hand out one id; an id
 * another broker issued counts as issued here once the watch brings the counter; before the
 * first block a cluster broker hands out nothing.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { ID_BLOCK, ProducerIdAllocator } from "../../src/broker/producer-ids.ts";
import { reserveProducerIdBlock } from "../../src/cluster/cluster-producer-ids.ts";
import { EtcdClusterView } from "../../src/cluster/etcd-cluster-view.ts";
import { EtcdGateway } from "../../src/cluster/etcd-gateway.ts";
import { EtcdLayout } from "../../src/cluster/etcd-layout.ts";
import { RunnelError } from "../../src/errors.ts";
import { silentLogger } from "../../src/logger.ts";
import { tempDir } from "../server/helpers.ts";
import { type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("cluster-producer-ids.test.ts");

/** initialize, retried while the next block is still on its way from etcd (bounded). */
async function initializeRetrying(ids: ProducerIdAllocator): Promise<{ producerId: number }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return ids.initialize({});
    } catch (error) {
      if (!(error instanceof RunnelError) || error.code !== "CLUSTER_UNAVAILABLE" || Date.now() > deadline) throw error;
      await Bun.sleep(20);
    }
  }
}

describe.skipIf(!HAVE_ETCD)("cluster-wide producer ids", () => {
  let etcd: EtcdServer;
  const dirs: string[] = [];
  const views: EtcdClusterView[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    for (const view of views) await view.close();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    await etcd[Symbol.asyncDispose]();
  });

  function allocator(): ProducerIdAllocator {
    const dir = tempDir("runnel-pids-");
    dirs.push(dir);
    return ProducerIdAllocator.open(dir);
  }

  async function join(cluster: string, brokerId: number): Promise<EtcdClusterView> {
    const view = await EtcdClusterView.start({
      endpoints: [etcd.endpoint],
      cluster,
      self: { brokerId, host: "127.0.0.1", port: 9000 + brokerId, kafkaPort: null },
      leaseTtlMs: 3000,
      fenceMarginMs: 1000,
      logger: silentLogger(),
    });
    views.push(view);
    return view;
  }

  test("blocks reserved by racing brokers never overlap and together cover the counter", async () => {
    const gateway = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 2000 });
    const layout = new EtcdLayout("race");
    const blocks = await Promise.all(Array.from({ length: 8 }, () => reserveProducerIdBlock(gateway, layout, 10)));
    const sorted = [...blocks].sort((left, right) => left.start - right.start);
    expect(sorted.map((block) => [block.start, block.end])).toEqual(Array.from({ length: 8 }, (_, index) => [index * 10, index * 10 + 10]));
  });

  test("two brokers' allocators hand out disjoint ids, and each knows the other's as issued", async () => {
    const [one, two] = [await join("alloc", 1), await join("alloc", 2)];
    const [first, second] = [allocator(), allocator()];
    await first.useCluster(one);
    await second.useCluster(two);
    const ids = (from: ProducerIdAllocator) => Array.from({ length: 5 }, () => from.initialize({}).producerId);
    const fromFirst = ids(first);
    const fromSecond = ids(second);
    expect(new Set([...fromFirst, ...fromSecond]).size).toBe(10);
    const deadline = Date.now() + 10_000;
    while (!(first.isIssued(fromSecond[0] as number) && second.isIssued(fromFirst[0] as number)) && Date.now() < deadline) await Bun.sleep(20);
    expect(first.isIssued(fromSecond[0] as number)).toBe(true);
    expect(second.isIssued(fromFirst[0] as number)).toBe(true);
    expect(first.isIssued(2 * ID_BLOCK + 5)).toBe(false);
  });

  test("an allocator keeps handing out ids past its first block, reserving the next in the background", async () => {
    const view = await join("refill", 1);
    const ids = allocator();
    await ids.useCluster(view);
    const handed = new Set<number>();
    for (let index = 0; index < ID_BLOCK; index += 1) handed.add(ids.initialize({}).producerId);
    for (let index = 0; index < 10; index += 1) handed.add((await initializeRetrying(ids)).producerId);
    expect(handed.size).toBe(ID_BLOCK + 10);
  });

  test("a cluster broker that has not joined yet hands out no id (CLUSTER_UNAVAILABLE, retriable)", () => {
    const ids = allocator();
    ids.expectCluster();
    let caught: unknown;
    try {
      ids.initialize({});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RunnelError);
    expect((caught as RunnelError).code).toBe("CLUSTER_UNAVAILABLE");
  });
});
