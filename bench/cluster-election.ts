/**
 * @module bench/cluster-election
 * Control-plane failover time with the default lease settings: three in-process brokers
 * (EtcdClusterView) on a real etcd, a replicated partition; its leader's broker goes silent (no
 * revoke, like SIGKILL) and we time until another broker's view shows the new leader. This is the
 * etcd half of a failover (lease expiry + watch + controller txn); clients re-routing is extra.
 *
 *   bun bench/cluster-election.ts [rounds] [leaseTtlMs] [fenceMarginMs]
 */
import { EtcdClusterView } from "../src/cluster/etcd-cluster-view.ts";
import { configSchema } from "../src/config.ts";
import { silentLogger } from "../src/logger.ts";
import { startEtcd } from "../test/cluster/etcd-harness.ts";

const defaults = configSchema.parse({});
const rounds = Number(process.argv[2] ?? 5);
const leaseTtlMs = Number(process.argv[3] ?? defaults.clusterLeaseTtlMs);
const fenceMarginMs = Number(process.argv[4] ?? defaults.clusterFenceMarginMs);

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("timed out");
    await Bun.sleep(5);
  }
}

await using etcd = await startEtcd();
const timesMs: number[] = [];
for (let round = 0; round < rounds; round += 1) {
  const join = (brokerId: number) =>
    EtcdClusterView.start({ endpoints: [etcd.endpoint], cluster: `bench${round}`, self: { brokerId, host: "127.0.0.1", port: 1, kafkaPort: null }, leaseTtlMs, fenceMarginMs, logger: silentLogger() });
  const views = [await join(1), await join(2), await join(3)];
  await waitFor(() => views.every((view) => view.brokers().length === 3 && view.controllerId() !== null));
  await (views[0] as EtcdClusterView).createTopic("t", 1, { replicationFactor: 3, minInsyncReplicas: 2 });
  await waitFor(() => views.every((view) => view.partitionState("t", 0) !== undefined));
  const leader = views[0]?.partitionState("t", 0)?.leader;
  const victim = views.find((view) => view.brokerId === leader) as EtcdClusterView;
  const observer = views.find((view) => view !== victim) as EtcdClusterView;
  const startMs = performance.now();
  await victim.abandon();
  await waitFor(() => observer.partitionState("t", 0)?.leader !== leader);
  timesMs.push(performance.now() - startMs);
  await Promise.all(views.filter((view) => view !== victim).map((view) => view.close()));
}
timesMs.sort((left, right) => left - right);
console.log(`leaseTtlMs ${leaseTtlMs}, fenceMarginMs ${fenceMarginMs}: leader silent -> new leader in ms: min ${Math.round(timesMs[0] ?? 0)}, median ${Math.round(timesMs[Math.floor(timesMs.length / 2)] ?? 0)}, max ${Math.round(timesMs.at(-1) ?? 0)} (${rounds} rounds)`);
