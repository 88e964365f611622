/**
 * Kafka classic groups in the coordinator, sans-IO under a fake clock: the join phase waits for
 * every known member, the leader gets the member list and hands out assignments through
 * SyncGroup, heartbeats and commits are fenced by generation, a member that does not rejoin or
 * whose session ends is removed, and a group is one kind or the other.
 */
import { describe, expect, test } from "bun:test";
import type { ClassicJoinRequest } from "../../src/broker/classic-groups.ts";
import { RunnelError } from "../../src/errors.ts";
import { createWorld } from "./group-sim.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

function joinRequest(memberId = "", protocols = ["range"]): ClassicJoinRequest {
  return {
    group: "k",
    memberId,
    clientId: "kafka-client",
    sessionTimeoutMs: 1_000,
    rebalanceTimeoutMs: 5_000,
    protocolType: "consumer",
    protocols: protocols.map((name) => ({ name, metadata: bytes(name.length) })),
  };
}

/** "pending", or how the promise settled, after the current turn's callbacks have run. */
async function stateOf<Value>(promise: Promise<Value>): Promise<"pending" | "resolved" | string> {
  let state = "pending";
  promise.then(
    () => (state = "resolved"),
    (error: unknown) => (state = error instanceof RunnelError ? error.code : String(error)),
  );
  await Bun.sleep(0);
  return state;
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof RunnelError ? error.code : String(error);
  }
  return undefined;
}

describe("GroupCoordinator: Kafka classic groups", () => {
  test("joins wait for every known member; the leader assigns through SyncGroup; heartbeats are fenced by generation", async () => {
    const { coordinator } = createWorld({});
    const first = await coordinator.classicJoin(joinRequest());
    expect(first).toMatchObject({ generation: 1, protocolName: "range", leaderId: first.memberId });
    expect(first.members.map((member) => member.memberId)).toEqual([first.memberId]);
    expect(await coordinator.classicSync({ group: "k", memberId: first.memberId, generation: 1, assignments: [{ memberId: first.memberId, assignment: bytes(1) }] })).toEqual(bytes(1));

    const secondJoin = coordinator.classicJoin(joinRequest());
    expect(await stateOf(secondJoin)).toBe("pending"); // waits for the first member to join again
    expect(codeOf(() => coordinator.classicHeartbeat("k", first.memberId, 1))).toBe("REBALANCE_IN_PROGRESS");
    const again = await coordinator.classicJoin(joinRequest(first.memberId));
    const second = await secondJoin;
    expect(again.generation).toBe(2);
    expect(again.leaderId).toBe(first.memberId);
    expect(again.members.map((member) => member.memberId).sort()).toEqual([first.memberId, second.memberId].sort());
    expect(second.members).toEqual([]); // only the leader sees the member list

    const secondSync = coordinator.classicSync({ group: "k", memberId: second.memberId, generation: 2, assignments: [] });
    expect(await stateOf(secondSync)).toBe("pending"); // waits for the leader's assignments
    const assignments = [
      { memberId: first.memberId, assignment: bytes(1) },
      { memberId: second.memberId, assignment: bytes(2) },
    ];
    expect(await coordinator.classicSync({ group: "k", memberId: first.memberId, generation: 2, assignments })).toEqual(bytes(1));
    expect(await secondSync).toEqual(bytes(2));
    expect(codeOf(() => coordinator.classicHeartbeat("k", second.memberId, 2))).toBeUndefined();
    expect(codeOf(() => coordinator.classicHeartbeat("k", second.memberId, 1))).toBe("ILLEGAL_GENERATION");
    expect(codeOf(() => coordinator.checkCommit("k", second.memberId, 2, "orders", 0))).toBeUndefined();
    expect(codeOf(() => coordinator.checkCommit("k", second.memberId, 1, "orders", 0))).toBe("ILLEGAL_GENERATION");
    expect(coordinator.listGroups()).toEqual([{ group: "k", kind: "classic", state: "stable", generation: 2, members: 2 }]);
  });

  test("while a rebalance is prepared a member still commits at its generation; between the join phase and the assignment it may not", async () => {
    const { coordinator } = createWorld({});
    const first = await coordinator.classicJoin(joinRequest());
    await coordinator.classicSync({ group: "k", memberId: first.memberId, generation: 1, assignments: [] });
    const secondJoin = coordinator.classicJoin(joinRequest());
    // preparingRebalance: the first member commits what it read before it joins again.
    expect(codeOf(() => coordinator.checkCommit("k", first.memberId, 1, "orders", 0))).toBeUndefined();
    expect(codeOf(() => coordinator.checkCommit("k", first.memberId, 0, "orders", 0))).toBe("ILLEGAL_GENERATION");
    await coordinator.classicJoin(joinRequest(first.memberId));
    await secondJoin;
    // completingRebalance: generation 2 exists but its assignment does not yet.
    expect(codeOf(() => coordinator.checkCommit("k", first.memberId, 2, "orders", 0))).toBe("REBALANCE_IN_PROGRESS");
  });

  test("a member that does not join again in time, or whose session ends, is removed and the rest rebalance", async () => {
    const { coordinator, clock } = createWorld({});
    const first = await coordinator.classicJoin(joinRequest());
    await coordinator.classicSync({ group: "k", memberId: first.memberId, generation: 1, assignments: [] });
    const secondJoin = coordinator.classicJoin(joinRequest());
    // The first member never joins again: the join phase ends at the rebalance timeout without it.
    clock.advance(5_000);
    coordinator.expire();
    const second = await secondJoin;
    expect(second).toMatchObject({ generation: 2, leaderId: second.memberId });
    expect(codeOf(() => coordinator.classicHeartbeat("k", first.memberId, 1))).toBe("UNKNOWN_MEMBER");
    await coordinator.classicSync({ group: "k", memberId: second.memberId, generation: 2, assignments: [] });

    const third = coordinator.classicJoin(joinRequest());
    await coordinator.classicJoin(joinRequest(second.memberId));
    const thirdAnswer = await third;
    await coordinator.classicSync({ group: "k", memberId: second.memberId, generation: 3, assignments: [] });
    await coordinator.classicSync({ group: "k", memberId: thirdAnswer.memberId, generation: 3, assignments: [] });
    // Only the second member heartbeats: the third's session ends, and the group rebalances.
    for (let step = 0; step < 3; step++) {
      clock.advance(400);
      coordinator.classicHeartbeat("k", second.memberId, 3);
      coordinator.expire();
    }
    expect(codeOf(() => coordinator.classicHeartbeat("k", thirdAnswer.memberId, 3))).toBe("UNKNOWN_MEMBER");
    expect(codeOf(() => coordinator.classicHeartbeat("k", second.memberId, 3))).toBe("REBALANCE_IN_PROGRESS");
    expect((await coordinator.classicJoin(joinRequest(second.memberId))).generation).toBe(4);
    coordinator.classicLeave("k", second.memberId);
    expect(coordinator.groupCount).toBe(0);
  });

  test("a group is one kind or the other, and a classic member must share a protocol and the protocol type", async () => {
    const { coordinator } = createWorld({ orders: 1 });
    coordinator.join({ group: "native", topics: ["orders"] });
    await expect(Promise.resolve().then(() => coordinator.classicJoin({ ...joinRequest(), group: "native" }))).rejects.toMatchObject({ code: "INCONSISTENT_GROUP_PROTOCOL" });
    await coordinator.classicJoin(joinRequest("", ["range", "roundrobin"]));
    expect(codeOf(() => coordinator.join({ group: "k", topics: ["orders"] }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
    expect(codeOf(() => coordinator.heartbeat({ group: "k", memberId: "x", memberEpoch: 0, owned: [] }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
    expect(codeOf(() => coordinator.classicJoin(joinRequest("", ["sticky"])))).toBe("INCONSISTENT_GROUP_PROTOCOL");
    expect(codeOf(() => coordinator.classicJoin({ ...joinRequest(), protocolType: "connect" }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
    expect(codeOf(() => coordinator.classicJoin(joinRequest("ghost")))).toBe("UNKNOWN_MEMBER");
    expect(codeOf(() => coordinator.classicJoin({ ...joinRequest(), sessionTimeoutMs: 1 }))).toBe("INVALID_REQUEST");
    // A member naming roundrobin first and range second joins; the vote keeps the choice both support.
    const joined = coordinator.classicJoin(joinRequest("", ["roundrobin", "range"]));
    expect(await stateOf(joined)).toBe("pending");
  });
});

describe("GroupCoordinator: Kafka classic static membership (group.instance.id, KIP-345)", () => {
  /** A stable group of two static members, "a" (the leader) and "b", each with its assignment. */
  async function stableStaticPair() {
    const world = createWorld({});
    const { coordinator } = world;
    const firstJoin = await coordinator.classicJoin({ ...joinRequest(), instanceId: "a" });
    await coordinator.classicSync({ group: "k", memberId: firstJoin.memberId, generation: 1, assignments: [] });
    const secondJoin = coordinator.classicJoin({ ...joinRequest(), instanceId: "b" });
    const leader = await coordinator.classicJoin({ ...joinRequest(firstJoin.memberId), instanceId: "a" });
    const follower = await secondJoin;
    expect(leader.members.map((member) => member.instanceId).sort()).toEqual(["a", "b"]);
    const assignments = [
      { memberId: leader.memberId, assignment: bytes(1) },
      { memberId: follower.memberId, assignment: bytes(2) },
    ];
    await coordinator.classicSync({ group: "k", memberId: leader.memberId, generation: 2, assignments });
    await coordinator.classicSync({ group: "k", memberId: follower.memberId, generation: 2, assignments: [] });
    return { ...world, leader, follower };
  }

  test("a static member rejoining without a member id replaces its old self: same generation and assignment, no rebalance", async () => {
    const { coordinator, leader, follower } = await stableStaticPair();
    const back = await coordinator.classicJoin({ ...joinRequest(), instanceId: "b" });
    expect(back.memberId).not.toBe(follower.memberId);
    // The old leader id, so nobody reassigns; no member list; the generation does not move.
    expect(back).toMatchObject({ generation: 2, protocolName: "range", leaderId: leader.memberId, members: [] });
    expect(await coordinator.classicSync({ group: "k", memberId: back.memberId, generation: 2, instanceId: "b", assignments: [] })).toEqual(bytes(2));
    expect(coordinator.listGroups()).toEqual([{ group: "k", kind: "classic", state: "stable", generation: 2, members: 2 }]);
    expect(codeOf(() => coordinator.classicHeartbeat("k", leader.memberId, 2, "a"))).toBeUndefined();
  });

  test("the replaced member id is fenced: FENCED_INSTANCE_ID with its instance id, UNKNOWN_MEMBER without", async () => {
    const { coordinator, follower } = await stableStaticPair();
    const back = await coordinator.classicJoin({ ...joinRequest(), instanceId: "b" });
    expect(codeOf(() => coordinator.classicHeartbeat("k", follower.memberId, 2, "b"))).toBe("FENCED_INSTANCE_ID");
    expect(codeOf(() => coordinator.classicHeartbeat("k", follower.memberId, 2))).toBe("UNKNOWN_MEMBER");
    expect(codeOf(() => coordinator.checkCommit("k", follower.memberId, 2, "orders", 0, "b"))).toBe("FENCED_INSTANCE_ID");
    expect(codeOf(() => coordinator.classicSync({ group: "k", memberId: follower.memberId, generation: 2, instanceId: "b", assignments: [] }))).toBe("FENCED_INSTANCE_ID");
    expect(codeOf(() => coordinator.classicJoin({ ...joinRequest(follower.memberId), instanceId: "b" }))).toBe("FENCED_INSTANCE_ID");
    expect(codeOf(() => coordinator.classicLeave("k", follower.memberId, "b"))).toBe("FENCED_INSTANCE_ID");
    expect(codeOf(() => coordinator.checkCommit("k", back.memberId, 2, "orders", 0, "b"))).toBeUndefined();
  });

  test("a returning leader keeps the lead without reassigning; a static member leaves by its instance id alone, and the rest rebalance", async () => {
    const { coordinator, follower } = await stableStaticPair();
    const leaderBack = await coordinator.classicJoin({ ...joinRequest(), instanceId: "a" });
    expect(leaderBack.leaderId).not.toBe(leaderBack.memberId); // the old id: it does not run the assignor
    expect(await coordinator.classicSync({ group: "k", memberId: leaderBack.memberId, generation: 2, instanceId: "a", assignments: [] })).toEqual(bytes(1));
    coordinator.classicLeave("k", "", "b");
    expect(codeOf(() => coordinator.classicHeartbeat("k", follower.memberId, 2))).toBe("UNKNOWN_MEMBER");
    expect(codeOf(() => coordinator.classicHeartbeat("k", leaderBack.memberId, 2, "a"))).toBe("REBALANCE_IN_PROGRESS");
    const alone = await coordinator.classicJoin({ ...joinRequest(leaderBack.memberId), instanceId: "a" });
    expect(alone).toMatchObject({ generation: 3, leaderId: leaderBack.memberId });
    expect(alone.members.map((member) => member.instanceId)).toEqual(["a"]);
  });

  test("a static member whose session ends is removed like a dynamic one; its instance id is free again", async () => {
    const { coordinator, clock, leader } = await stableStaticPair();
    for (let step = 0; step < 3; step++) {
      clock.advance(400);
      coordinator.classicHeartbeat("k", leader.memberId, 2, "a");
      coordinator.expire();
    }
    expect(codeOf(() => coordinator.classicHeartbeat("k", leader.memberId, 2, "a"))).toBe("REBALANCE_IN_PROGRESS");
    const fresh = coordinator.classicJoin({ ...joinRequest(), instanceId: "b" });
    await coordinator.classicJoin({ ...joinRequest(leader.memberId), instanceId: "a" });
    expect(await fresh).toMatchObject({ generation: 3, leaderId: leader.memberId });
  });
});
