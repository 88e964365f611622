/**
 * Kafka's AlterPartitionReassignments (45) and ListPartitionReassignments (46) with kafkajs's admin
 * (npm devDependency, unmodified) against two brokers on a real etcd: a partition moved to the
 * other broker completes; a move to a broker that is not live is refused with
 * INVALID_REPLICA_ASSIGNMENT for that partition; the list is empty once nothing moves.
 *
 * Needs `etcd` (Debian etcd-server) and kafkajs; skipped loudly without them outside CI.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { loadKafkajs } from "../support/kafkajs.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { clusterBrokerOptions, type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";
import { eventually } from "./harness.ts";

interface KafkajsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  alterPartitionReassignments(options: { topics: Array<{ topic: string; partitionAssignment: Array<{ partition: number; replicas: number[] }> }> }): Promise<void>;
  listPartitionReassignments(options: { topics?: Array<{ topic: string; partitions: number[] }> }): Promise<{ topics: Array<{ topic: string; partitions: Array<{ partition: number; replicas: number[]; addingReplicas: number[]; removingReplicas: number[] }> }> }>;
}

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number } }) => { admin(): KafkajsAdmin };
}

const kafkajs = await loadKafkajs<KafkajsModule>("the kafkajs reassignment test");
const HAVE_ETCD = etcdOrSkip("kafka-reassignments.test.ts");

describe.if(kafkajs !== null && HAVE_ETCD)("partition reassignment with kafkajs's admin", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  const clusterBroker = (brokerId: number): Promise<TestBroker> =>
    startTestBroker({ ...clusterBrokerOptions(etcd, "kafka-moves", brokerId), kafkaPort: 0 });

  test("a partition moved to the other broker completes; a broker that is not live is refused; the list empties", async () => {
    await using one = await clusterBroker(1);
    await using two = await clusterBroker(2);
    await eventually(() => [one, two].every((node) => node.broker.context.cluster?.brokers().length === 2), "both brokers live");
    const kafka = new kafkajs!.Kafka({ clientId: "reassign-test", brokers: [`127.0.0.1:${one.broker.kafkaPort}`], logLevel: kafkajs!.logLevel.NOTHING, retry: { retries: 2 } });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const native = new Admin({ broker: `127.0.0.1:${one.port}` });
      await native.createTopic("moves", { partitions: 1, replicationFactor: 1 }).finally(() => native.close());
      await eventually(() => one.broker.context.cluster?.partitionState("moves", 0) !== undefined, "the partition in the view");
      const from = one.broker.context.cluster!.partitionState("moves", 0)!.replicas[0] as number;
      const to = from === 1 ? 2 : 1;

      let refusal: unknown;
      await admin.alterPartitionReassignments({ topics: [{ topic: "moves", partitionAssignment: [{ partition: 0, replicas: [to, 9] }] }] }).catch((error: unknown) => (refusal = error));
      const refused = (refusal as { errors?: Array<{ type?: string }> } | undefined)?.errors?.[0]?.type;
      expect(refused).toBe("INVALID_REPLICA_ASSIGNMENT");

      await admin.alterPartitionReassignments({ topics: [{ topic: "moves", partitionAssignment: [{ partition: 0, replicas: [to] }] }] });
      await eventually(() => one.broker.context.cluster?.partitionState("moves", 0)?.replicas.join(",") === String(to), "the move to complete", 20_000);
      expect(one.broker.context.cluster?.partitionState("moves", 0)?.leader).toBe(to);
      expect((await admin.listPartitionReassignments({})).topics).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  }, 60_000);
});
