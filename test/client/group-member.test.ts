/**
 * The client's group member over TCP against a broker on port 0: two hundred members share a
 * topic two partitions each and take a leaver's partitions over; a member cut off from its
 * broker lets its partitions go by itself once its session timeout passes unanswered; an answer
 * that comes back only after the session timeout (a starved process) grants nothing.
 */
import { describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { GroupMember, type MembershipListener, type TopicPartition } from "../../src/client/group-member.ts";
import type { RunnelError } from "../../src/errors.ts";
import { startTestBroker } from "../server/helpers.ts";
import { FakeBroker } from "./fake-broker.ts";

class Holder implements MembershipListener {
  readonly held = new Set<number>();
  readonly lostAtMs: number[] = [];
  failure: RunnelError | null = null;
  member: GroupMember | null = null;
  assigned(partitions: TopicPartition[]): void {
    for (const { partition } of partitions) this.held.add(partition);
  }
  revoke(partitions: TopicPartition[]): void {
    for (const { partition } of partitions) this.held.delete(partition);
    this.member?.released(partitions);
  }
  lost(partitions: TopicPartition[]): void {
    for (const { partition } of partitions) this.held.delete(partition);
    this.lostAtMs.push(Date.now());
  }
  failed(error: RunnelError): void {
    this.failure = error;
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function start(broker: string, topic: string, sessionTimeoutMs = 10_000): Holder {
  const holder = new Holder();
  holder.member = new GroupMember({ broker, groupId: "g", topics: [topic], sessionTimeoutMs }, holder);
  holder.member.start();
  return holder;
}

describe("GroupMember", () => {
  test("two hundred members on four hundred partitions hold two each, and take over a leaver's", async () => {
    await using server = await startTestBroker();
    const broker = `127.0.0.1:${server.port}`;
    const admin = new Admin({ broker });
    await admin.createTopic("wide", { partitions: 400 });
    const holders = Array.from({ length: 200 }, () => start(broker, "wide"));
    const owned = () => holders.reduce((sum, holder) => sum + holder.held.size, 0);
    try {
      await waitFor(() => holders.every((holder) => holder.held.size === 2), 30_000, "two partitions each");
      const owners = new Map<number, number>();
      holders.forEach((holder, index) => {
        for (const partition of holder.held) owners.set(partition, index);
      });
      expect(owners.size).toBe(400);
      const leaver = holders.pop()!;
      await leaver.member?.close();
      await waitFor(() => owned() === 400, 30_000, "the leaver's partitions owned again");
      expect(holders.every((holder) => holder.failure === null)).toBe(true);
      expect((await admin.describeGroup("g")).members).toHaveLength(199);
    } finally {
      await Promise.all(holders.map((holder) => holder.member?.close()));
      await admin.close();
    }
  }, 60_000);

  test("a member cut off from its broker lets its partitions go by itself once its session timeout passes unanswered", async () => {
    const server = await startTestBroker();
    const broker = `127.0.0.1:${server.port}`;
    const admin = new Admin({ broker });
    await admin.createTopic("solo", { partitions: 2 });
    await admin.close();
    const holder = start(broker, "solo", 1_000);
    try {
      await waitFor(() => holder.held.size === 2, 10_000, "both partitions");
      await server[Symbol.asyncDispose]();
      await waitFor(() => holder.held.size === 0, 10_000, "the partitions let go");
      expect(holder.lostAtMs).toHaveLength(1); // by its own session timer: no broker is there to say so
    } finally {
      await holder.member?.close();
    }
  }, 30_000);

  test("an answer that arrives a session timeout after its request grants nothing: the member asks again at epoch 0 and takes the partition from the next answer", async () => {
    const answer = { memberId: "m-1", generation: 1, memberEpoch: 1, assigned: [{ topic: "t", partitions: [0] }], revoke: [], heartbeatIntervalMs: 50, sessionTimeoutMs: 1_000 };
    const broker = new FakeBroker({ onOther: (request) => (request.op === "leaveGroup" ? {} : answer) });
    const heartbeatsWhenAssigned: number[] = [];
    const holder = new Holder();
    holder.assigned = (partitions) => {
      heartbeatsWhenAssigned.push(broker.requestsOf("heartbeat").length);
      for (const { partition } of partitions) holder.held.add(partition);
    };
    holder.member = new GroupMember({ broker: broker.address, groupId: "g", topics: ["t"], sessionTimeoutMs: 1_000 }, holder);
    try {
      holder.member.start();
      // The process is starved past the session timeout while its join is out (as on a loaded machine).
      Bun.sleepSync(1_200);
      await waitFor(() => holder.held.has(0), 10_000, "partition 0 taken");
      expect(heartbeatsWhenAssigned).toEqual([1]);
      expect(broker.requestsOf("heartbeat")[0]).toMatchObject({ memberId: "m-1", memberEpoch: 0, owned: [] });
      expect(holder.failure).toBeNull();
    } finally {
      await holder.member.close();
      broker.stop();
    }
  }, 30_000);
});
