/**
 * A replica's restart, on in-process clusters (harness.ts, the test acting as the controller):
 * the high watermark comes back from `replication-offset-checkpoint`, so consumers read what was
 * committed at once; and a follower whose log ends below the leader's log start (retention ran
 * past it, or it is a new replica) starts its log over at the leader's log start and catches up.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import type { WireMap } from "../../src/client/wire.ts";
import { HIGH_WATERMARK_FILE } from "../../src/cluster/high-watermark-checkpoint.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { batchOf, eventually, logBytes, produce, type TestCluster, TestCluster as Cluster } from "./harness.ts";

/** What a consumer of `brokerId` may read of t-0 now: listOffsets latest. */
async function latestOf(cluster: TestCluster, brokerId: number): Promise<number> {
  const listed = await cluster.connect(brokerId).request("listOffsets", { partitions: [{ topic: "t", partition: 0, at: "latest" }] });
  return (listed.partitions as WireMap[])[0]!.offset as number;
}

/** A batch of one ~1 KiB record: a few of them fill a 4 KiB segment. */
function bigBatch(tag: string): Uint8Array {
  return encodeBatch([{ value: `${tag}:${"x".repeat(1000)}` }], { nowMs: 1_700_000_000_000 });
}

describe("High-watermark checkpoint", () => {
  test("a follower restarted while its leader is down serves what was committed at once, and so does it as the new leader", async () => {
    await using cluster = await Cluster.start(2, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const client = cluster.connect(1);
    for (let i = 0; i < 5; i++) expect((await produce(client, "t", 0, batchOf(`m${i}`), "replicated")).error).toBeUndefined();
    await eventually(() => cluster.log(2, "t", 0).highWatermark === 15, "the follower's high watermark at 15");
    await cluster.stopNode(1);
    await cluster.stopNode(2);
    expect(fs.readFileSync(`${cluster.node(2).dataDir}/${HIGH_WATERMARK_FILE}`, "utf8")).toContain('["t",0,15]');
    // Broker 2 starts with no leader to fetch from: only the checkpoint can tell it 15.
    await cluster.startNode(2);
    expect(cluster.log(2, "t", 0).highWatermark).toBe(15);
    expect(await latestOf(cluster, 2)).toBe(15);
    // Elected with broker 1 still in the ISR and down, its high watermark cannot move: it starts at 15.
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 2, isr: [2, 1], replicas: [1, 2] });
    await eventually(() => cluster.broker(2).context.replication!.isLeader("t", 0), "broker 2 to lead");
    const fetched = await cluster.connect(2).request("fetch", { partitions: [{ topic: "t", partition: 0, offset: 0 }], maxWaitMs: 0 });
    expect((fetched.partitions as WireMap[])[0]!.nextOffset).toBe(15);
    expect(await latestOf(cluster, 2)).toBe(15);
  });

  test("is written periodically while the broker runs, not only at a clean stop", async () => {
    await using cluster = await Cluster.start(2, { highWatermarkCheckpointIntervalMs: 100 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    for (let i = 0; i < 3; i++) await produce(cluster.connect(1), "t", 0, batchOf(`m${i}`), "replicated");
    const path = `${cluster.node(1).dataDir}/${HIGH_WATERMARK_FILE}`;
    await eventually(() => fs.existsSync(path) && fs.readFileSync(path, "utf8").includes('["t",0,9]'), "the leader's checkpoint to say 9");
  });

  test("a checkpointed value past the log end is capped at it; an unreadable checkpoint is ignored", async () => {
    await using cluster = await Cluster.start(2, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    for (let i = 0; i < 2; i++) await produce(cluster.connect(1), "t", 0, batchOf(`m${i}`), "replicated");
    await cluster.stopNode(1);
    await cluster.stopNode(2);
    fs.writeFileSync(`${cluster.node(2).dataDir}/${HIGH_WATERMARK_FILE}`, JSON.stringify({ version: 1, highWatermarks: [["t", 0, 1000]] }));
    await cluster.startNode(2);
    expect(cluster.log(2, "t", 0).highWatermark).toBe(6);
    await cluster.stopNode(2);
    fs.writeFileSync(`${cluster.node(2).dataDir}/${HIGH_WATERMARK_FILE}`, "{not json");
    await cluster.startNode(2);
    expect(cluster.log(2, "t", 0).highWatermark).toBe(0);
    // Broker 1 back: the follower learns the high watermark from it again.
    await cluster.startNode(1);
    await eventually(() => cluster.log(2, "t", 0).highWatermark === 6, "the follower's high watermark from the leader");
  });
});

describe("Follower below the leader's log start", () => {
  /** Leader 1 alone with `batches` one-record batches in 4 KiB segments, retention run: its log start is past 0. */
  async function trimmedLeader(cluster: TestCluster, batches: number): Promise<number> {
    const client = cluster.connect(1);
    for (let i = 0; i < batches; i++) expect((await produce(client, "t", 0, bigBatch(`m${i}`), "written")).error).toBeUndefined();
    cluster.broker(1).context.log.runRetention();
    const logStartOffset = cluster.log(1, "t", 0).logStartOffset;
    expect(logStartOffset).toBeGreaterThan(0);
    return logStartOffset;
  }

  test("a new replica of a log whose first segments are gone starts its log at the leader's log start and joins the ISR", async () => {
    await using cluster = await Cluster.start(2, { segmentBytes: 4096, retentionBytes: 8192 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1] });
    const logStartOffset = await trimmedLeader(cluster, 20);
    cluster.setPartition("t", 0, { ...cluster.partitionState("t", 0), replicas: [1, 2] });
    await eventually(() => cluster.partitionState("t", 0).isr.includes(2), "broker 2 in the ISR", 15_000);
    const follower = cluster.log(2, "t", 0);
    expect(follower.logStartOffset).toBe(logStartOffset);
    expect(follower.nextOffset).toBe(20);
    expect(logBytes(follower)).toEqual(logBytes(cluster.log(1, "t", 0)));
    expect(cluster.broker(2).context.replication!.follower.counters.restarts).toBe(1);
    expect((await produce(cluster.connect(1), "t", 0, bigBatch("after"), "replicated")).error).toBeUndefined();
  });

  test("a follower whose log starts past the leader's end (restarted at an older leader's start) starts over at the leader's log start", async () => {
    await using cluster = await Cluster.start(2);
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1], replicas: [1] });
    for (let i = 0; i < 4; i++) expect((await produce(cluster.connect(1), "t", 0, batchOf(`m${i}`), "written")).error).toBeUndefined();
    cluster.log(2, "t", 0).restartAt(500);
    cluster.setPartition("t", 0, { ...cluster.partitionState("t", 0), replicas: [1, 2] });
    await eventually(() => cluster.partitionState("t", 0).isr.includes(2), "broker 2 in the ISR", 15_000);
    expect(cluster.log(2, "t", 0).logStartOffset).toBe(0);
    expect(logBytes(cluster.log(2, "t", 0))).toEqual(logBytes(cluster.log(1, "t", 0)));
  });

  test("a follower that was down while retention ran past its log end throws its log away and catches up", async () => {
    await using cluster = await Cluster.start(2, { segmentBytes: 4096, retentionBytes: 8192, replicaLagTimeMaxMs: 500 });
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    for (let i = 0; i < 2; i++) expect((await produce(cluster.connect(1), "t", 0, bigBatch(`early${i}`), "replicated")).error).toBeUndefined();
    await cluster.stopNode(2);
    await eventually(() => cluster.partitionState("t", 0).isr.length === 1, "broker 2 out of the ISR");
    const logStartOffset = await trimmedLeader(cluster, 20);
    expect(logStartOffset).toBeGreaterThan(2);
    await cluster.startNode(2);
    await eventually(() => cluster.partitionState("t", 0).isr.includes(2), "broker 2 back in the ISR", 15_000);
    expect(cluster.log(2, "t", 0).logStartOffset).toBe(logStartOffset);
    expect(logBytes(cluster.log(2, "t", 0))).toEqual(logBytes(cluster.log(1, "t", 0)));
    expect(cluster.broker(2).context.replication!.follower.counters.restarts).toBe(1);
  });
});
