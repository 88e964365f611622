/**
 * The native clients in a cluster (issue 14): three in-process brokers sharing a
 * StaticClusterState (test/cluster/harness.ts), the test moving leaders as the controller would.
 * Producers and consumers get the brokers as a bootstrap list, route each partition to its leader
 * and follow a leader change by themselves.
 *
 * Producer ids are per broker until they are cluster-wide (wip/cluster-proof): each test has
 * every broker issue one id first, so the id the producer holds (from its bootstrap broker) is
 * one the other brokers accept too.
 */
import { describe, expect, test } from "bun:test";
import path from "node:path";
import { ROOT } from "../client/real-broker.ts";
import { Consumer, type Message } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { TestCluster } from "./harness.ts";

const ALL = [1, 2, 3];
const MAIN = path.join(ROOT, "src/main.ts");
const decoder = new TextDecoder();

function addresses(cluster: TestCluster, brokerIds: readonly number[]): string[] {
  return brokerIds.map((brokerId) => `127.0.0.1:${cluster.broker(brokerId).port}`);
}

/**
 * Every broker but `bootstrapId` hands out a few producer ids (see the file comment): the ids the
 * bootstrap broker gives the test's producers are then ones the others count as issued too.
 */
async function issueIdsElsewhere(cluster: TestCluster, bootstrapId: number): Promise<void> {
  for (const node of cluster.nodes) {
    if (node.broker === null || node.brokerId === bootstrapId) continue;
    const connection = cluster.connect(node.brokerId);
    for (let i = 0; i < 10; i++) await connection.request("initProducer", {});
  }
}

/** Reads `count` messages of the topic's partitions from the cluster, then closes. */
async function readValues(brokers: string[], topic: string, partitions: number, count: number): Promise<string[]> {
  const consumer = new Consumer({ broker: brokers, maxWaitMs: 50 });
  consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition })));
  const values: string[] = [];
  try {
    while (values.length < count) {
      const next = await consumer.next();
      if (next.done === true) break;
      values.push(decoder.decode((next.value as Message).value!));
    }
  } finally {
    await consumer.close();
  }
  return values;
}

describe("Clients in a cluster", () => {
  test("metadata from any broker names every partition's leader; a topic this broker holds no replica of is listed from the view", async () => {
    await using cluster = await TestCluster.start(3);
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 1, isr: ALL, replicas: ALL });
    // "far" lives on brokers 1 and 2 only (as the control plane would place a factor-2 topic).
    cluster.state.setTopic("far", { replicationFactor: 2, minInsyncReplicas: 1 });
    for (const brokerId of [1, 2]) cluster.broker(brokerId).context.log.createTopic("far", { partitions: 1 });
    cluster.setPartition("far", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const answer = await cluster.connect(3).request("metadata", {});
    const topics = answer.topics as Array<{ name: string; partitions: WireMap[] }>;
    expect(topics.map((topic) => topic.name)).toEqual(["far", "t"]);
    expect(topics[0]!.partitions[0]).toMatchObject({ partition: 0, leader: 1, replicas: [1, 2], nextOffset: -1 });
    expect(topics[1]!.partitions[0]).toMatchObject({ partition: 0, leader: 2, isr: ALL });
    expect((answer.brokers as WireMap[]).map((broker) => broker.brokerId).sort()).toEqual(ALL);
    // Broker 3 never creates "far" for a producer's metadata, and sends its produce to the leader.
    await cluster.connect(3).request("metadata", { topics: ["far"], autoCreate: true });
    expect(cluster.broker(3).context.log.hasTopic("far")).toBe(false);
    const refused = await cluster.connect(3).request("produce", { durability: "written", batches: [{ topic: "far", partition: 0, batch: new Uint8Array(70) }] });
    expect(((refused.results as WireMap[])[0]!.error as WireMap).code).toBe("NOT_LEADER");
  });

  test("a producer keeps producing across a leader change, and every acknowledged value is read back exactly once", async () => {
    await using cluster = await TestCluster.start(3, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 2, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: ALL, replicas: ALL });
    cluster.setPartition("t", 1, { leader: 2, leaderEpoch: 1, isr: ALL, replicas: ALL });
    await issueIdsElsewhere(cluster, 1);
    const brokers = addresses(cluster, ALL);
    const producer = new Producer({ broker: brokers, durability: "replicated", lingerMs: 1, retryBackoffMs: 20, deliveryTimeoutMs: 20_000 });
    const acknowledged: string[] = [];
    const send = async (value: string, partition: number) => {
      await producer.send("t", { value, partition });
      acknowledged.push(value);
    };
    await Promise.all(Array.from({ length: 40 }, (_, i) => send(`before-${i}`, i % 2)));
    // Leaders move while sends are in flight: partition 0 from broker 1 to 3, partition 1 from 2 to 1.
    const during = Array.from({ length: 40 }, (_, i) => send(`during-${i}`, i % 2));
    cluster.setPartition("t", 0, { leader: 3, leaderEpoch: 2, isr: ALL, replicas: ALL });
    cluster.setPartition("t", 1, { leader: 1, leaderEpoch: 2, isr: ALL, replicas: ALL });
    await Promise.all(during);
    await Promise.all(Array.from({ length: 40 }, (_, i) => send(`after-${i}`, i % 2)));
    await producer.close();
    expect(acknowledged.length).toBe(120);
    // The new leaders took the writes of epoch 2.
    expect(cluster.log(3, "t", 0).nextOffset).toBeGreaterThan(0);
    const values = await readValues(brokers, "t", 2, 120);
    expect(values.length).toBe(120);
    expect(new Set(values).size).toBe(120);
    expect([...values].sort()).toEqual([...acknowledged].sort());
  });

  test("a producer whose leader stops re-sends to the new leader", async () => {
    await using cluster = await TestCluster.start(3, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 1, isr: ALL, replicas: ALL });
    await issueIdsElsewhere(cluster, 1);
    const brokers = addresses(cluster, ALL);
    const producer = new Producer({ broker: brokers, durability: "replicated", lingerMs: 0, retryBackoffMs: 20, connectTimeoutMs: 500 });
    for (let i = 0; i < 5; i++) await producer.send("t", { value: `first-${i}` });
    await cluster.stopNode(2);
    cluster.setPartition("t", 0, { leader: 3, leaderEpoch: 2, isr: [1, 3], replicas: ALL });
    for (let i = 0; i < 5; i++) await producer.send("t", { value: `second-${i}` });
    await producer.close();
    const values = await readValues(addresses(cluster, [1, 3]), "t", 1, 10);
    expect(values).toEqual([...Array.from({ length: 5 }, (_, i) => `first-${i}`), ...Array.from({ length: 5 }, (_, i) => `second-${i}`)]);
  });

  test("a consumer follows a leader change and goes on at its offset", async () => {
    await using cluster = await TestCluster.start(3, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: ALL, replicas: ALL });
    await issueIdsElsewhere(cluster, 1);
    const brokers = addresses(cluster, ALL);
    const consumer = new Consumer({ broker: brokers, maxWaitMs: 50, retryBackoffMs: 20, connectTimeoutMs: 500 });
    consumer.assign([{ topic: "t", partition: 0 }]);
    const producer = new Producer({ broker: brokers, durability: "replicated", lingerMs: 0, retryBackoffMs: 20, connectTimeoutMs: 500 });
    try {
      for (let i = 0; i < 3; i++) await producer.send("t", { value: `old-${i}` });
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) seen.push(decoder.decode(((await consumer.next()).value as Message).value!));
      // The leader it reads from stops; broker 2 leads in epoch 2.
      await cluster.stopNode(1);
      cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 2, isr: [2, 3], replicas: ALL });
      for (let i = 0; i < 3; i++) await producer.send("t", { value: `new-${i}` });
      for (let i = 0; i < 3; i++) seen.push(decoder.decode(((await consumer.next()).value as Message).value!));
      expect(seen).toEqual(["old-0", "old-1", "old-2", "new-0", "new-1", "new-2"]);
    } finally {
      await producer.close();
      await consumer.close();
    }
  });

  test("a consumer starting at the latest offset asks the leader, not the bootstrap broker that holds no replica", async () => {
    await using cluster = await TestCluster.start(3, { replicaLagTimeMaxMs: 60_000 });
    // Broker 1 has the topic in its log but is no replica: its copy of the partition stays empty.
    cluster.createTopic("t", 1, 1);
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 1, isr: [2, 3], replicas: [2, 3] });
    await issueIdsElsewhere(cluster, 1);
    const brokers = addresses(cluster, ALL);
    const producer = new Producer({ broker: brokers, durability: "replicated", lingerMs: 0 });
    for (let i = 0; i < 5; i++) await producer.send("t", { value: `old-${i}` });
    const consumer = new Consumer({ broker: brokers, from: "latest", maxWaitMs: 50 });
    consumer.assign([{ topic: "t", partition: 0 }]);
    try {
      const first = consumer.next();
      await eventuallyPositioned(consumer);
      await producer.send("t", { value: "new" });
      const message = (await first).value as Message;
      expect([message.offset, decoder.decode(message.value!)]).toEqual([5, "new"]);
    } finally {
      await producer.close();
      await consumer.close();
    }
  });

  test("a bootstrap list whose first broker is down: the next one answers", async () => {
    await using cluster = await TestCluster.start(2);
    cluster.createTopic("t", 1, 1);
    await issueIdsElsewhere(cluster, 2);
    const brokers = addresses(cluster, [1, 2]);
    await cluster.stopNode(1);
    // Broker 1 is down, so out of the ISR: it must not hold the high watermark back.
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 1, isr: [2], replicas: [1, 2] });
    const producer = new Producer({ broker: brokers.join(","), lingerMs: 0, connectTimeoutMs: 5_000 });
    expect((await producer.send("t", { value: "hello" })).offset).toBe(0);
    await producer.close();
    expect(await readValues([...brokers], "t", 1, 1)).toEqual(["hello"]);
  });

  test("an empty or oversized bootstrap list is refused with INVALID_CONFIG", () => {
    expect(() => new Producer({ broker: " , " })).toThrow(/no broker address given/);
    expect(() => new Producer({ broker: Array.from({ length: 65 }, (_, i) => `h${i}:1`) })).toThrow(/at most 64/);
  });

  test("runnel produce and runnel consume follow a leader change, and topics describe shows leader and ISR", async () => {
    await using cluster = await TestCluster.start(3, { replicaLagTimeMaxMs: 60_000 });
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: ALL, replicas: ALL });
    await issueIdsElsewhere(cluster, 1);
    const brokers = addresses(cluster, ALL).join(",");
    const consume = Bun.spawn([process.execPath, MAIN, "consume", "--topic", "t", "--count", "10", "--broker", brokers], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const produce = Bun.spawn([process.execPath, MAIN, "produce", "--topic", "t", "--durability", "replicated", "--linger-ms", "0", "--broker", brokers], { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    produce.stdin.write("a-0\na-1\na-2\na-3\na-4\n");
    produce.stdin.flush();
    await waitUntil(() => cluster.log(1, "t", 0).highWatermark >= 5);
    cluster.setPartition("t", 0, { leader: 2, leaderEpoch: 2, isr: ALL, replicas: ALL });
    produce.stdin.write("b-0\nb-1\nb-2\nb-3\nb-4\n");
    produce.stdin.end();
    const [produced, producedErr] = await Promise.all([produce.exited, new Response(produce.stderr).text()]);
    expect({ produced, producedErr }).toMatchObject({ produced: 0 });
    const [consumed, out] = await Promise.all([consume.exited, new Response(consume.stdout).text()]);
    expect(consumed).toBe(0);
    expect(out.split("\n").slice(0, -1)).toEqual(["a-0", "a-1", "a-2", "a-3", "a-4", "b-0", "b-1", "b-2", "b-3", "b-4"]);
    // Epoch 2's batches are on the new leader.
    expect(cluster.log(2, "t", 0).endOffsetForEpoch(2).endOffset).toBeGreaterThan(5);
    const described = Bun.spawn([process.execPath, MAIN, "topics", "describe", "t", "--broker", addresses(cluster, [3])[0]!], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const text = await new Response(described.stdout).text();
    expect(await described.exited).toBe(0);
    expect(text).toMatch(/LEADER\s+EPOCH\s+REPLICAS\s+ISR/);
    expect(text).toMatch(/\b2\s+2\s+1,2,3\s+1,2,3\s*$/m);
  });
});

async function waitUntil(condition: () => boolean, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${boundMs} ms`);
    await Bun.sleep(10);
  }
}

/** Waits until the consumer has looked up where it starts. */
async function eventuallyPositioned(consumer: Consumer): Promise<void> {
  await waitUntil(() => consumer.positions().every((position) => position.offset >= 0));
}
