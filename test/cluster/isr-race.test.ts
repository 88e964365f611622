/**
 * An ISR change by the controller that lands between the leader's successful ISR proposal and
 * the leader acting on its answer must win: the leader goes by the newest state, so it proposes
 * again and the caught-up follower ends in the ISR. (Acting on its own, older answer once left a
 * leader believing an ISR etcd no longer held, with no event to correct it; found by the
 * cut-off-from-etcd fault test.)
 */
import { describe, expect, test } from "bun:test";
import type { PartitionState } from "../../src/cluster/cluster-view.ts";
import { eventually, TestCluster } from "./harness.ts";

describe("ISR proposals racing the controller", () => {
  test("a controller change right after the leader's proposal is not overwritten by the proposal's answer", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 60_000, replicaFetchWaitMs: 50 });
    cluster.createTopic("t", 1, 1);
    const view = cluster.node(1).view!;
    const propose = view.proposeIsr.bind(view);
    let intercepted = 0;
    view.proposeIsr = async (topic: string, partition: number, expected: PartitionState, isr: readonly number[]) => {
      const answer = await propose(topic, partition, expected, isr);
      if (answer !== null && intercepted === 0) {
        intercepted++;
        // The controller drops the follower again before the leader sees its answer.
        cluster.setPartition(topic, partition, { ...answer, isr: [1] });
      }
      return answer;
    };
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1, 2] });
    await eventually(() => intercepted === 1, "the leader's first ISR expansion");
    await eventually(() => cluster.partitionState("t", 0).isr.includes(2), "the leader to propose the follower again");
    expect(cluster.partitionState("t", 0).isr).toEqual([1, 2]);
  });
});
