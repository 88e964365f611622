/**
 * While the leader's proposal to add a caught-up follower to the ISR is in flight, the high
 * watermark counts that follower too (Kafka's maximal ISR, KIP-497). Otherwise the leader goes on
 * acknowledging on the old ISR past the follower's log end, the proposal lands, and a leader
 * later chosen from the new ISR (a reassignment's completion, a failover) lacks acknowledged
 * records — found by the reassignment proof test.
 */
import { describe, expect, test } from "bun:test";
import { Connection } from "../../src/client/connection.ts";
import type { PartitionState } from "../../src/cluster/cluster-view.ts";
import { batchOf, eventually, produce, TestCluster } from "./harness.ts";

describe("an ISR expansion in flight", () => {
  test("holds the high watermark at the joining follower's log end until it lands", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 60_000, replicaFetchWaitMs: 50 });
    cluster.createTopic("t", 1, 1);
    const view = cluster.node(1).view!;
    const propose = view.proposeIsr.bind(view);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    view.proposeIsr = async (topic: string, partition: number, expected: PartitionState, isr: readonly number[]) => {
      if (isr.includes(2)) {
        held = true;
        await gate;
      }
      return propose(topic, partition, expected, isr);
    };
    const leader = new Connection({ broker: `127.0.0.1:${cluster.broker(1).port}` });
    try {
      cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1, 2] });
      await eventually(() => held, "the leader to propose the caught-up follower");
      const followerEnd = cluster.log(2, "t", 0).nextOffset;
      await cluster.stopNode(2);
      for (let round = 0; round < 3; round++) expect((await produce(leader, "t", 0, batchOf(`during${round}`), "written")).error).toBeUndefined();
      expect(cluster.log(1, "t", 0).nextOffset).toBeGreaterThan(followerEnd);
      expect(cluster.log(1, "t", 0).highWatermark).toBeLessThanOrEqual(followerEnd);
    } finally {
      release();
      leader.abort();
    }
  });
});
