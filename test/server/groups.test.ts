/**
 * Consumer groups over the wire, against a real broker on port 0: join, heartbeat, leave,
 * list, describe, delete; fenced and unfenced commits; a member whose session expires; garbage
 * and over-limit requests answered with clear codes while the group goes on.
 */
import { describe, expect, test } from "bun:test";
import { type Message, startTestBroker, TestClient } from "./helpers.ts";

interface TopicPartitions {
  topic: string;
  partitions: number[];
}

function partitionsOf(list: unknown): number[] {
  return (list as TopicPartitions[]).flatMap((entry) => entry.partitions).sort((left, right) => left - right);
}

function errorCode(answer: Message): unknown {
  return (answer.error as { code?: unknown } | undefined)?.code;
}

/** Heartbeats as a member does: reports what it holds, adopts the answer. */
async function beat(client: TestClient, group: string, member: { memberId: string; memberEpoch: number; held: TopicPartitions[] }): Promise<Message> {
  const answer = await client.request({ op: "heartbeat", group, memberId: member.memberId, memberEpoch: member.memberEpoch, owned: member.held });
  if (answer.error === undefined) {
    member.memberEpoch = answer.memberEpoch as number;
    member.held = answer.assigned as TopicPartitions[];
  }
  return answer;
}

describe("groups over the wire", () => {
  test("two members share a topic's partitions, commit what they own, and are fenced from what they do not", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "orders", partitions: 4 });
    const joinedFirst = await client.request({ op: "joinGroup", group: "g", topics: ["orders"], clientId: "first" });
    expect(partitionsOf(joinedFirst.assigned)).toEqual([0, 1, 2, 3]);
    const first = { memberId: joinedFirst.memberId as string, memberEpoch: joinedFirst.memberEpoch as number, held: joinedFirst.assigned as TopicPartitions[] };
    const joinedSecond = await client.request({ op: "joinGroup", group: "g", topics: ["orders"], clientId: "second" });
    const second = { memberId: joinedSecond.memberId as string, memberEpoch: joinedSecond.memberEpoch as number, held: joinedSecond.assigned as TopicPartitions[] };
    expect(partitionsOf(second.held)).toEqual([]);

    const asked = await beat(client, "g", first);
    expect(partitionsOf(asked.revoke)).toHaveLength(2);
    const given = partitionsOf(asked.revoke);
    // Before giving them up, the first member commits them: it still owns them.
    const commit = await client.request({
      op: "commitOffsets",
      group: "g",
      memberId: first.memberId,
      generation: asked.generation,
      offsets: given.map((partition) => ({ topic: "orders", partition, offset: 5 })),
    });
    expect(commit.results).toEqual(given.map((partition) => ({ topic: "orders", partition })));
    await beat(client, "g", first); // no longer lists them
    const granted = await beat(client, "g", second);
    expect(partitionsOf(second.held)).toEqual(given);

    const fenced = await client.request({
      op: "commitOffsets",
      group: "g",
      memberId: first.memberId,
      generation: granted.generation,
      offsets: [{ topic: "orders", partition: given[0], offset: 9 }],
    });
    expect((fenced.results as Array<{ error?: { code: string } }>)[0]?.error?.code).toBe("COMMIT_FENCED");
    const admin = await client.request({ op: "commitOffsets", group: "g", offsets: [{ topic: "orders", partition: given[0], offset: 7 }] });
    expect((admin.results as Array<{ error?: unknown }>)[0]?.error).toBeUndefined();
    const committed = await client.request({ op: "fetchOffsets", group: "g", partitions: [{ topic: "orders", partition: given[0] }] });
    expect((committed.offsets as Array<{ offset: number }>)[0]?.offset).toBe(7);

    const described = await client.request({ op: "describeGroup", group: "g" });
    expect(described).toMatchObject({ group: "g", kind: "native", state: "stable", assignor: "sticky" });
    expect((described.members as Array<{ clientId: string; assigned: unknown }>).map((member) => [member.clientId, partitionsOf(member.assigned).length])).toEqual(
      expect.arrayContaining([
        ["first", 2],
        ["second", 2],
      ]),
    );
  });

  test("a heartbeat with waitMs and no news is held, and answered as soon as a rebalance gives its member news", async () => {
    await using server = await startTestBroker();
    await using first = await TestClient.connect(server.port);
    await using second = await TestClient.connect(server.port);
    await first.request({ op: "createTopic", topic: "orders", partitions: 2 });
    const joined = await first.request({ op: "joinGroup", group: "g", topics: ["orders"] });
    expect(partitionsOf(joined.assigned)).toEqual([0, 1]);
    const quiet = await first.request({ op: "heartbeat", group: "g", memberId: joined.memberId, memberEpoch: joined.memberEpoch, owned: joined.assigned, waitMs: 50 });
    expect(partitionsOf(quiet.assigned)).toEqual([0, 1]); // held until the wait was up, then answered unchanged
    expect(quiet.revoke).toEqual([]);
    first.send({ op: "heartbeat", group: "g", memberId: joined.memberId, memberEpoch: joined.memberEpoch, owned: joined.assigned, waitMs: 60_000 });
    await Bun.sleep(50);
    expect(first.frames.length).toBe(3); // createTopic, joinGroup, the first heartbeat: this one is held
    await second.request({ op: "joinGroup", group: "g", topics: ["orders"] });
    const woken = await first.next();
    expect(partitionsOf(woken.revoke)).toHaveLength(1); // computed after the newcomer joined
  });

  test("a member that stops heartbeating is expired and its partitions reach the other", async () => {
    await using server = await startTestBroker({ groupSessionTimeoutMsMin: 100 });
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "orders", partitions: 2 });
    const quiet = await client.request({ op: "joinGroup", group: "g", topics: ["orders"], sessionTimeoutMs: 300 });
    const joined = await client.request({ op: "joinGroup", group: "g", topics: ["orders"], sessionTimeoutMs: 30_000 });
    const live = { memberId: joined.memberId as string, memberEpoch: joined.memberEpoch as number, held: [] as TopicPartitions[] };
    const startedMs = Date.now();
    while (partitionsOf(live.held).length < 2) {
      if (Date.now() - startedMs > 10_000) throw new Error("the quiet member's partitions never arrived");
      await beat(client, "g", live);
      await Bun.sleep(50);
    }
    const gone = await client.request({ op: "heartbeat", group: "g", memberId: quiet.memberId, memberEpoch: 0, owned: [] });
    expect(errorCode(gone)).toBe("UNKNOWN_MEMBER");
  });

  test("leave, list, delete: a group with members cannot be deleted; once empty its offsets go", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "orders", partitions: 1 });
    const joined = await client.request({ op: "joinGroup", group: "g", topics: ["orders"] });
    await client.request({ op: "commitOffsets", group: "g", memberId: joined.memberId, generation: joined.generation, offsets: [{ topic: "orders", partition: 0, offset: 3 }] });
    await client.request({ op: "commitOffsets", group: "tools-only", offsets: [{ topic: "orders", partition: 0, offset: 1 }] });
    expect((await client.request({ op: "listGroups" })).groups).toEqual([
      { group: "g", kind: "native", state: "stable", generation: joined.generation, members: 1 },
      { group: "tools-only", state: "empty", generation: 0, members: 0 },
    ]);
    expect(errorCode(await client.request({ op: "deleteGroup", group: "g" }))).toBe("GROUP_NOT_EMPTY");
    expect((await client.request({ op: "leaveGroup", group: "g", memberId: joined.memberId })).error).toBeUndefined();
    expect(errorCode(await client.request({ op: "leaveGroup", group: "g", memberId: joined.memberId }))).toBe("UNKNOWN_MEMBER");
    expect((await client.request({ op: "deleteGroup", group: "g" })).error).toBeUndefined();
    const offsets = await client.request({ op: "fetchOffsets", group: "g" });
    expect(offsets.offsets).toEqual([]);
    expect((await client.request({ op: "describeGroup", group: "g" })).state).toBe("empty");
  });

  test("garbage, 10,000 topics and a mixed-up commit get clear errors, and the group goes on", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "orders", partitions: 2 });
    const joined = await client.request({ op: "joinGroup", group: "g", topics: ["orders"] });
    const member = { memberId: joined.memberId as string, memberEpoch: joined.memberEpoch as number, held: joined.assigned as TopicPartitions[] };
    const tooMany = Array.from({ length: 10_000 }, (_, index) => `topic-${index}`);
    const refused = await client.request({ op: "joinGroup", group: "g", topics: tooMany });
    expect(errorCode(refused)).toBe("LIMIT_EXCEEDED");
    expect(String((refused.error as { message: string }).message)).toContain("at most 1000 topics");
    expect(errorCode(await client.request({ op: "heartbeat", group: "g", memberId: member.memberId, memberEpoch: "x", owned: 5 }))).toBe("INVALID_REQUEST");
    expect(errorCode(await client.request({ op: "heartbeat", group: "g", memberId: member.memberId, memberEpoch: 1_000_000, owned: [] }))).toBe("INVALID_REQUEST");
    expect(errorCode(await client.request({ op: "joinGroup", group: "g", topics: ["orders"], assignor: "range" }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
    expect(errorCode(await client.request({ op: "commitOffsets", group: "g", memberId: member.memberId, offsets: [{ topic: "orders", partition: 0, offset: 1 }] }))).toBe("INVALID_REQUEST");
    const claimed = await beat(client, "g", { ...member, held: [{ topic: "orders", partitions: [0, 1, 99] }, { topic: "nope", partitions: [1] }] });
    expect(claimed.revoke).toEqual([
      { topic: "nope", partitions: [1] },
      { topic: "orders", partitions: [99] },
    ]);
    const healthy = await beat(client, "g", member);
    expect(partitionsOf(healthy.assigned)).toEqual([0, 1]);
  });
});
