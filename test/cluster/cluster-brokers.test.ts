/**
 * Three real brokers (in this process, each with its own data dir and ports) in cluster mode on
 * one etcd: native createTopic with a replication factor places the partitions over the brokers
 * and every replica creates the topic in its log; native metadata and Kafka Metadata list every
 * live broker and each partition's leader, replicas and ISR; a broker that stops cleanly hands
 * its leaderships over; a second broker with a live id refuses to start; deleteTopic removes the
 * topic everywhere.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { EtcdClusterView } from "../../src/cluster/etcd-cluster-view.ts";
import { RunnelError } from "../../src/errors.ts";
import { type TestBroker, startTestBroker, TestClient } from "../server/helpers.ts";
import { clusterBrokerOptions, type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("cluster-brokers.test.ts");
const KCAT = Bun.which("kcat");
if (KCAT === null && HAVE_ETCD) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat -L cluster test: kcat is not installed (apt-get install kcat)");
}

async function until(condition: () => boolean, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${boundMs} ms`);
    await Bun.sleep(20);
  }
}

type PartitionEntry = { partition: number; leader: number; leaderEpoch: number; replicas: number[]; isr: number[] };
type MetadataAnswer = { brokers: Array<{ brokerId: number; port: number }>; topics: Array<{ name: string; partitions: PartitionEntry[] }> };

describe.skipIf(!HAVE_ETCD)("brokers in cluster mode", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  function clusterOptions(cluster: string, brokerId: number) {
    return clusterBrokerOptions(etcd, cluster, brokerId);
  }

  function clusterBroker(cluster: string, brokerId: number): Promise<TestBroker> {
    return startTestBroker(clusterOptions(cluster, brokerId));
  }

  async function metadata(port: number): Promise<MetadataAnswer> {
    await using client = await TestClient.connect(port);
    return (await client.request({ op: "metadata" })) as unknown as MetadataAnswer;
  }

  test("a replicated topic is placed over the brokers, created in each replica's log, and listed with leaders by metadata", async () => {
    await using one = await clusterBroker("meta", 1);
    await using two = await clusterBroker("meta", 2);
    await using three = await clusterBroker("meta", 3);
    const brokers = [one, two, three];
    await until(() => brokers.every((test) => test.broker.context.cluster?.brokers().length === 3));
    const admin = new Admin({ broker: `127.0.0.1:${one.port}` });
    const created = await admin.createTopic("events", { partitions: 3, replicationFactor: 3, minInsyncReplicas: 2 });
    expect(created.partitions.length).toBe(3);
    await admin.close();
    await until(() => brokers.every((test) => test.broker.context.log.hasTopic("events")));
    await until(() => brokers.every((test) => test.broker.context.cluster?.partitionState("events", 2) !== undefined));
    const answer = await metadata(two.port);
    expect(answer.brokers.map((broker) => [broker.brokerId, broker.port])).toEqual([[1, one.port], [2, two.port], [3, three.port]]);
    const partitions = answer.topics.find((topic) => topic.name === "events")?.partitions ?? [];
    expect(partitions.map((partition) => partition.replicas.length)).toEqual([3, 3, 3]);
    expect(new Set(partitions.map((partition) => partition.leader))).toEqual(new Set([1, 2, 3]));
    for (const partition of partitions) {
      expect(partition.leader).toBe(partition.replicas[0] as number);
      expect(partition.isr).toEqual(partition.replicas);
      expect(partition.leaderEpoch).toBe(0);
    }
    expect(one.broker.context.cluster?.topicReplication("events")).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
  }, 30_000);

  test.skipIf(KCAT === null)("kcat -L (Kafka Metadata) lists every broker, the controller, and each partition's leader, replicas and ISR", async () => {
    const kafka = { kafkaPort: 0 };
    await using one = await startTestBroker({ ...clusterOptions("kafka", 1), ...kafka });
    await using two = await startTestBroker({ ...clusterOptions("kafka", 2), ...kafka });
    await until(() => [one, two].every((test) => test.broker.context.cluster?.brokers().length === 2));
    const admin = new Admin({ broker: `127.0.0.1:${one.port}` });
    await admin.createTopic("kmeta", { partitions: 2, replicationFactor: 2 });
    await admin.close();
    await until(() => two.broker.context.log.hasTopic("kmeta") && two.broker.context.cluster?.partitionState("kmeta", 1) !== undefined);
    // Spawned asynchronously: the brokers answer from this very process.
    const child = Bun.spawn([KCAT ?? "kcat", "-b", `127.0.0.1:${two.broker.kafkaPort}`, "-L", "-t", "kmeta", "-m", "10"], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => child.kill(), 20_000);
    const [listing, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    clearTimeout(timer);
    expect(code).toBe(0);
    const view = two.broker.context.cluster;
    const controller = view instanceof EtcdClusterView ? view.controllerId() : null;
    expect(controller).not.toBeNull();
    expect(listing).toContain("2 brokers:");
    expect(listing).toContain(`broker 1 at 127.0.0.1:${one.broker.kafkaPort}${controller === 1 ? " (controller)" : ""}`);
    expect(listing).toContain(`broker 2 at 127.0.0.1:${two.broker.kafkaPort}${controller === 2 ? " (controller)" : ""}`);
    for (const partition of [0, 1]) {
      const state = two.broker.context.cluster?.partitionState("kmeta", partition);
      expect(listing).toContain(`partition ${partition}, leader ${state?.leader}, replicas: ${state?.replicas.join(",")}, isrs: ${state?.isr.join(",")}`);
    }
  }, 30_000);

  test("a broker that stops cleanly hands its leaderships to the ISR at once, with a higher epoch", async () => {
    await using one = await clusterBroker("handover", 1);
    await using two = await clusterBroker("handover", 2);
    const three = await clusterBroker("handover", 3);
    await until(() => [one, two, three].every((test) => test.broker.context.cluster?.brokers().length === 3));
    const admin = new Admin({ broker: `127.0.0.1:${three.port}` });
    await admin.createTopic("moves", { partitions: 3, replicationFactor: 2 });
    await admin.close();
    const view = one.broker.context.cluster;
    await until(() => [0, 1, 2].every((partition) => view?.partitionState("moves", partition) !== undefined));
    const ledByThree = [0, 1, 2].filter((partition) => view?.partitionState("moves", partition)?.leader === 3);
    expect(ledByThree.length).toBeGreaterThan(0);
    await three[Symbol.asyncDispose]();
    await until(() => view?.brokers().length === 2 && [0, 1, 2].every((partition) => view.partitionState("moves", partition)?.leader !== 3));
    for (const partition of ledByThree) {
      const state = view?.partitionState("moves", partition);
      expect(state?.leaderEpoch).toBe(1);
      expect(state?.isr).toEqual([state?.leader as number]);
    }
  }, 30_000);

  test("a broker registers its advertised host and port, which the others' metadata lists, instead of where it listens", async () => {
    await using one = await clusterBroker("advertised", 1);
    await using two = await startTestBroker({ ...clusterOptions("advertised", 2), advertisedHost: "broker-2.example", advertisedPort: 19600 });
    await until(() => one.broker.context.cluster?.brokers().length === 2);
    const registered = one.broker.context.cluster?.brokers().find((broker) => broker.brokerId === 2);
    expect(registered).toMatchObject({ host: "broker-2.example", port: 19600 });
    expect(two.port).not.toBe(19600);
    const answer = (await metadata(one.port)) as unknown as { brokers: Array<{ brokerId: number; host: string; port: number }> };
    expect(answer.brokers.find((broker) => broker.brokerId === 2)).toMatchObject({ host: "broker-2.example", port: 19600 });
  });

  test("a broker id already live in the cluster refuses to start, saying which id", async () => {
    await using first = await clusterBroker("ids", 4);
    expect(first.broker.context.cluster?.brokerId).toBe(4);
    const failure = await clusterBroker("ids", 4).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RunnelError);
    expect((failure as RunnelError).code).toBe("BROKER_ID_IN_USE");
  });

  test("createTopic with a replication factor above the live brokers is INVALID_CONFIG, and a delete reaches every replica", async () => {
    await using one = await clusterBroker("del", 1);
    await using two = await clusterBroker("del", 2);
    await until(() => [one, two].every((test) => test.broker.context.cluster?.brokers().length === 2));
    const admin = new Admin({ broker: `127.0.0.1:${one.port}` });
    await expect(admin.createTopic("wide", { replicationFactor: 3 })).rejects.toThrow("replication factor 3 is more than the 2 live broker(s)");
    await admin.createTopic("gone", { partitions: 2, replicationFactor: 2 });
    await until(() => two.broker.context.log.hasTopic("gone"));
    await admin.deleteTopic("gone");
    await admin.close();
    await until(() => !two.broker.context.log.hasTopic("gone") && !one.broker.context.log.hasTopic("gone"));
    expect(two.broker.context.cluster?.topicReplication("gone")).toBeUndefined();
  }, 30_000);
});

describe("a single node", () => {
  test("refuses a replication factor above 1 and answers metadata without cluster fields", async () => {
    await using single = await startTestBroker({ kafkaPort: -1 });
    const admin = new Admin({ broker: `127.0.0.1:${single.port}` });
    await expect(admin.createTopic("solo", { replicationFactor: 2 })).rejects.toThrow("needs cluster mode");
    await admin.createTopic("solo");
    await admin.close();
    await using client = await TestClient.connect(single.port);
    const answer = (await client.request({ op: "metadata" })) as Record<string, unknown>;
    expect(answer.brokers).toBeUndefined();
    expect(JSON.stringify(answer.topics)).not.toContain("leader");
  });
});
