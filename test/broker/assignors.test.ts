/**
 * The assignors as pure functions: seeded properties over random members, subscriptions and
 * partition counts (every partition some member subscribes to goes to a subscriber; equal
 * subscriptions end balanced), and stickiness (a balanced previous target is kept as it is).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ASSIGNOR_NAMES, type AssignorMember, assign, assignSticky, partitionKey } from "../../src/broker/assignors.ts";

const TOPICS = ["a", "b", "c", "d"];

const worldArb = fc.record({
  subscriptions: fc.array(fc.subarray(TOPICS, { minLength: 1 }), { minLength: 1, maxLength: 12 }),
  counts: fc.tuple(fc.nat(12), fc.nat(12), fc.nat(12), fc.nat(12)),
});

function membersOf(subscriptions: string[][]): AssignorMember[] {
  return subscriptions.map((topics, index) => ({ id: `m${String(index).padStart(2, "0")}`, topics: [...topics].sort() }));
}

function loads(target: Map<string, string>, members: AssignorMember[]): number[] {
  return members.map((member) => [...target.values()].filter((id) => id === member.id).length);
}

describe("assignors", () => {
  test("every assignor gives each subscribed partition to one of its topic's subscribers, and nothing else", () => {
    fc.assert(
      fc.property(worldArb, fc.constantFrom(...ASSIGNOR_NAMES), ({ subscriptions, counts }, name) => {
        const members = membersOf(subscriptions);
        const partitionCounts = new Map(TOPICS.map((topic, index) => [topic, counts[index] as number]));
        const target = assign(name, { members, partitionCounts, previous: new Map() });
        const expected = new Set<string>();
        for (const topic of TOPICS) {
          if (!members.some((member) => member.topics.includes(topic))) continue;
          for (let partition = 0; partition < (partitionCounts.get(topic) ?? 0); partition++) expected.add(partitionKey(topic, partition));
        }
        expect(new Set(target.keys())).toEqual(expected);
        for (const [key, id] of target) {
          const topic = key.split("\u0000")[0] as string;
          expect(members.find((member) => member.id === id)?.topics).toContain(topic);
        }
      }),
      { seed: 7_001, numRuns: 300 },
    );
  });

  test("with equal subscriptions, sticky ends balanced from any previous target", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 60 }), fc.array(fc.nat(40), { maxLength: 60 }), (memberCount, partitions, previousOwners) => {
        const members = membersOf(Array.from({ length: memberCount }, () => ["a"]));
        const previous = new Map(previousOwners.slice(0, partitions).map((owner, partition) => [partitionKey("a", partition), `m${String(owner).padStart(2, "0")}`]));
        const target = assignSticky({ members, partitionCounts: new Map([["a", partitions]]), previous });
        const load = loads(target, members);
        expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
        expect(target.size).toBe(partitions);
      }),
      { seed: 7_002, numRuns: 300 },
    );
  });

  test("sticky keeps a balanced previous target exactly, and moves only the excess when members leave", () => {
    const members = membersOf([["a"], ["a"], ["a"]]);
    const partitionCounts = new Map([["a", 6]]);
    const first = assignSticky({ members, partitionCounts, previous: new Map() });
    expect(assignSticky({ members, partitionCounts, previous: first })).toEqual(first);
    const remaining = members.slice(0, 2);
    const after = assignSticky({ members: remaining, partitionCounts, previous: first });
    const moved = [...after].filter(([key, id]) => first.get(key) !== id).length;
    expect(moved).toBe(2); // exactly the departed member's two
    expect(loads(after, remaining)).toEqual([3, 3]);
  });
});
