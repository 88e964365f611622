/**
 * The etcd control plane with three in-process brokers (EtcdClusterView) on one real etcd:
 * membership, the controller election, failover of partition leaders from the ISR, the zombie
 * controller refused, ISR proposals by compare-and-swap, topic placement, and self-fencing when a
 * broker is cut off from etcd (through a TCP proxy) or its event loop stalls.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ClusterEvent, PartitionState } from "../../src/cluster/cluster-view.ts";
import { Controller, planPartition } from "../../src/cluster/controller.ts";
import { EtcdClusterView } from "../../src/cluster/etcd-cluster-view.ts";
import { EtcdGateway } from "../../src/cluster/etcd-gateway.ts";
import { EtcdLayout } from "../../src/cluster/etcd-layout.ts";
import { placeReplicas } from "../../src/cluster/cluster-topics.ts";
import { RunnelError } from "../../src/errors.ts";
import { silentLogger } from "../../src/logger.ts";
import { type EtcdServer, etcdOrSkip, startEtcd, TcpProxy } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("etcd-cluster-view.test.ts");
/** etcd's shortest lease; keeps failover tests short. */
const TTL_MS = 2000;
const MARGIN_MS = 500;

async function until(condition: () => boolean, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${boundMs} ms`);
    await Bun.sleep(20);
  }
}

function state(leader: number, leaderEpoch: number, isr: number[], replicas: number[]): PartitionState {
  return { leader, leaderEpoch, isr, replicas, version: 1 };
}

describe("planPartition (the controller's leader rule)", () => {
  test("a live leader with a live ISR needs no change", () => {
    expect(planPartition(state(1, 3, [1, 2], [1, 2, 3]), new Set([1, 2, 3]))).toBeNull();
  });
  test("a dead follower leaves the ISR; leader and epoch stay", () => {
    expect(planPartition(state(1, 3, [1, 2], [1, 2, 3]), new Set([1, 3]))).toEqual({ leader: 1, leaderEpoch: 3, isr: [1], replicas: [1, 2, 3] });
  });
  test("a dead leader is replaced by the first live ISR member in replica order, with the next epoch", () => {
    expect(planPartition(state(1, 3, [3, 1, 2], [1, 2, 3]), new Set([2, 3]))).toEqual({ leader: 2, leaderEpoch: 4, isr: [3, 2], replicas: [1, 2, 3] });
  });
  test("a live replica outside the ISR never becomes leader; the ISR keeps the last leader", () => {
    expect(planPartition(state(1, 3, [1], [1, 2, 3]), new Set([2, 3]))).toEqual({ leader: -1, leaderEpoch: 4, isr: [1], replicas: [1, 2, 3] });
  });
  test("a leaderless partition stays so until its ISR member returns, which then leads", () => {
    const leaderless = state(-1, 4, [1], [1, 2, 3]);
    expect(planPartition(leaderless, new Set([2, 3]))).toBeNull();
    expect(planPartition(leaderless, new Set([1, 2, 3]))).toEqual({ leader: 1, leaderEpoch: 5, isr: [1], replicas: [1, 2, 3] });
  });
});

describe("placeReplicas", () => {
  test("spreads replicas round-robin from the start index, each partition on distinct brokers", () => {
    expect(placeReplicas([3, 1, 2], 3, 2, 1)).toEqual([[2, 3], [3, 1], [1, 2]]);
  });
  test("refuses a replication factor above the live broker count", () => {
    expect(() => placeReplicas([1, 2], 1, 3, 0)).toThrow("replication factor 3 is more than the 2 live broker(s)");
  });
});

describe.skipIf(!HAVE_ETCD)("EtcdClusterView on a real etcd", () => {
  let etcd: EtcdServer;
  let clusterCount = 0;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  function join(cluster: string, brokerId: number, endpoint = etcd.endpoint): Promise<EtcdClusterView> {
    return EtcdClusterView.start({
      endpoints: [endpoint],
      cluster,
      self: { brokerId, host: "127.0.0.1", port: 9000 + brokerId, kafkaPort: null },
      leaseTtlMs: TTL_MS,
      fenceMarginMs: MARGIN_MS,
      requestTimeoutMs: 1000,
      logger: silentLogger(),
    });
  }

  /** Three brokers (ids 1, 2, 3) in a fresh cluster; closed by the caller's `using`. */
  async function threeBrokers(): Promise<{ cluster: string; views: EtcdClusterView[]; [Symbol.asyncDispose](): Promise<void> }> {
    clusterCount += 1;
    const cluster = `c${clusterCount}`;
    const views = [await join(cluster, 1), await join(cluster, 2), await join(cluster, 3)];
    await until(() => views.every((view) => view.brokers().length === 3 && view.controllerId() !== null));
    return { cluster, views, [Symbol.asyncDispose]: async () => void (await Promise.all(views.map((view) => view.close()))) };
  }

  test("three brokers see each other and elect exactly one controller", async () => {
    await using trio = await threeBrokers();
    expect(trio.views[0]?.brokers().map((broker) => broker.port)).toEqual([9001, 9002, 9003]);
    await Bun.sleep(200);
    expect(trio.views.filter((view) => view.isController()).length).toBe(1);
    expect(new Set(trio.views.map((view) => view.controllerId())).size).toBe(1);
    await until(() => trio.views.every((view) => view.mayLead()));
  });

  test("a broker id already live refuses start-up with BROKER_ID_IN_USE", async () => {
    const first = await join("dup", 7);
    const second = await join("dup", 7).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(RunnelError);
    expect((second as RunnelError).code).toBe("BROKER_ID_IN_USE");
    expect((second as RunnelError).message).toContain("broker id 7 is already live in cluster dup");
    await first.close();
    const again = await join("dup", 7); // a clean stop revoked the lease: the id is free at once
    await again.close();
  });

  test("when the controller's broker dies, another broker becomes controller", async () => {
    await using trio = await threeBrokers();
    const controller = trio.views.find((view) => view.isController()) as EtcdClusterView;
    const others = trio.views.filter((view) => view !== controller);
    await controller.abandon(); // no revoke: etcd notices only when the lease expires
    await until(() => others.some((view) => view.isController()) && others.every((view) => view.controllerId() !== controller.brokerId));
    expect(others.filter((view) => view.isController()).length).toBe(1);
  }, 30_000);

  test("a dead leader's partitions get new leaders from the ISR with a higher epoch; a dead follower leaves the ISR", async () => {
    await using trio = await threeBrokers();
    const [one] = trio.views as [EtcdClusterView];
    await one.createTopic("orders", 3, { replicationFactor: 2, minInsyncReplicas: 1 });
    await until(() => trio.views.every((view) => [0, 1, 2].every((partition) => view.partitionState("orders", partition) !== undefined)));
    const before = [0, 1, 2].map((partition) => one.partitionState("orders", partition) as PartitionState);
    const victim = trio.views.find((view) => !view.isController() && before.some((partitionState) => partitionState.leader === view.brokerId)) as EtcdClusterView;
    const survivors = trio.views.filter((view) => view !== victim);
    const observer = survivors[0] as EtcdClusterView;
    await victim.abandon();
    const settled = () => [0, 1, 2].every((partition) => !(observer.partitionState("orders", partition)?.isr ?? []).includes(victim.brokerId));
    await until(settled, 20_000);
    for (const [partition, old] of before.entries()) {
      const now = observer.partitionState("orders", partition) as PartitionState;
      if (old.leader === victim.brokerId) {
        expect(now.leader).not.toBe(victim.brokerId);
        expect(old.isr).toContain(now.leader);
        expect(now.leaderEpoch).toBe(old.leaderEpoch + 1);
      } else {
        expect(now.leader).toBe(old.leader);
        expect(now.leaderEpoch).toBe(old.leaderEpoch);
      }
      expect(now.isr).toEqual(old.isr.filter((id) => id !== victim.brokerId));
    }
  }, 30_000);

  test("a partition whose only in-sync replica dies has no leader until that broker returns, never a stale replica", async () => {
    await using trio = await threeBrokers();
    const [one] = trio.views as [EtcdClusterView];
    await one.createTopic("single", 1, { replicationFactor: 1, minInsyncReplicas: 1 });
    await until(() => trio.views.every((view) => view.partitionState("single", 0) !== undefined));
    const first = one.partitionState("single", 0) as PartitionState;
    const owner = trio.views.find((view) => view.brokerId === first.leader) as EtcdClusterView;
    const observer = trio.views.find((view) => view !== owner) as EtcdClusterView;
    await owner.abandon();
    await until(() => observer.partitionState("single", 0)?.leader === -1);
    expect(observer.partitionState("single", 0)).toMatchObject({ leader: -1, leaderEpoch: first.leaderEpoch + 1, isr: [owner.brokerId] });
    const back = await join(trio.cluster, owner.brokerId);
    trio.views.push(back);
    await until(() => observer.partitionState("single", 0)?.leader === owner.brokerId);
    expect(observer.partitionState("single", 0)).toMatchObject({ leaderEpoch: first.leaderEpoch + 2, isr: [owner.brokerId] });
  }, 30_000);

  test("a zombie controller's write is refused once another broker holds the controller key", async () => {
    const gateway = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 1000 });
    const layout = new EtcdLayout("zombie");
    const key = layout.partitionKey("t", 0);
    const initial = await gateway.put(key, JSON.stringify({ leader: 1, leaderEpoch: 0, isr: [1, 2], replicas: [1, 2] }));
    const source = { liveBrokerIds: () => new Set<number>(), partitions: () => [] };
    const quiet = { info() {}, warn() {} };
    const [leaseA, leaseB] = [await gateway.leaseGrant(5), await gateway.leaseGrant(5)];
    const zombie = new Controller(gateway, layout, 1, source, quiet);
    const successor = new Controller(gateway, layout, 2, source, quiet);
    expect(await zombie.campaign(leaseA.id)).toBe(true);
    expect(await successor.campaign(leaseB.id)).toBe(false);
    await gateway.leaseRevoke(leaseA.id); // as if A's lease expired while A was paused
    expect(await successor.campaign(leaseB.id)).toBe(true);
    const expected: PartitionState = { leader: 1, leaderEpoch: 0, isr: [1, 2], replicas: [1, 2], version: initial.revision };
    expect(await zombie.writePartition("t", 0, expected, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1, 2] })).toBe("deposed");
    expect(zombie.reign).toBeNull();
    expect((await gateway.range(key)).kvs[0]?.modRevision).toBe(initial.revision);
    expect(await successor.writePartition("t", 0, expected, { leader: 2, leaderEpoch: 1, isr: [2], replicas: [1, 2] })).toBe("written");
    expect(await successor.writePartition("t", 0, expected, { leader: 1, leaderEpoch: 2, isr: [1], replicas: [1, 2] })).toBe("stale");
    await gateway.leaseRevoke(leaseB.id);
  });

  test("the leader changes its ISR by compare-and-swap; a stale version or a non-leader gets null", async () => {
    await using trio = await threeBrokers();
    const [one] = trio.views as [EtcdClusterView];
    await one.createTopic("isr", 1, { replicationFactor: 3, minInsyncReplicas: 2 });
    await until(() => trio.views.every((view) => view.partitionState("isr", 0) !== undefined));
    const current = one.partitionState("isr", 0) as PartitionState;
    const leader = trio.views.find((view) => view.brokerId === current.leader) as EtcdClusterView;
    const follower = trio.views.find((view) => view.brokerId !== current.leader) as EtcdClusterView;
    expect(await follower.proposeIsr("isr", 0, follower.partitionState("isr", 0) as PartitionState, [follower.brokerId])).toBeNull();
    const shrunk = await leader.proposeIsr("isr", 0, current, [leader.brokerId]);
    expect(shrunk?.isr).toEqual([leader.brokerId]);
    expect(shrunk?.leaderEpoch).toBe(current.leaderEpoch);
    expect(await leader.proposeIsr("isr", 0, current, current.isr)).toBeNull();
    await until(() => follower.partitionState("isr", 0)?.version === shrunk?.version);
    expect(one.topicReplication("isr")).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
  });

  test("a replicated topic's leaders spread over the brokers and a second create is TOPIC_EXISTS", async () => {
    await using trio = await threeBrokers();
    const [one, two] = trio.views as [EtcdClusterView, EtcdClusterView];
    const replicas = await one.createTopic("spread", 6, { replicationFactor: 3, minInsyncReplicas: 2 });
    expect(replicas.every((set) => new Set(set).size === 3)).toBe(true);
    expect(new Set(replicas.map((set) => set[0])).size).toBe(3);
    await expect(two.createTopic("spread", 1, { replicationFactor: 1, minInsyncReplicas: 1 })).rejects.toThrow("already exists");
    const deleted: string[] = [];
    two.subscribe((event) => event.kind === "topicDeleted" && deleted.push(event.topic));
    expect(await one.deleteTopic("spread")).toBe(true);
    await until(() => deleted.includes("spread"));
    expect(two.partitionState("spread", 0)).toBeUndefined();
  });

  test("a broker cut off from etcd fences itself before its lease expires in etcd, and rejoins when healed", async () => {
    using proxy = new TcpProxy(etcd.clientPort);
    const watcher = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 1000 });
    const view = await join("fence", 5, proxy.endpoint);
    const brokerKey = new EtcdLayout("fence").brokerKey(5);
    const events: ClusterEvent["kind"][] = [];
    view.subscribe((event) => events.push(event.kind));
    // What the broker thought of itself at the moment this process learnt that etcd let its lease go.
    let leadingWhenExpired: boolean | null = null;
    const expiry = watcher.watchPrefix(brokerKey, {
      onSnapshot: () => {},
      onEvents: (changes) => {
        if (leadingWhenExpired === null && changes.some((change) => change.type === "delete")) leadingWhenExpired = view.mayLead();
      },
    });
    await until(() => expiry.revision > 0);
    expect(view.mayLead()).toBe(true);
    proxy.cut();
    await until(() => leadingWhenExpired !== null, 15_000);
    // The broker had stopped leading before etcd let its key (and so its partitions) go.
    expect(leadingWhenExpired === false).toBe(true);
    await until(() => events.includes("fenced"));
    proxy.heal();
    await until(() => view.mayLead(), 15_000);
    await until(() => events.at(-1) === "unfenced");
    await until(() => view.brokers().some((broker) => broker.brokerId === 5), 5000);
    expect((await watcher.range(brokerKey)).kvs.length).toBe(1);
    await expiry.close();
    await view.close();
  }, 30_000);

  test("after etcd restarts, the brokers' watches resume and their leases and controller carry on", async () => {
    const one = await join("restart", 1);
    const two = await join("restart", 2);
    await until(() => [one, two].every((view) => view.brokers().length === 2 && view.controllerId() !== null));
    const controller = one.controllerId();
    await etcd.restart();
    await one.createTopic("after-restart", 1, { replicationFactor: 2, minInsyncReplicas: 1 });
    await until(() => two.partitionState("after-restart", 0) !== undefined);
    await until(() => one.mayLead() && two.mayLead());
    expect(two.brokers().length).toBe(2);
    expect(two.controllerId()).toBe(controller);
    await Promise.all([one.close(), two.close()]);
  }, 30_000);

  test("an event-loop stall longer than the margin fences at once, until the next keepalive", async () => {
    const view = await join("stall", 6);
    expect(view.mayLead()).toBe(true);
    Bun.sleepSync(MARGIN_MS + 300);
    expect(view.mayLead()).toBe(false);
    await until(() => view.mayLead(), 5000);
    await view.close();
  });
});
