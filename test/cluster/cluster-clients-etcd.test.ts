/**
 * The native clients against three brokers in cluster mode on a real etcd (issue 14): topics
 * placed by the controller with replication factor 2, so each broker lacks some of them; the
 * clients get a bootstrap list, route to leaders, and carry on when a broker stops and its
 * leaderships move.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 * The producer is not idempotent here: producer ids are issued per broker until they are
 * cluster-wide (wip/cluster-proof), so a new leader would refuse this producer's id.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { clusterBrokerOptions, type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";
import { until as waitUntil } from "../support/wait.ts";

const HAVE_ETCD = etcdOrSkip("cluster-clients-etcd.test.ts");

/** Cluster changes travel through etcd's watch: a longer bound than the default. */
const until = (condition: () => boolean, boundMs = 15_000): Promise<void> => waitUntil(condition, boundMs);

describe.skipIf(!HAVE_ETCD)("native clients on an etcd cluster", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  function clusterBroker(brokerId: number): Promise<TestBroker> {
    return startTestBroker(clusterBrokerOptions(etcd, "clients", brokerId));
  }

  test("produce and consume through a bootstrap list route to leaders, describe shows them, and a stopped broker's partitions are followed", async () => {
    await using one = await clusterBroker(1);
    await using two = await clusterBroker(2);
    const three = await clusterBroker(3);
    const all = [one, two, three];
    await until(() => all.every((test) => test.broker.context.cluster?.brokers().length === 3));
    const bootstrap = all.map((test) => `127.0.0.1:${test.port}`);
    const admin = new Admin({ broker: bootstrap });
    await admin.createTopic("orders", { partitions: 3, replicationFactor: 2, minInsyncReplicas: 1 });
    await until(() => [0, 1, 2].every((partition) => all.every((test) => test.broker.context.cluster?.partitionState("orders", partition) !== undefined)));
    await admin.close();
    // With 3 partitions of 2 replicas on 3 brokers, each broker lacks one; describe works from any.
    const stateOf = (partition: number) => one.broker.context.cluster!.partitionState("orders", partition)!;
    const lacking = all.find((test) => [0, 1, 2].some((partition) => !stateOf(partition).replicas.includes(test.broker.context.cluster!.brokerId)))!;
    const describer = new Admin({ broker: `127.0.0.1:${lacking.port}` });
    const described = await describer.describeTopic("orders");
    await describer.close();
    expect(described.partitions.map((partition) => partition.leader)).toEqual([0, 1, 2].map((partition) => stateOf(partition).leader));
    expect(described.partitions.every((partition) => partition.replicas?.length === 2 && partition.isr !== undefined)).toBe(true);

    const producer = new Producer({ broker: bootstrap, durability: "replicated", idempotent: false, lingerMs: 0, retryBackoffMs: 20 });
    const sendAll = (tag: string) => Promise.all(Array.from({ length: 30 }, (_, i) => producer.send("orders", { value: `${tag}-${i}`, partition: i % 3 })));
    await sendAll("before");
    // Broker 3 stops cleanly: the controller hands its leaderships to the other ISR member.
    const ledByThree = [0, 1, 2].filter((partition) => stateOf(partition).leader === 3);
    await three[Symbol.asyncDispose]();
    await until(() => [0, 1, 2].every((partition) => stateOf(partition).leader !== 3));
    await sendAll("after");
    await producer.close();
    expect(ledByThree.length).toBeGreaterThan(0);

    const consumer = new Consumer({ broker: bootstrap, maxWaitMs: 50, retryBackoffMs: 20 });
    consumer.assign([0, 1, 2].map((partition) => ({ topic: "orders", partition })));
    const values: string[] = [];
    try {
      while (values.length < 60) for (const message of await consumer.nextBatch()) values.push(new TextDecoder().decode(message.value!));
    } finally {
      await consumer.close();
    }
    const sent = ["before", "after"].flatMap((tag) => Array.from({ length: 30 }, (_, i) => `${tag}-${i}`));
    expect(values.sort()).toEqual(sent.sort());
  }, 40_000);
});
