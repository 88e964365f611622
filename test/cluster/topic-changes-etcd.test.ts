/**
 * Topic changes in cluster mode on a real etcd (issue 14): three brokers, a topic replicated on
 * all three; a config change asked of one broker and createPartitions asked of another are stored
 * in etcd (one txn on the topic record's version; two at once both land) and every broker applies
 * them from its watch;
 * a producer then writes to the new partition with `replicated` durability and a consumer reads
 * it back.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import type { EtcdClusterView } from "../../src/cluster/etcd-cluster-view.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { waitFor } from "../durability/broker-process.ts";
import { clusterBrokerOptions, type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("topic-changes-etcd.test.ts");

const until = (condition: () => boolean, what: string, boundMs = 20_000): Promise<void> => waitFor(condition, boundMs, what);

describe.skipIf(!HAVE_ETCD)("topic changes on an etcd cluster", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  function clusterBroker(brokerId: number): Promise<TestBroker> {
    return startTestBroker(clusterBrokerOptions(etcd, "topic-changes", brokerId));
  }

  test("a config change and new partitions asked of one broker reach all three, and the new partition is produced to and consumed from", async () => {
    await using one = await clusterBroker(1);
    await using two = await clusterBroker(2);
    await using three = await clusterBroker(3);
    const all = [one, two, three];
    await until(() => all.every((test) => test.broker.context.cluster?.brokers().length === 3), "three live brokers");
    const bootstrap = all.map((test) => `127.0.0.1:${test.port}`);
    const logOf = (test: TestBroker) => test.broker.context.log;

    const admin = new Admin({ broker: bootstrap[0] });
    await admin.createTopic("events", { partitions: 2, replicationFactor: 3, minInsyncReplicas: 2 });
    await admin.close();

    const other = new Admin({ broker: bootstrap[1] });
    const altered = await other.alterTopicConfig("events", { "retention.ms": 120_000 });
    expect(altered.config["retention.ms"]).toBe(120_000);
    await other.createPartitions("events", 4);
    await other.close();
    // The answers came once broker 2 held the change; the others follow from their watch.
    await until(() => all.every((test) => logOf(test).hasTopic("events") && logOf(test).describeTopic("events").partitions.length === 4), "four partitions on every broker");
    await until(() => all.every((test) => logOf(test).describeTopic("events").config["retention.ms"] === 120_000), "the config on every broker");
    // etcd holds the change: the topic record and the new partitions' states.
    const stored = (one.broker.context.cluster as EtcdClusterView).topicRecord("events");
    expect(stored?.partitions).toBe(4);
    expect(stored?.config["retention.ms"]).toBe(120_000);
    expect([2, 3].map((partition) => three.broker.context.cluster!.partitionState("events", partition)!.replicas.length)).toEqual([3, 3]);

    // Two brokers change the record at once: the txn on its version makes the later one re-read, so neither change is lost.
    const [left, right] = [new Admin({ broker: bootstrap[0] }), new Admin({ broker: bootstrap[2] })];
    await Promise.all([left.alterTopicConfig("events", { "segment.ms": 3_600_000 }), right.alterTopicConfig("events", { "flush.messages": 500 })]);
    await Promise.all([left.close(), right.close()]);
    const merged = () => (two.broker.context.cluster as EtcdClusterView).topicRecord("events")?.config ?? {};
    await until(() => merged()["segment.ms"] !== undefined && merged()["flush.messages"] !== undefined, "both changes in broker 2's view");
    expect(merged()).toMatchObject({ "retention.ms": 120_000, "segment.ms": 3_600_000, "flush.messages": 500 });

    const producer = new Producer({ broker: bootstrap, durability: "replicated", idempotent: false, lingerMs: 0, retryBackoffMs: 20 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => producer.send("events", { value: `p3-${i}`, partition: 3 })));
    await producer.close();
    const leader = one.broker.context.cluster!.partitionState("events", 3)!;
    // Replicated with min ISR 2: at least one follower of the new partition copied the records.
    const copies = all.filter((test) => logOf(test).partition("events", 3).nextOffset === 10);
    expect(copies.length).toBeGreaterThanOrEqual(2);
    expect(copies.map((test) => test.broker.context.cluster!.brokerId)).toContain(leader.leader);

    const consumer = new Consumer({ broker: bootstrap, maxWaitMs: 50, retryBackoffMs: 20 });
    consumer.assign([{ topic: "events", partition: 3 }]);
    const values: string[] = [];
    try {
      while (values.length < 10) for (const message of await consumer.nextBatch()) values.push(new TextDecoder().decode(message.value!));
    } finally {
      await consumer.close();
    }
    expect(values.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `p3-${i}`).sort());
  }, 60_000);
});
