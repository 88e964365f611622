/**
 * The pure planning of leadership balance (src/cluster/leader-balance.ts): controlled shutdown
 * moves a draining broker out of leaderships and ISRs, preferred-leader election brings the first
 * replica back, and the automatic rebalance moves only an imbalance that persisted.
 */
import { describe, expect, test } from "bun:test";
import type { PartitionState } from "../../src/cluster/cluster-view.ts";
import { drainProgress, partitionKeyOf, persistentImbalance, planDrain, planPreferred, preferredStatus } from "../../src/cluster/leader-balance.ts";

function state(leader: number, leaderEpoch: number, isr: number[], replicas: number[]): PartitionState {
  return { leader, leaderEpoch, isr, replicas, version: 1 };
}

const ALL = new Set([1, 2, 3]);
const NONE = new Set<number>();

describe("planDrain (controlled shutdown)", () => {
  test("a draining leader hands leadership to the first live ISR member in replica order, one epoch up, and leaves the ISR", () => {
    expect(planDrain(state(1, 4, [3, 1, 2], [1, 2, 3]), ALL, new Set([1]))).toEqual({ leader: 2, leaderEpoch: 5, isr: [3, 2], replicas: [1, 2, 3] });
  });

  test("a draining follower leaves the ISR while the leader and its epoch stay", () => {
    expect(planDrain(state(2, 4, [1, 2, 3], [1, 2, 3]), ALL, new Set([3]))).toEqual({ leader: 2, leaderEpoch: 4, isr: [1, 2], replicas: [1, 2, 3] });
  });

  test("leadership never goes to another draining broker or to a dead one", () => {
    expect(planDrain(state(1, 0, [1, 2, 3], [1, 2, 3]), new Set([1, 2, 3]), new Set([1, 2]))).toEqual({ leader: 3, leaderEpoch: 1, isr: [3], replicas: [1, 2, 3] });
    expect(planDrain(state(1, 0, [1, 2, 3], [1, 2, 3]), new Set([1, 3]), new Set([1]))).toEqual({ leader: 3, leaderEpoch: 1, isr: [2, 3], replicas: [1, 2, 3] });
  });

  test("a partition whose only live ISR member is draining keeps it as leader and in the ISR", () => {
    expect(planDrain(state(1, 2, [1], [1, 2, 3]), ALL, new Set([1]))).toBeNull();
    expect(planDrain(state(1, 2, [1, 2], [1, 2]), new Set([1]), new Set([1]))).toBeNull();
  });

  test("a partition without a draining member, or without a leader, is left alone", () => {
    expect(planDrain(state(1, 2, [1, 2], [1, 2, 3]), ALL, new Set([3]))).toBeNull();
    expect(planDrain(state(-1, 2, [1], [1, 2, 3]), ALL, new Set([1]))).toBeNull();
  });
});

describe("preferred-leader election", () => {
  test("the first replica takes over, one epoch up, when it is live, in the ISR and not draining", () => {
    expect(preferredStatus(state(2, 3, [1, 2], [1, 2]), ALL, NONE)).toBe("electable");
    expect(planPreferred(state(2, 3, [2, 1], [1, 2]), ALL, NONE)).toEqual({ leader: 1, leaderEpoch: 4, isr: [2, 1], replicas: [1, 2] });
  });

  test("nothing moves when the preferred leader already leads", () => {
    expect(preferredStatus(state(1, 3, [1, 2], [1, 2]), ALL, NONE)).toBe("preferred");
    expect(planPreferred(state(1, 3, [1, 2], [1, 2]), ALL, NONE)).toBeNull();
  });

  test("a preferred leader that is down, out of the ISR or draining is not elected", () => {
    expect(planPreferred(state(2, 3, [2, 1], [1, 2]), new Set([2]), NONE)).toBeNull();
    expect(planPreferred(state(2, 3, [2], [1, 2]), ALL, NONE)).toBeNull();
    expect(planPreferred(state(2, 3, [2, 1], [1, 2]), ALL, new Set([1]))).toBeNull();
    expect(preferredStatus(state(2, 3, [2], [1, 2]), ALL, NONE)).toBe("unavailable");
  });

  test("an offline partition is the failover rule's business, not the election's", () => {
    expect(planPreferred(state(-1, 3, [1], [1, 2]), ALL, NONE)).toBeNull();
  });
});

describe("drainProgress (when the draining broker may stop)", () => {
  const partitions = (states: PartitionState[]) => states.map((one, partition) => ({ topic: "t", partition, state: one }));

  test("counts the partitions it still leads or sits in the ISR of that can move", () => {
    const progress = drainProgress(1, partitions([state(1, 0, [1, 2], [1, 2]), state(2, 0, [2, 1], [2, 1]), state(2, 0, [2, 3], [2, 3])]), ALL, new Set([1]));
    expect(progress).toEqual({ movable: 2, stuck: [] });
  });

  test("is done once it leads nothing and sits in no ISR, except partitions no one else can take", () => {
    const progress = drainProgress(1, partitions([state(2, 1, [2], [1, 2]), state(1, 0, [1], [1, 2])]), ALL, new Set([1]));
    expect(progress).toEqual({ movable: 0, stuck: [{ topic: "t", partition: 1 }] });
  });
});

describe("persistentImbalance (automatic rebalance)", () => {
  const offPreferred = [{ topic: "t", partition: 0, state: state(2, 1, [1, 2], [1, 2]) }, { topic: "t", partition: 1, state: state(1, 1, [1, 2], [1, 2]) }];

  test("an imbalance seen for the first time is remembered, not moved", () => {
    const first = persistentImbalance(offPreferred, ALL, NONE, new Set());
    expect([...first.due]).toEqual([]);
    expect([...first.seen]).toEqual([partitionKeyOf("t", 0)]);
  });

  test("an imbalance still there at the next check is due", () => {
    const second = persistentImbalance(offPreferred, ALL, NONE, new Set([partitionKeyOf("t", 0)]));
    expect([...second.due]).toEqual([partitionKeyOf("t", 0)]);
  });

  test("a partition whose preferred leader cannot lead is neither remembered nor due", () => {
    const blocked = persistentImbalance(offPreferred, new Set([2]), NONE, new Set([partitionKeyOf("t", 0)]));
    expect(blocked.due.size + blocked.seen.size).toBe(0);
  });
});
