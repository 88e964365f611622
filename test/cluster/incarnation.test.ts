/**
 * Which disk a broker id stands for (cluster/incarnation.ts): a data directory's
 * `cluster-member.json` against the incarnation etcd knows. A broker back with a new, empty disk
 * leaves the ISRs its old disk was in before it registers, and refuses to start where it was the
 * last in-sync replica (it would lead those partitions empty), unless told to accept the loss.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { Connection } from "../../src/client/connection.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { EtcdGateway } from "../../src/cluster/etcd-gateway.ts";
import { decodeRecord, encodePartition, EtcdLayout, partitionRecordSchema } from "../../src/cluster/etcd-layout.ts";
import { claimIncarnation, localMember, MEMBER_FILE } from "../../src/cluster/incarnation.ts";
import { RunnelError } from "../../src/errors.ts";
import { nativeStorage } from "../../src/log/storage.ts";
import { spawnBroker, waitFor } from "../durability/broker-process.ts";
import { tempDir } from "../server/helpers.ts";
import { type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";
import { ProcessCluster } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("incarnation.test.ts");

function refusal(action: () => unknown): Promise<RunnelError | null> {
  return Promise.resolve()
    .then(action)
    .then(
      () => null,
      (error: unknown) => (error instanceof RunnelError ? error : null),
    );
}

describe("a data directory's cluster membership file", () => {
  test("is made on first use, read back the same, and refuses another broker id, another cluster or damage", async () => {
    const dataDir = tempDir("runnel-member-");
    try {
      const made = localMember(nativeStorage, dataDir, "prod", 3);
      expect(made.incarnation).toMatch(/^[0-9a-f]{32}$/);
      expect(localMember(nativeStorage, dataDir, "prod", 3)).toEqual(made);
      expect((await refusal(() => localMember(nativeStorage, dataDir, "prod", 4)))?.message).toContain("belongs to broker 3 of cluster \"prod\"");
      expect((await refusal(() => localMember(nativeStorage, dataDir, "test", 3)))?.code).toBe("INVALID_CONFIG");
      fs.writeFileSync(path.join(dataDir, MEMBER_FILE), "{not json");
      expect((await refusal(() => localMember(nativeStorage, dataDir, "prod", 3)))?.message).toContain("is damaged");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!HAVE_ETCD)("claiming a broker id's incarnation in etcd", () => {
  let etcd: EtcdServer;
  let gateway: EtcdGateway;
  beforeAll(async () => {
    etcd = await startEtcd();
    gateway = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 3000 });
  });
  afterAll(async () => {
    await etcd?.[Symbol.asyncDispose]();
  });

  async function partition(layout: EtcdLayout, topic: string, index: number) {
    const [kv] = (await gateway.range(layout.partitionKey(topic, index))).kvs;
    return kv === undefined ? undefined : decodeRecord(partitionRecordSchema, kv.value);
  }

  test("a new id and the same disk again change nothing; a new disk leaves shared ISRs (and a leadership it still held)", async () => {
    const layout = new EtcdLayout("claims");
    await gateway.put(layout.partitionKey("t", 0), encodePartition({ leader: 2, leaderEpoch: 4, isr: [2, 1], replicas: [1, 2] }));
    await gateway.put(layout.partitionKey("t", 1), encodePartition({ leader: 1, leaderEpoch: 7, isr: [1, 2, 3], replicas: [1, 2, 3] }));
    await gateway.put(layout.partitionKey("t", 2), encodePartition({ leader: 2, leaderEpoch: 1, isr: [2], replicas: [2, 1] }));
    const oldDisk = { cluster: "claims", brokerId: 1, incarnation: "a".repeat(32) };
    expect(await claimIncarnation(gateway, layout, oldDisk, false)).toEqual({ leftIsr: [], replaced: false });
    expect(await claimIncarnation(gateway, layout, oldDisk, false)).toEqual({ leftIsr: [], replaced: false });
    expect((await partition(layout, "t", 0))?.isr).toEqual([2, 1]);

    const newDisk = { ...oldDisk, incarnation: "b".repeat(32) };
    const check = await claimIncarnation(gateway, layout, newDisk, false);
    expect(check).toEqual({ leftIsr: ["t/0", "t/1"], replaced: true });
    expect(await partition(layout, "t", 0)).toMatchObject({ leader: 2, leaderEpoch: 4, isr: [2], replicas: [1, 2] });
    // It still led t/1 on the old disk: no leader now, a new epoch; the controller elects 2 or 3.
    expect(await partition(layout, "t", 1)).toMatchObject({ leader: -1, leaderEpoch: 8, isr: [2, 3], replicas: [1, 2, 3] });
    expect(await partition(layout, "t", 2)).toMatchObject({ leader: 2, leaderEpoch: 1, isr: [2], replicas: [2, 1] });
    // Claimed: the same new disk again is nothing new.
    expect(await claimIncarnation(gateway, layout, newDisk, false)).toEqual({ leftIsr: [], replaced: false });
  });

  test("a new disk for the last in-sync replica is refused, naming the partition, unless the loss is accepted", async () => {
    const layout = new EtcdLayout("last-isr");
    await gateway.put(layout.partitionKey("solo", 0), encodePartition({ leader: -1, leaderEpoch: 3, isr: [1], replicas: [1, 2] }));
    await claimIncarnation(gateway, layout, { cluster: "last-isr", brokerId: 1, incarnation: "c".repeat(32) }, false);
    const newDisk = { cluster: "last-isr", brokerId: 1, incarnation: "d".repeat(32) };
    const refused = await refusal(() => claimIncarnation(gateway, layout, newDisk, false));
    expect(refused?.code).toBe("INVALID_CONFIG");
    expect(refused?.message).toContain("last in-sync replica of solo/0");
    expect(refused?.message).toContain("--cluster-accept-data-loss");
    // Refused: etcd still knows the old disk, so a restart with the old disk restored is welcome.
    expect(await claimIncarnation(gateway, layout, { ...newDisk, incarnation: "c".repeat(32) }, false)).toEqual({ leftIsr: [], replaced: false });
    expect((await claimIncarnation(gateway, layout, newDisk, true)).replaced).toBe(true);
    expect(await partition(layout, "solo", 0)).toMatchObject({ leader: -1, leaderEpoch: 3, isr: [1], replicas: [1, 2] });
  });
});

describe.skipIf(!HAVE_ETCD)("a broker process back with a new disk", () => {
  test("the last in-sync replica with its disk replaced refuses to start, saying why and how; with the loss accepted it starts", async () => {
    await using cluster = await ProcessCluster.start("new-disk");
    await cluster.createTopic("only", 1);
    const leader = (await cluster.metadata("only"))?.partitions[0]?.leader as number;
    const followers = cluster.running().filter((brokerId) => brokerId !== leader);
    for (const follower of followers) await cluster.kill(follower);
    // The controller takes dead followers out of the ISR: the leader is the last member.
    await waitFor(async () => (await cluster.metadata("only"))?.partitions[0]?.isr.length === 1, 20_000, "the ISR down to the leader");
    await cluster.kill(leader);
    const dataDir = cluster.node(leader).dataDir;
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.mkdirSync(dataDir);
    const failure = await cluster.startBroker(leader).then(
      () => "started",
      (error: unknown) => String(error),
    );
    expect(failure).toContain("last in-sync replica of only/0");
    expect(failure).toContain("--cluster-accept-data-loss");

    const node = cluster.node(leader);
    const args = ["--cluster", `etcd://127.0.0.1:${node.etcdLink.port}/new-disk`, "--broker-id", String(leader), "--cluster-lease-ttl-ms", "2000", "--cluster-fence-margin-ms", "500"];
    // The killed broker's id may still be on its old lease for up to a TTL: retry a bounded time.
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        node.process = await spawnBroker(dataDir, 0, [...args, "--cluster-accept-data-loss", "true"]);
        break;
      } catch (error) {
        if (Date.now() > deadline || !String(error).includes("BROKER_ID_IN_USE")) throw error;
        await Bun.sleep(250);
      }
    }
    // It leads the partition again, from an empty log: the loss the operator accepted. (A fresh
    // connection: the cluster's own one to this id belongs to the killed process.)
    const connection = new Connection({ broker: `127.0.0.1:${node.process.port}`, requestTimeoutMs: 5000 });
    const partitionNow = async () => ((await connection.request("metadata", { topics: ["only"] })).topics as WireMap[])[0]?.partitions as Array<{ leader: number; nextOffset: number }> | undefined;
    try {
      // nextOffset is -1 until the broker's local copy of the topic exists (made from its watch).
      await waitFor(
        async () => {
          const now = (await partitionNow())?.[0];
          return now?.leader === leader && now.nextOffset >= 0;
        },
        20_000,
        "the rebuilt broker leading",
      );
      expect((await partitionNow())?.[0]?.nextOffset).toBe(0);
    } finally {
      connection.abort();
    }
  }, 90_000);
});
