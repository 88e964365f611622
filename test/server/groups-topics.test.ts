/**
 * Topic changes reach a group at once: a topic created (by createTopic or auto-created by
 * metadata), grown or deleted answers its subscribed members' held heartbeats with the new
 * assignment straight away (the heartbeat interval here is a minute, so nothing else would).
 * And the HTTP listener's groups view is the coordinator's: members and what they hold show in
 * the console API and as `runnel_group_members`.
 */
import { describe, expect, test } from "bun:test";
import { type Message, startTestBroker, TestClient } from "./helpers.ts";

interface TopicPartitions {
  topic: string;
  partitions: number[];
}

const A_MINUTE_MS = 60_000;

function partitionsOf(list: unknown, topic: string): number[] {
  return (list as TopicPartitions[]).filter((entry) => entry.topic === topic).flatMap((entry) => entry.partitions).sort((left, right) => left - right);
}

/** A member that heartbeats with a long wait; `held` is what it owns after the last answer. */
class Member {
  memberEpoch: number;
  held: TopicPartitions[];

  constructor(
    private readonly client: TestClient,
    readonly memberId: string,
    joined: Message,
  ) {
    this.memberEpoch = joined.memberEpoch as number;
    this.held = joined.assigned as TopicPartitions[];
  }

  /** Sends a heartbeat the broker may hold for a minute; resolves with its answer. */
  async heldHeartbeat(): Promise<Message> {
    const answer = await this.client.request({ op: "heartbeat", group: "g", memberId: this.memberId, memberEpoch: this.memberEpoch, owned: this.held, waitMs: A_MINUTE_MS }, 20_000);
    expect(answer.error).toBeUndefined();
    this.memberEpoch = answer.memberEpoch as number;
    this.held = answer.assigned as TopicPartitions[];
    return answer;
  }
}

describe("groups and topic changes", () => {
  test("a topic created, auto-created, grown or deleted answers a held heartbeat with the new assignment at once", async () => {
    await using server = await startTestBroker({ groupHeartbeatIntervalMs: A_MINUTE_MS });
    await using memberClient = await TestClient.connect(server.port);
    await using adminClient = await TestClient.connect(server.port);
    const joined = await memberClient.request({ op: "joinGroup", group: "g", topics: ["later", "auto"], sessionTimeoutMs: 200_000 });
    expect(joined.error).toBeUndefined();
    const member = new Member(memberClient, joined.memberId as string, joined);
    expect(member.held).toEqual([]);

    let answer = member.heldHeartbeat();
    await Bun.sleep(20); // let it be held; the check below holds either way
    await adminClient.request({ op: "createTopic", topic: "later", partitions: 3 });
    expect(partitionsOf((await answer).assigned, "later")).toEqual([0, 1, 2]);

    answer = member.heldHeartbeat();
    await adminClient.request({ op: "metadata", topics: ["auto"], autoCreate: true });
    expect(partitionsOf((await answer).assigned, "auto").length).toBeGreaterThan(0);

    answer = member.heldHeartbeat();
    await adminClient.request({ op: "createPartitions", topic: "later", partitions: 5 });
    expect(partitionsOf((await answer).assigned, "later")).toEqual([0, 1, 2, 3, 4]);

    answer = member.heldHeartbeat();
    await adminClient.request({ op: "deleteTopic", topic: "later" });
    const afterDelete = await answer;
    // Partitions of a deleted topic are taken away (revoked or simply no longer assigned).
    expect(partitionsOf(afterDelete.assigned, "later")).toEqual([]);
  });

  test("the console API and /metrics show the coordinator's members and what they hold", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "orders", partitions: 2 });
    const joined = await client.request({ op: "joinGroup", group: "watched", topics: ["orders"], clientId: "shown" });
    const http = server.broker.http;
    if (http === null) throw new Error("the HTTP listener is off");
    const base = `http://${http.host}:${http.port}`;
    const groups = (await (await fetch(`${base}/api/groups`)).json()) as { groups: Array<{ name: string; state: string; members: Array<{ memberId: string; clientId: string; assigned: string[] }> | null }> };
    const watched = groups.groups.find((group) => group.name === "watched");
    expect(watched?.state).toBe("stable");
    expect(watched?.members).toEqual([{ memberId: joined.memberId as string, clientId: "shown", assigned: ["orders/0", "orders/1"] }]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('runnel_group_members{group="watched"} 1\n');
    await client.request({ op: "leaveGroup", group: "watched", memberId: joined.memberId });
    const after = await (await fetch(`${base}/metrics`)).text();
    expect(after).not.toContain('runnel_group_members{group="watched"} 1\n');
  });
});
