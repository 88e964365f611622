/**
 * Unmodified Kafka clients across a leader's death (issue 14: "Kafka clients do it as they always
 * do"): three `runnel serve --cluster` processes on a real etcd, a kafkajs idempotent producer
 * (acks=-1) writing numbered values one request at a time, the partition's leader SIGKILLed at a
 * seeded point. kafkajs finds the new leader through Metadata by itself; afterwards kcat reads the
 * partition from a surviving broker and every acknowledged value is there exactly once, in order.
 *
 * Needs etcd, kcat (Debian) and kafkajs (npm); skipped loudly outside CI without them.
 */
import { describe, expect, test } from "bun:test";
import { loadKafkajs } from "../support/kafkajs.ts";
import { kcatOrSkip, runKcat } from "../support/kcat.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { ProcessCluster, seeded } from "./failover-harness.ts";

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number; initialRetryTime: number; maxRetryTime: number } }) => {
    producer(options: { idempotent: boolean; maxInFlightRequests: number }): {
      connect(): Promise<void>;
      disconnect(): Promise<void>;
      send(record: { topic: string; acks: number; timeout: number; messages: Array<{ value: string; partition: number }> }): Promise<Array<{ errorCode: number; baseOffset: string }>>;
    };
  };
}

const HAVE_ETCD = etcdOrSkip("kafka-failover.test.ts");
const KCAT = kcatOrSkip("the Kafka client failover test");
const kafkajs = await loadKafkajs<KafkajsModule>("the Kafka client failover test");
const VALUES = 120;

describe.skipIf(!HAVE_ETCD || KCAT === null || kafkajs === null)("Kafka clients across a leader's death", () => {
  test("a kafkajs idempotent acks=-1 producer follows the new leader; kcat then reads every acknowledged value once, in order", async () => {
    const seed = Number(process.env.RUNNEL_FAULT_SEED ?? 7);
    const random = seeded(seed);
    await using cluster = await ProcessCluster.start("kafka-failover");
    await cluster.createTopic("kf", 1);
    const kafkaPort = (brokerId: number): number => Number(String(cluster.node(brokerId).process?.startLine.kafka).split(":").pop());
    const leaderOf = async (): Promise<number> => ((await cluster.metadata("kf"))?.partitions[0]?.leader as number | undefined) ?? -1;
    const firstLeader = await leaderOf();
    expect(firstLeader).toBeGreaterThan(0);

    const kafka = new kafkajs!.Kafka({
      clientId: "failover",
      brokers: cluster.running().map((brokerId) => `127.0.0.1:${kafkaPort(brokerId)}`),
      logLevel: kafkajs!.logLevel.NOTHING,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const killAt = 20 + Math.floor(random() * 60);
    const acked: string[] = [];
    const failed: string[] = [];
    try {
      for (let index = 0; index < VALUES; index++) {
        if (index === killAt) await cluster.kill(firstLeader);
        const value = `v${index}`;
        try {
          const [answer] = await producer.send({ topic: "kf", acks: -1, timeout: 10_000, messages: [{ value, partition: 0 }] });
          if (answer?.errorCode === 0) acked.push(value);
          else failed.push(value);
        } catch {
          failed.push(value); // retries exhausted: outcome unknown, may or may not be stored
        }
      }
    } finally {
      await producer.disconnect();
    }
    const newLeader = await leaderOf();
    expect(newLeader).not.toBe(firstLeader);
    expect(newLeader).toBeGreaterThan(0);
    // With 30 retries over a ~3 s failover, kafkajs should get nearly everything through.
    expect(acked.length).toBeGreaterThan(VALUES / 2);

    const survivor = cluster.running()[0] as number;
    const read = await runKcat(kafkaPort(survivor), ["-C", "-t", "kf", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%s\\n"]);
    expect(read.code, read.stderr).toBe(0);
    const stored = read.stdout.split("\n").filter((line) => line.length > 0);
    // Exactly once: no value stored twice, even those whose request was retried across the failover.
    expect(new Set(stored).size).toBe(stored.length);
    // Every acknowledged value is stored, in the order it was sent.
    const storedAcked = stored.filter((value) => acked.includes(value));
    expect(storedAcked).toEqual(acked);
    // Nothing appears that was never sent.
    expect(stored.every((value) => acked.includes(value) || failed.includes(value))).toBe(true);

    // The new leader serves under a higher leader epoch.
    expect((await cluster.metadata("kf"))?.partitions[0]?.leaderEpoch ?? 0).toBeGreaterThan(0);
    console.log(`seed ${seed}: leader ${firstLeader} killed before value ${killAt}; ${acked.length} acknowledged, ${failed.length} unknown, ${stored.length} stored`);
  }, 120_000);
});
