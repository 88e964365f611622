/**
 * Consumer groups in a cluster (issue 14, docs/cluster.md "Consumer groups"): etcd and three
 * real broker processes. A group's coordinator is the leader of its partition of
 * `__consumer_offsets`; every broker names the same one, the others refuse the group's requests
 * with NOT_COORDINATOR; members bootstrapped through different brokers form one group; commits
 * are replicated, so after a SIGKILL of the coordinator the new one serves them and the members
 * resume from them; a Kafka client's group commits and resumes on the cluster.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { describe, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { Admin } from "../../src/client/admin.ts";
import { Consumer, type Message } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { toRunnelError } from "../../src/errors.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { waitFor } from "../durability/broker-process.ts";
import { etcdOrSkip } from "./etcd-harness.ts";
import { ProcessCluster } from "./failover-harness.ts";

const HAVE_ETCD = etcdOrSkip("cluster-groups.test.ts");
const TOPIC = "orders";
const PARTITIONS = 4;
const PER_PARTITION = 50;
const decoder = new TextDecoder();

/** The coordinator every running broker names for `group` (retrying while the offsets topic is created or leaderless). */
async function agreedCoordinator(cluster: ProcessCluster, group: string): Promise<number> {
  let agreed = -1;
  await waitFor(
    async () => {
      const named = new Set<number>();
      for (const brokerId of cluster.running()) {
        try {
          named.add((await cluster.connection(brokerId).request("findCoordinator", { group }, 3_000)).brokerId as number);
        } catch {
          return false;
        }
      }
      agreed = named.size === 1 ? ([...named][0] as number) : -1;
      return agreed >= 0 && cluster.running().includes(agreed);
    },
    60_000,
    `every broker names one live coordinator for ${group}`,
  );
  return agreed;
}

/** Waits until the coordinator counts `count` members, each holding at least one partition. */
async function membersHoldingPartitions(cluster: ProcessCluster, brokerId: number, group: string, count: number): Promise<void> {
  await waitFor(
    async () => {
      try {
        const answer = await cluster.connection(brokerId).request("describeGroup", { group }, 3_000);
        const members = answer.members as WireMap[];
        return members.length === count && members.every((member) => (member.assigned as WireMap[]).some((entry) => (entry.partitions as number[]).length > 0));
      } catch {
        return false;
      }
    },
    60_000,
    `${count} members of ${group}, each with partitions`,
  );
}

/** The group's committed offsets as its coordinator answers them (retrying while it loads). */
async function committedAt(cluster: ProcessCluster, brokerId: number, group: string): Promise<number[]> {
  let offsets: number[] = [];
  await waitFor(
    async () => {
      try {
        const partitions = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition }));
        const answer = await cluster.connection(brokerId).request("fetchOffsets", { group, partitions }, 3_000);
        offsets = (answer.offsets as WireMap[]).map((entry) => entry.offset as number);
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    `broker ${brokerId} serves ${group}'s committed offsets`,
  );
  return offsets;
}

async function produce(bootstrap: string[], tag: string): Promise<void> {
  const producer = new Producer({ broker: bootstrap, durability: "replicated", idempotent: false, lingerMs: 0, retryBackoffMs: 50 });
  try {
    await Promise.all(Array.from({ length: PARTITIONS * PER_PARTITION }, (_, i) => producer.send(TOPIC, { value: `${tag}-${i % PARTITIONS}-${i}`, partition: i % PARTITIONS })));
  } finally {
    await producer.close();
  }
}

/** One group member reading in the background: what it got (and when), and what the broker acknowledged as committed. */
class Member {
  readonly consumer: Consumer;
  readonly seen: Array<{ partition: number; offset: number; value: string; afterKill: boolean }> = [];
  readonly acked = new Map<number, number>();
  private running: Promise<void> | null = null;
  /** nextBatch calls answered (for the failure message). */
  batches = 0;
  failure: unknown = null;

  constructor(bootstrap: string[], group: string, private readonly killed: () => boolean) {
    this.consumer = new Consumer({
      broker: bootstrap,
      groupId: group,
      sessionTimeoutMs: 6_000,
      maxWaitMs: 100,
      retryBackoffMs: 50,
      autoCommitIntervalMs: 100,
      onCommitted: (offsets) => {
        for (const { partition, offset } of offsets) this.acked.set(partition, Math.max(offset, this.acked.get(partition) ?? 0));
      },
    });
    this.consumer.subscribe(TOPIC);
  }

  start(): void {
    this.running = this.read();
  }

  private async read(): Promise<void> {
    try {
      for (;;) {
        const batch: Message[] = await this.consumer.nextBatch();
        this.batches += 1;
        if (batch.length === 0) return;
        for (const message of batch) this.seen.push({ partition: message.partition, offset: message.offset, value: decoder.decode(message.value!), afterKill: this.killed() });
      }
    } catch (error) {
      this.failure = error;
    }
  }

  async close(): Promise<void> {
    await this.consumer.close().catch(() => undefined);
    await this.running;
  }
}

describe.skipIf(!HAVE_ETCD)("consumer groups on a three-broker cluster", () => {
  test("members bootstrapped through different brokers form one group, and commits survive a SIGKILL of the coordinator", async () => {
    await using cluster = await ProcessCluster.start("groups");
    await cluster.createTopic(TOPIC, PARTITIONS);
    const group = "billing";
    // The first question about a group creates __consumer_offsets: no coordinator yet, retriably.
    const early = await cluster
      .connection(1)
      .request("findCoordinator", { group })
      .then(() => null, (error: unknown) => toRunnelError(error));
    expect(early?.code).toBe("COORDINATOR_NOT_AVAILABLE");
    expect(early?.retriable).toBe(true);
    const coordinator = await agreedCoordinator(cluster, group);
    // The coordinator's first answer about the group, once it has taken up the lead: still loading the partition.
    let firstServed = null as string | null;
    await waitFor(
      async () => {
        const code = await cluster
          .connection(coordinator)
          .request("describeGroup", { group }, 3_000)
          .then(() => "none", (error: unknown) => toRunnelError(error).code);
        if (code !== "COORDINATOR_NOT_AVAILABLE") firstServed ??= code;
        return code === "none";
      },
      30_000,
      "the coordinator describes the group",
    );
    expect(firstServed).toBe("COORDINATOR_LOAD_IN_PROGRESS");
    const other = cluster.running().find((brokerId) => brokerId !== coordinator)!;
    // A broker that is not the coordinator refuses the group's requests, retriably.
    const refusal = await cluster
      .connection(other)
      .request("joinGroup", { group, topics: [TOPIC] })
      .then(() => null, (error: unknown) => toRunnelError(error));
    expect(refusal?.code).toBe("NOT_COORDINATOR");
    expect(refusal?.retriable).toBe(true);

    const address = (brokerId: number) => `127.0.0.1:${cluster.node(brokerId).process!.port}`;
    const all = cluster.running();
    // Each member's list starts with a different broker, neither of them the coordinator.
    const firsts = all.filter((brokerId) => brokerId !== coordinator);
    const bootstrapOf = (first: number) => [first, ...all.filter((brokerId) => brokerId !== first)].map(address);
    let killed = false;
    const members = firsts.map((first) => new Member(bootstrapOf(first), group, () => killed));
    try {
      for (const member of members) member.start();
      await membersHoldingPartitions(cluster, coordinator, group, members.length);
      await produce(all.map(address), "before");
      const seenValues = () => new Set(members.flatMap((member) => member.seen.map((entry) => entry.value)));
      await waitFor(() => seenValues().size === PARTITIONS * PER_PARTITION, 60_000, "every record before the kill consumed");
      // One group: the partitions are split between the two members, no partition read by both.
      const partitionsOf = (member: Member) => new Set(member.seen.map((entry) => entry.partition));
      await waitFor(() => members.every((member) => [...member.acked.values()].reduce((sum, offset) => sum + offset, 0) > 0), 30_000, "both members committed");
      const [first, second] = members.map(partitionsOf) as [Set<number>, Set<number>];
      expect(first.size + second.size).toBe(PARTITIONS);
      expect([...first].some((partition) => second.has(partition))).toBe(false);
      const ackedAll = () => {
        const merged = new Map<number, number>();
        for (const member of members) for (const [partition, offset] of member.acked) merged.set(partition, Math.max(offset, merged.get(partition) ?? 0));
        return merged;
      };
      await waitFor(() => [...Array(PARTITIONS).keys()].every((partition) => ackedAll().get(partition) === PER_PARTITION), 30_000, "every partition committed to its end");
      const ackedBeforeKill = ackedAll();

      killed = true;
      await cluster.kill(coordinator);
      const successor = await agreedCoordinator(cluster, group);
      expect(successor).not.toBe(coordinator);
      // The new coordinator serves every commit acknowledged before the kill.
      const served = await committedAt(cluster, successor, group);
      served.forEach((offset, partition) => expect(offset).toBeGreaterThanOrEqual(ackedBeforeKill.get(partition)!));

      const survivors = cluster.running().map(address);
      await produce(survivors, "after");
      await waitFor(() => seenValues().size === 2 * PARTITIONS * PER_PARTITION, 90_000, "every record after the kill consumed too").catch(async (error) => {
        const described = await cluster.connection(successor).request("describeGroup", { group }, 3_000).catch((failure: unknown) => String(failure));
        const state = members.map((member) => ({
          seen: member.seen.length,
          afterKill: member.seen.filter((entry) => entry.afterKill).length,
          failure: String(member.failure),
          acked: [...member.acked],
          assignment: member.consumer.assignment(),
          positions: member.consumer.positions(),
          batches: member.batches,
        }));
        throw new Error(`${String(error)}; members ${JSON.stringify(state)}; group at ${successor}: ${JSON.stringify(described)}`);
      });
      // At least once across the failover, and nothing below an acknowledged commit read again.
      const reread = members.flatMap((member) => member.seen.filter((entry) => entry.afterKill && entry.offset < ackedBeforeKill.get(entry.partition)!));
      expect(reread).toEqual([]);
      expect(members.map((member) => member.failure)).toEqual([null, null]);
    } finally {
      await Promise.all(members.map((member) => member.close()));
    }
  }, 240_000);

  test("a kafkajs consumer group on the cluster finds its coordinator, commits, and a new member resumes after the commit", async () => {
    await using cluster = await ProcessCluster.start("groups-kafka");
    await cluster.createTopic(TOPIC, PARTITIONS);
    const group = "kafka-readers";
    const coordinator = await agreedCoordinator(cluster, group);
    const bootstrapBroker = cluster.running().find((brokerId) => brokerId !== coordinator)!;
    const kafkaAddress = String(cluster.node(bootstrapBroker).process!.startLine.kafka);
    const all = cluster.running().map((brokerId) => `127.0.0.1:${cluster.node(brokerId).process!.port}`);
    await produce(all, "first");
    const kafka = new Kafka({ brokers: [kafkaAddress], clientId: "cluster-groups", logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100 } });

    const readAll = async (expected: number): Promise<string[]> => {
      const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10_000, heartbeatInterval: 500 });
      const values: string[] = [];
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
        await consumer.run({ autoCommitInterval: 100, eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
        await waitFor(() => values.length >= expected, 60_000, `${expected} records through kafkajs`);
      } finally {
        await consumer.disconnect();
      }
      return values;
    };
    const firstRound = await readAll(PARTITIONS * PER_PARTITION);
    expect(new Set(firstRound).size).toBe(PARTITIONS * PER_PARTITION);
    // The commits went to the coordinator, through __consumer_offsets.
    expect(await committedAt(cluster, coordinator, group)).toEqual(Array(PARTITIONS).fill(PER_PARTITION));
    // The admin client (and `runnel groups`) finds the coordinator itself, whichever broker it starts from.
    const admin = new Admin({ broker: `127.0.0.1:${cluster.node(bootstrapBroker).process!.port}` });
    try {
      const offsets = await admin.committedOffsets(group, Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition })));
      expect(offsets.map((entry) => entry.offset)).toEqual(Array(PARTITIONS).fill(PER_PARTITION));
    } finally {
      await admin.close();
    }

    await produce(all, "second");
    const secondRound = await readAll(PARTITIONS * PER_PARTITION);
    expect(secondRound.every((value) => value.startsWith("second-"))).toBe(true);
  }, 240_000);
});
