/**
 * The group coordinator, sans-IO under a fake clock: scenarios (sticky movement, expiry,
 * fencing, limits, garbage) and a seeded model test that drives random joins, leaves, kills,
 * expiries, heartbeats, slow revocations, lost answers and topic growth, asserting after every
 * step that no partition has two owners, and at the end that every subscribed partition is owned.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { partitionKey } from "../../src/broker/assignors.ts";
import { RunnelError } from "../../src/errors.ts";
import { createWorld, holders, SimMember, settle } from "./group-sim.ts";

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof RunnelError ? error.code : `not a RunnelError: ${String(error)}`;
  }
  return undefined;
}

function loads(members: readonly SimMember[]): number[] {
  return members.filter((member) => !member.gone).map((member) => member.held.size);
}

function ownerMap(members: readonly SimMember[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [key, ids] of holders(members)) owners.set(key, ids[0] as string);
  return owners;
}

describe("GroupCoordinator: membership and incremental assignment", () => {
  test("three members on six partitions hold two each", () => {
    const world = createWorld({ orders: 6 });
    const members = [0, 1, 2].map(() => SimMember.join(world, "g", ["orders"]));
    settle(members);
    expect(loads(members)).toEqual([2, 2, 2]);
    expect(holders(members).size).toBe(6);
  });

  test("a fourth member joining moves only what balance needs (sticky)", () => {
    const world = createWorld({ orders: 6 });
    const members = [0, 1, 2].map(() => SimMember.join(world, "g", ["orders"]));
    settle(members);
    const before = ownerMap(members);
    members.push(SimMember.join(world, "g", ["orders"]));
    settle(members);
    const after = ownerMap(members);
    const moved = [...after].filter(([key, owner]) => before.get(key) !== owner).length;
    expect(after.size).toBe(6);
    expect(moved).toBeGreaterThanOrEqual(1);
    expect(moved).toBeLessThanOrEqual(2);
    expect(loads(members).sort()).toEqual([1, 1, 2, 2]);
  });

  test("a partition reaches its new owner only after the old owner stopped listing it", () => {
    const world = createWorld({ orders: 2 });
    const first = SimMember.join(world, "g", ["orders"]);
    expect(first.held.size).toBe(2);
    const second = SimMember.join(world, "g", ["orders"]);
    expect(second.held.size).toBe(0);
    const asked = first.heartbeat({ keepRevoked: true });
    expect(asked?.revoke.flatMap((entry) => entry.partitions).length).toBe(1);
    const waiting = second.heartbeat();
    expect(second.held.size).toBe(0); // still held by the first member
    expect(waiting?.heartbeatIntervalMs).toBe(100); // told to come back soon
    first.heartbeat(); // asked again: this time it gives it up...
    expect(first.held.size).toBe(1);
    second.heartbeat();
    expect(second.held.size).toBe(0); // ...but the broker learns so only from its next heartbeat
    first.heartbeat();
    second.heartbeat();
    expect(second.held.size).toBe(1);
    expect(first.held.size).toBe(1);
  });

  test("every membership change bumps the generation", () => {
    const world = createWorld({ orders: 4 });
    const first = SimMember.join(world, "g", ["orders"]);
    const generationAfterFirst = first.generation;
    const second = SimMember.join(world, "g", ["orders"]);
    expect(second.generation).toBe(generationAfterFirst + 1);
    second.leave();
    expect(first.heartbeat()?.generation).toBe(generationAfterFirst + 2);
  });

  test("a member that misses its session is removed and its partitions reach the others", () => {
    const world = createWorld({ orders: 6 });
    const members = [0, 1, 2].map(() => SimMember.join(world, "g", ["orders"], { sessionTimeoutMs: 1_000 }));
    settle(members);
    const victim = members[1] as SimMember;
    victim.kill();
    world.clock.advance(600);
    for (const member of members) member.heartbeat();
    world.clock.advance(600);
    expect(world.coordinator.nextDeadlineMs()).toBeLessThanOrEqual(world.clock.nowMs);
    world.coordinator.expire();
    settle(members);
    expect(loads(members)).toEqual([3, 3]);
    expect(holders(members).size).toBe(6);
  });

  test("a member that keeps a revoked partition past its rebalance timeout is removed", () => {
    const world = createWorld({ orders: 2 });
    const answer = world.coordinator.join({ group: "g", topics: ["orders"], rebalanceTimeoutMs: 5_000, sessionTimeoutMs: 60_000 });
    const stubborn = { memberId: answer.memberId, epoch: answer.memberEpoch, owned: answer.assigned };
    SimMember.join(world, "g", ["orders"]);
    for (let step = 0; step < 10; step++) {
      world.clock.advance(1_000);
      world.coordinator.expire();
      try {
        world.coordinator.heartbeat({ group: "g", memberId: stubborn.memberId, memberEpoch: stubborn.epoch, owned: stubborn.owned });
      } catch (error) {
        expect((error as RunnelError).code).toBe("UNKNOWN_MEMBER");
        expect(step).toBeGreaterThanOrEqual(4);
        return;
      }
    }
    throw new Error("the stubborn member was never removed");
  });

  test("a lost answer never lets a second member in, and the grant is resent", () => {
    const world = createWorld({ orders: 1 });
    const first = SimMember.join(world, "g", ["orders"]);
    const second = SimMember.join(world, "g", ["orders"], { assignor: "sticky" });
    first.leave();
    second.heartbeat({ loseAnswer: true }); // granted, but the member never heard
    const late = SimMember.join(world, "g", ["orders"]);
    settle([second, late]);
    expect(holders([second, late]).size).toBe(1);
    expect([...holders([second, late]).values()].every((ids) => ids.length === 1)).toBe(true);
  });

  test("a heartbeat sent before the member read a grant does not count as giving that grant up", () => {
    const world = createWorld({ orders: 1 });
    const first = SimMember.join(world, "g", ["orders"], { assignor: "range" });
    const slow = SimMember.join(world, "g", ["orders"], { assignor: "range" });
    first.leave();
    slow.heartbeat({ deferAnswer: true }); // granted at epoch 1, the answer not read yet
    // Range gives the partition to the lowest member id: a newcomer that sorts first takes it over.
    const newcomer = world.coordinator.join({ group: "g", memberId: "0-first", topics: ["orders"] });
    expect(newcomer.assigned).toEqual([]);
    slow.heartbeat(); // sent before reading the grant: says epoch 0, holds nothing
    expect(world.coordinator.heartbeat({ group: "g", memberId: "0-first", memberEpoch: 0, owned: [] }).assigned).toEqual([]);
    slow.deliver();
    expect(slow.held.size).toBe(1); // it really does hold it now, so nobody else may
    slow.deliver();
    expect(slow.held.size).toBe(0);
    slow.heartbeat();
    expect(world.coordinator.heartbeat({ group: "g", memberId: "0-first", memberEpoch: 0, owned: [] }).assigned).toEqual([{ topic: "orders", partitions: [0] }]);
  });

  test("members are told of news (for a parked heartbeat) exactly when their next answer changes", () => {
    const news: string[] = [];
    const world = createWorld({ orders: 4 }, { onMemberNews: (_group, memberId) => news.push(memberId) });
    const first = SimMember.join(world, "g", ["orders"]);
    const second = SimMember.join(world, "g", ["orders"]);
    expect(news).toContain(first.id); // two of its partitions are now meant for the newcomer
    news.length = 0;
    first.heartbeat(); // told to give two up; gives them up on its next heartbeat
    expect(news).toEqual([]);
    first.heartbeat();
    expect(news).toEqual([second.id, second.id]); // each freed partition is meant for the newcomer
    news.length = 0;
    settle([first, second]);
    expect(news).toEqual([]);
    second.leave();
    expect(new Set(news)).toEqual(new Set([first.id, second.id])); // the leaver's heartbeat (if parked) learns it is gone
  });

  test("a topic that grows is spread over the members at their next heartbeats", () => {
    const world = createWorld({ orders: 2 });
    const members = [0, 1].map(() => SimMember.join(world, "g", ["orders"]));
    settle(members);
    world.topics.set("orders", 6);
    settle(members);
    expect(loads(members)).toEqual([3, 3]);
  });

  test("a deleted topic's partitions are revoked; a created one is assigned after topicsChanged", () => {
    const world = createWorld({ orders: 2 });
    const members = [0, 1].map(() => SimMember.join(world, "g", ["orders", "later"]));
    settle(members);
    world.topics.delete("orders");
    world.topics.set("later", 4);
    world.coordinator.topicsChanged();
    settle(members);
    expect([...holders(members).keys()].sort()).toEqual([0, 1, 2, 3].map((partition) => partitionKey("later", partition)));
  });

  test("range and round-robin assign as Kafka's assignors do", () => {
    const rangeWorld = createWorld({ a: 3, b: 3 });
    const ranged = [0, 1].map(() => SimMember.join(rangeWorld, "g", ["a", "b"], { assignor: "range" }));
    settle(ranged);
    expect(ranged.map((member) => [...member.held].sort())).toEqual([
      [partitionKey("a", 0), partitionKey("a", 1), partitionKey("b", 0), partitionKey("b", 1)],
      [partitionKey("a", 2), partitionKey("b", 2)],
    ]);
    const robinWorld = createWorld({ a: 3, b: 3 });
    const robins = [0, 1].map(() => SimMember.join(robinWorld, "g", ["a", "b"], { assignor: "roundRobin" }));
    settle(robins);
    expect(loads(robins)).toEqual([3, 3]);
    expect([...(robins[0] as SimMember).held].sort()).toEqual([partitionKey("a", 0), partitionKey("a", 2), partitionKey("b", 1)]);
  });

  test("two hundred members on four hundred partitions rebalance to two each, and again after one leaves", () => {
    const world = createWorld({ big: 400 });
    const members = Array.from({ length: 200 }, () => SimMember.join(world, "g", ["big"]));
    settle(members);
    expect(new Set(loads(members))).toEqual(new Set([2]));
    members[17]?.leave();
    settle(members);
    expect(holders(members).size).toBe(400);
    expect(Math.max(...loads(members)) - Math.min(...loads(members))).toBeLessThanOrEqual(1);
  });
});

describe("GroupCoordinator: fencing, kinds and limits", () => {
  test("a commit is accepted from the owner and fenced from anyone else or from before it got the partition", () => {
    const world = createWorld({ orders: 2 });
    const first = SimMember.join(world, "g", ["orders"]);
    const key0 = [...first.held][0] as string;
    const partition0 = Number(key0.split("\u0000")[1]);
    expect(codeOf(() => world.coordinator.checkCommit("g", first.id, first.generation, "orders", partition0))).toBeUndefined();
    const second = SimMember.join(world, "g", ["orders"]);
    settle([first, second]);
    const lost = [0, 1].find((partition) => !first.held.has(partitionKey("orders", partition))) as number;
    expect(codeOf(() => world.coordinator.checkCommit("g", first.id, first.generation, "orders", lost))).toBe("COMMIT_FENCED");
    expect(codeOf(() => world.coordinator.checkCommit("g", second.id, second.generation, "orders", lost))).toBeUndefined();
    expect(codeOf(() => world.coordinator.checkCommit("g", second.id, 1, "orders", lost))).toBe("COMMIT_FENCED");
    expect(codeOf(() => world.coordinator.checkCommit("g", second.id, 10_000, "orders", lost))).toBe("COMMIT_FENCED");
    expect(codeOf(() => world.coordinator.checkCommit("g", "nobody", second.generation, "orders", lost))).toBe("UNKNOWN_MEMBER");
  });

  test("a heartbeat from an unknown member, or with an epoch never sent, is refused and the group goes on", () => {
    const world = createWorld({ orders: 2 });
    const member = SimMember.join(world, "g", ["orders"]);
    expect(codeOf(() => world.coordinator.heartbeat({ group: "g", memberId: "ghost", memberEpoch: 0, owned: [] }))).toBe("UNKNOWN_MEMBER");
    expect(codeOf(() => world.coordinator.heartbeat({ group: "g", memberId: member.id, memberEpoch: 99, owned: [] }))).toBe("INVALID_REQUEST");
    expect(member.heartbeat()).not.toBeNull();
    expect(member.held.size).toBe(2);
  });

  test("partitions a heartbeat claims without having been granted them are revoked, never owned", () => {
    const world = createWorld({ orders: 2, other: 1 });
    const first = SimMember.join(world, "g", ["orders"]);
    const second = SimMember.join(world, "g", ["orders"]);
    settle([first, second]);
    const mine = [...second.held].map((key) => Number(key.split("\u0000")[1]));
    const answer = world.coordinator.heartbeat({
      group: "g",
      memberId: first.id,
      memberEpoch: first.ackedEpoch,
      owned: [...first.ownedReport(), { topic: "orders", partitions: mine }, { topic: "other", partitions: [0, 7] }, { topic: "nope", partitions: [3] }],
    });
    expect(answer.revoke).toEqual([
      { topic: "nope", partitions: [3] },
      { topic: "orders", partitions: mine },
      { topic: "other", partitions: [0, 7] },
    ]);
    expect(codeOf(() => world.coordinator.checkCommit("g", first.id, answer.generation, "orders", mine[0] as number))).toBe("COMMIT_FENCED");
  });

  test("a member subscribing to too many topics gets LIMIT_EXCEEDED and the group goes on", () => {
    const world = createWorld({ orders: 2 });
    const member = SimMember.join(world, "g", ["orders"]);
    const tooMany = Array.from({ length: 10_000 }, (_, index) => `t${index}`);
    expect(codeOf(() => world.coordinator.join({ group: "g", topics: tooMany }))).toBe("LIMIT_EXCEEDED");
    expect(codeOf(() => world.coordinator.join({ group: "g", topics: ["bad/name"] }))).toBe("INVALID_TOPIC_NAME");
    member.heartbeat();
    expect(member.held.size).toBe(2);
    expect(world.coordinator.describeGroup("g")?.members).toBe(1);
  });

  test("members per group, groups, session timeouts and assignors are bounded with clear errors", () => {
    const world = createWorld({ orders: 1 }, { membersPerGroupMax: 2, groupsMax: 1 });
    SimMember.join(world, "g", ["orders"]);
    SimMember.join(world, "g", ["orders"]);
    expect(codeOf(() => world.coordinator.join({ group: "g", topics: ["orders"] }))).toBe("LIMIT_EXCEEDED");
    expect(codeOf(() => world.coordinator.join({ group: "h", topics: ["orders"] }))).toBe("LIMIT_EXCEEDED");
    expect(codeOf(() => world.coordinator.join({ group: "g", topics: ["orders"], sessionTimeoutMs: 5 }))).toBe("INVALID_REQUEST");
    expect(codeOf(() => world.coordinator.join({ group: "g", topics: ["orders"], assignor: "range" }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
  });

  test("a rejoin with the same member id updates its subscription instead of adding a member", () => {
    const world = createWorld({ a: 2, b: 2 });
    const answer = world.coordinator.join({ group: "g", memberId: "client-chosen", topics: ["a"] });
    expect(answer.memberId).toBe("client-chosen");
    const again = world.coordinator.join({ group: "g", memberId: "client-chosen", topics: ["a", "b"] });
    expect(world.coordinator.describeGroup("g")?.members).toBe(1);
    expect(again.assigned).toEqual([
      { topic: "a", partitions: [0, 1] },
      { topic: "b", partitions: [0, 1] },
    ]);
  });

  test("describe shows members, what each holds, gives up and waits for; list shows the group; empty groups vanish", () => {
    const world = createWorld({ orders: 2 });
    const first = SimMember.join(world, "g", ["orders"]);
    const second = SimMember.join(world, "g", ["orders"]);
    first.heartbeat({ keepRevoked: true });
    const described = world.coordinator.describeGroup("g");
    expect(described?.state).toBe("reconciling");
    expect(described?.memberList.map((member) => [member.assigned.length, member.revoking.length, member.pending.length])).toEqual([
      [1, 1, 0],
      [0, 0, 1],
    ]);
    settle([first, second]);
    expect(world.coordinator.listGroups()).toEqual([{ group: "g", kind: "native", state: "stable", generation: second.generation, members: 2 }]);
    first.leave();
    second.leave();
    expect(world.coordinator.describeGroup("g")).toBeNull();
    expect(world.coordinator.groupCount).toBe(0);
  });
});

type Command =
  | { kind: "join"; topics: number }
  | { kind: "heartbeat"; member: number; keepRevoked: boolean; loseAnswer: boolean; deferAnswer: boolean }
  | { kind: "deliver"; member: number }
  | { kind: "leave"; member: number }
  | { kind: "kill"; member: number }
  | { kind: "tick"; ms: number }
  | { kind: "grow"; topic: number };

const TOPICS = ["t0", "t1", "t2"];

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("join" as const), topics: fc.integer({ min: 1, max: 7 }) }) },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("heartbeat" as const),
      member: fc.nat(30),
      keepRevoked: fc.boolean(),
      loseAnswer: fc.boolean(),
      deferAnswer: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("deliver" as const), member: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("leave" as const), member: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("kill" as const), member: fc.nat(30) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 1_500 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("grow" as const), topic: fc.nat(2) }) },
);

function run(world: ReturnType<typeof createWorld>, members: SimMember[], command: Command): void {
  const pick = (index: number): SimMember | undefined => members[index % Math.max(1, members.length)];
  switch (command.kind) {
    case "join": {
      const topics = TOPICS.filter((_, index) => (command.topics >> index) & 1);
      members.push(SimMember.join(world, "g", topics, { sessionTimeoutMs: 2_000 }));
      return;
    }
    case "heartbeat":
      pick(command.member)?.heartbeat({ keepRevoked: command.keepRevoked, loseAnswer: command.loseAnswer, deferAnswer: command.deferAnswer });
      return;
    case "deliver":
      pick(command.member)?.deliver();
      return;
    case "leave":
      pick(command.member)?.leave();
      return;
    case "kill":
      pick(command.member)?.kill();
      return;
    case "tick":
      world.clock.advance(command.ms);
      for (const member of members) member.checkSession();
      world.coordinator.expire();
      return;
    case "grow": {
      const topic = TOPICS[command.topic] as string;
      world.topics.set(topic, (world.topics.get(topic) ?? 0) + 1);
      return;
    }
  }
}

describe("GroupCoordinator: seeded model", () => {
  test("random joins, leaves, kills, expiries, slow revocations, lost and late answers never give a partition two owners, and a quiet group ends fully owned", () => {
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 1, maxLength: 120 }), (commands) => {
        const world = createWorld({ t0: 3, t1: 5, t2: 1 }, { sessionTimeoutMsMin: 100 });
        const members: SimMember[] = [];
        for (const command of commands) {
          run(world, members, command);
          for (const [key, ids] of holders(members)) if (ids.length > 1) throw new Error(`${key} held by ${ids.join(", ")}`);
        }
        // Quiet: the dead expire, the living heartbeat honestly.
        const live = members.filter((member) => !member.gone);
        world.clock.advance(2_500);
        for (const member of live) member.heartbeat();
        world.coordinator.expire();
        settle(live);
        const subscribed = new Set(live.filter((member) => !member.gone).flatMap((member) => [...world.coordinator.describeGroup("g")!.memberList.find((entry) => entry.memberId === member.id)!.topics]));
        const expected = [...subscribed].flatMap((topic) => Array.from({ length: world.topics.get(topic) ?? 0 }, (_, partition) => partitionKey(topic, partition)));
        expect([...holders(live).keys()].sort()).toEqual(expected.sort());
        const described = world.coordinator.describeGroup("g");
        if (described !== null) expect(described.state).toBe("stable");
      }),
      { seed: 20_261_207, numRuns: 300 },
    );
  });
});
