/**
 * `__consumer_offsets` stays bounded (docs/cluster.md, "Consumer groups": snapshots and time
 * retention): with a 1 s snapshot interval, three brokers on a real etcd (in this process, so the
 * test can read their logs) delete the partition's old segments while groups commit, and a new
 * coordinator that loads only what is left still serves every group's latest offsets — and not
 * a group deleted before the retained part began.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { OFFSETS_TOPIC } from "../../src/cluster/offsets-topic.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { waitFor as until } from "../durability/broker-process.ts";
import { clusterBrokerOptions, type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("offsets-snapshots.test.ts");


describe.skipIf(!HAVE_ETCD)("__consumer_offsets over time", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  function clusterBroker(brokerId: number): Promise<TestBroker> {
    return startTestBroker({
      ...clusterBrokerOptions(etcd, "snapshots", brokerId),
      offsetsTopicPartitions: 1,
      offsetsSnapshotIntervalMs: 1000,
      retentionCheckIntervalMs: 100,
    });
  }

  test("old segments are deleted while groups commit, and a new coordinator still serves the latest offsets and not a deleted group", async () => {
    const brokers = [await clusterBroker(1), await clusterBroker(2), await clusterBroker(3)];
    const admin = new Admin({ broker: brokers.map((broker) => `127.0.0.1:${broker.port}`), requestTimeoutMs: 10_000 });
    try {
      await until(() => brokers.every((broker) => broker.broker.context.cluster?.brokers().length === 3), 15_000, "three live brokers");
      await admin.createTopic("t", { partitions: 1, replicationFactor: 3, minInsyncReplicas: 2 });
      await until(() => brokers.every((broker) => broker.broker.context.log.hasTopic("t")), 15_000, "every broker's copy of t");
      const at = (offset: number) => [{ topic: "t", partition: 0, offset }];
      await admin.commitOffsets("keep", at(5));
      await admin.commitOffsets("gone", at(7));
      await admin.deleteGroup("gone");
      // Those three records are the partition's first; keep committing until every replica has deleted them.
      const logStart = (broker: TestBroker) => (broker.broker.context.log.hasTopic(OFFSETS_TOPIC) ? broker.broker.context.log.partition(OFFSETS_TOPIC, 0).logStartOffset : 0);
      let busy = 0;
      await until(
        async () => {
          await admin.commitOffsets("busy", at((busy += 1)));
          return brokers.every((broker) => logStart(broker) > 3);
        },
        60_000,
        "every replica's log start past the first records",
      );

      const coordinator = brokers.find((broker) => broker.broker.context.cluster?.partitionState(OFFSETS_TOPIC, 0)?.leader === broker.broker.context.cluster?.brokerId)!;
      await coordinator[Symbol.asyncDispose]();
      const survivors = brokers.filter((broker) => broker !== coordinator);
      await until(() => survivors.some((broker) => broker.broker.context.cluster?.partitionState(OFFSETS_TOPIC, 0)?.leader === broker.broker.context.cluster?.brokerId), 15_000, "a new coordinator");

      const survivorAdmin = new Admin({ broker: survivors.map((broker) => `127.0.0.1:${broker.port}`), requestTimeoutMs: 15_000 });
      try {
        expect((await survivorAdmin.committedOffsets("keep", [{ topic: "t", partition: 0 }]))[0]?.offset).toBe(5);
        expect((await survivorAdmin.committedOffsets("busy", [{ topic: "t", partition: 0 }]))[0]?.offset).toBe(busy);
        expect(await survivorAdmin.groupOffsets("gone")).toEqual([]);
      } finally {
        await survivorAdmin.close();
      }
    } finally {
      await admin.close();
      // Stopping is idempotent: the stopped coordinator's second dispose only removes its directory.
      for (const broker of brokers) await broker[Symbol.asyncDispose]();
    }
  }, 120_000);
});
