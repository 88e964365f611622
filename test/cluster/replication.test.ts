/**
 * The replication data plane (issue 14) on in-process clusters: three (or two) real brokers on
 * 127.0.0.1:0 sharing one StaticClusterState, the test acting as the controller.
 */
import { describe, expect, test } from "bun:test";
import type { WireMap } from "../../src/client/wire.ts";
import { batchEpochs, batchOf, eventually, logBytes, produce, TestCluster } from "./harness.ts";

const ALL = [1, 2, 3];

describe("Replication", () => {
  test("a replicated produce is answered once every ISR member has it; the three logs end byte-identical", async () => {
    await using cluster = await TestCluster.start(3);
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: ALL, replicas: ALL });
    const client = cluster.connect(1);
    for (let i = 0; i < 20; i++) {
      const result = await produce(client, "t", 0, batchOf(`m${i}`), "replicated");
      expect(result.error).toBeUndefined();
      // Acknowledged means the high watermark passed it: every ISR member holds it.
      for (const brokerId of ALL) expect(cluster.log(brokerId, "t", 0).nextOffset).toBeGreaterThan(result.lastOffset as number);
    }
    await eventually(() => ALL.every((brokerId) => cluster.log(brokerId, "t", 0).nextOffset === 60), "followers at the leader's end");
    const leaderBytes = logBytes(cluster.log(1, "t", 0));
    expect(logBytes(cluster.log(2, "t", 0))).toEqual(leaderBytes);
    expect(logBytes(cluster.log(3, "t", 0))).toEqual(leaderBytes);
    expect(batchEpochs(cluster.log(2, "t", 0)).every((epoch) => epoch === 1)).toBe(true);
  });

  test("consumers never see past the high watermark: nothing a follower lacks is fetched from the leader", async () => {
    await using cluster = await TestCluster.start(3, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: ALL, replicas: ALL });
    const producer = cluster.connect(1);
    const consumer = cluster.connect(1);
    await produce(producer, "t", 0, batchOf("before"), "replicated");
    await cluster.stopNode(3);
    // Broker 3 is still in the ISR (its lag bound is far away) and stopped: nothing more is committed.
    for (let i = 0; i < 5; i++) expect((await produce(producer, "t", 0, batchOf(`after${i}`), "written")).error).toBeUndefined();
    expect(cluster.log(1, "t", 0).nextOffset).toBe(18);
    const fetched = await consumer.request("fetch", { partitions: [{ topic: "t", partition: 0, offset: 0 }], maxWaitMs: 0 });
    const entry = (fetched.partitions as WireMap[])[0]!;
    expect(entry.nextOffset).toBe(3);
    // Exactly the first batch, the one every ISR member holds.
    const leaderLog = logBytes(cluster.log(1, "t", 0));
    const firstBatchBytes = 12 + new DataView(leaderLog.buffer, leaderLog.byteOffset).getInt32(8);
    expect(fetched.records as Uint8Array).toEqual(leaderLog.subarray(0, firstBatchBytes));
    const listed = await consumer.request("listOffsets", { partitions: [{ topic: "t", partition: 0, at: "latest" }] });
    expect((listed.partitions as WireMap[])[0]!.offset).toBe(3);
    // Reading from the high watermark on finds nothing yet, though the leader's log goes on.
    const beyond = await consumer.request("fetch", { partitions: [{ topic: "t", partition: 0, offset: 3 }], maxWaitMs: 0 });
    expect((beyond.records as Uint8Array).length).toBe(0);
  });

  test("a stopped follower leaves the ISR; with minInsyncReplicas 2 on 2 replicas produce then fails NOT_ENOUGH_REPLICAS", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 300 });
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const client = cluster.connect(1);
    expect((await produce(client, "t", 0, batchOf("ok"), "replicated")).error).toBeUndefined();
    await cluster.stopNode(2);
    await eventually(() => cluster.partitionState("t", 0).isr.length === 1, "the ISR to shrink");
    expect(cluster.partitionState("t", 0).isr).toEqual([1]);
    const refused = await produce(client, "t", 0, batchOf("refused"), "replicated");
    expect((refused.error as WireMap).code).toBe("NOT_ENOUGH_REPLICAS");
    expect(cluster.log(1, "t", 0).nextOffset).toBe(3);
    // Back, caught up, and in the ISR again: replicated produce works again.
    await cluster.startNode(2);
    await eventually(() => cluster.partitionState("t", 0).isr.length === 2, "the ISR to grow back", 15_000);
    expect((await produce(client, "t", 0, batchOf("again"), "replicated")).error).toBeUndefined();
    expect(logBytes(cluster.log(2, "t", 0))).toEqual(logBytes(cluster.log(1, "t", 0)));
  });

  test("a replicated produce waiting when the ISR shrinks below minInsyncReplicas gets NOT_ENOUGH_REPLICAS_AFTER_APPEND", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const client = cluster.connect(1);
    await cluster.stopNode(2);
    const pending = produce(client, "t", 0, batchOf("in-flight"), "replicated");
    await eventually(() => cluster.log(1, "t", 0).nextOffset === 3, "the append");
    // The controller takes broker 2 out (as the leader itself would after replicaLagTimeMaxMs).
    cluster.setPartition("t", 0, { ...cluster.partitionState("t", 0), isr: [1] });
    expect(((await pending).error as WireMap).code).toBe("NOT_ENOUGH_REPLICAS_AFTER_APPEND");
  });

  test("a partition named by the view before it exists locally takes its role once the broker has created its local copy", async () => {
    await using cluster = await TestCluster.start(2);
    cluster.state.setTopic("late", { replicationFactor: 2, minInsyncReplicas: 2 });
    cluster.setPartition("late", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    // Each broker follows its view (cluster/local-replicas.ts): it creates the topic, then takes its role.
    await eventually(() => [1, 2].every((brokerId) => cluster.broker(brokerId).context.log.hasTopic("late")), "the local copies");
    expect((await produce(cluster.connect(1), "late", 0, batchOf("x"), "replicated")).error).toBeUndefined();
    expect(cluster.log(2, "late", 0).nextOffset).toBe(3);
  });

  test("a produce to a follower gets NOT_LEADER, and a fenced leader acknowledges nothing", async () => {
    await using cluster = await TestCluster.start(2);
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const toFollower = await produce(cluster.connect(2), "t", 0, batchOf("x"), "written");
    expect((toFollower.error as WireMap).code).toBe("NOT_LEADER");
    expect(cluster.log(2, "t", 0).nextOffset).toBe(0);
    cluster.node(1).view!.setFenced(true);
    const fenced = await produce(cluster.connect(1), "t", 0, batchOf("y"), "replicated");
    expect((fenced.error as WireMap).code).toBe("NOT_LEADER");
    expect(cluster.log(1, "t", 0).nextOffset).toBe(0);
  });

  test("leader change: the new leader stamps its epoch; the old leader, restarted with a stale high watermark, truncates its unreplicated tail at the epoch boundary (KIP-101)", async () => {
    await using cluster = await TestCluster.start(2, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const first = cluster.connect(1);
    for (let i = 0; i < 3; i++) await produce(first, "t", 0, batchOf(`committed${i}`), "replicated");
    await cluster.stopNode(2);
    // Broker 1 appends a tail broker 2 never gets (acks "written": nothing waits for the ISR).
    for (let i = 0; i < 2; i++) await produce(first, "t", 0, batchOf(`lost${i}`), "written");
    expect(cluster.log(1, "t", 0).nextOffset).toBe(15);
    await cluster.stopNode(1);
    // The controller makes broker 2 leader in epoch 2; it takes writes of its own at offset 9.
    await cluster.startNode(2);
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 2, isr: [2], replicas: [1, 2] });
    const second = cluster.connect(2);
    for (let i = 0; i < 2; i++) expect((await produce(second, "t", 0, batchOf(`new${i}`, 2), "replicated")).baseOffset).toBe(9 + 2 * i);
    expect(batchEpochs(cluster.log(2, "t", 0))).toEqual([1, 1, 1, 2, 2]);
    // Broker 1 comes back as a follower: its high watermark starts at the checkpointed 9, not at
    // its log end 15; and its truncation follows the epochs, not that number: it keeps the 9
    // committed offsets and drops exactly its own epoch-1 tail.
    await cluster.startNode(1);
    expect(cluster.log(1, "t", 0).highWatermark).toBe(9);
    await eventually(() => cluster.log(1, "t", 0).nextOffset === 13 && cluster.broker(1).context.replication!.follower.counters.truncations > 0, "broker 1 to converge");
    expect(logBytes(cluster.log(1, "t", 0))).toEqual(logBytes(cluster.log(2, "t", 0)));
    expect(cluster.log(1, "t", 0).endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 9 });
    expect(cluster.broker(1).context.replication!.follower.counters.truncations).toBe(1);
  });

  test("a follower fetch with an older epoch is FENCED_LEADER_EPOCH; with a newer one, or to a non-leader, NOT_LEADER; from a non-replica, refused", async () => {
    await using cluster = await TestCluster.start(2);
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 3, isr: [1], replicas: [1] });
    const codeOf = async (brokerId: number, to: number, leaderEpoch: number) => {
      const answer = await cluster.connect(to).request("replicaFetch", { brokerId, partitions: [{ topic: "t", partition: 0, leaderEpoch, fetchOffset: 0, lastFetchedEpoch: -1 }] });
      return ((answer.partitions as WireMap[])[0]!.error as WireMap | undefined)?.code;
    };
    expect(await codeOf(2, 1, 2)).toBe("FENCED_LEADER_EPOCH");
    expect(await codeOf(2, 1, 4)).toBe("NOT_LEADER");
    expect(await codeOf(2, 1, 3)).toBe("INVALID_REQUEST");
    expect(await codeOf(1, 2, 3)).toBe("NOT_LEADER");
  });
});
