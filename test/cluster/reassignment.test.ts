import { describe, expect, test } from "bun:test";
import type { PartitionState } from "../../src/cluster/cluster-view.ts";
import { planPartition } from "../../src/cluster/controller.ts";
import { planRebalance, planReassignment, type PartitionAssignment, startReassignment, targetReplicas } from "../../src/cluster/reassignment.ts";

const live = (...ids: number[]): ReadonlySet<number> => new Set(ids);
const rules = (liveIds: number[], minInsyncReplicas = 1) => ({ live: live(...liveIds), minInsyncReplicas, replicationFactorMax: 16 });
const state = (fields: Partial<PartitionState>): PartitionState => ({ leader: 1, leaderEpoch: 4, isr: [1, 2], replicas: [1, 2], version: 10, ...fields });
const errorCodeOf = (run: () => unknown): string | undefined => {
  try {
    run();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe("starting a reassignment", () => {
  test("keeps every current replica while the new ones join, target first", () => {
    const next = startReassignment(state({}), [2, 3], rules([1, 2, 3]), "t/0");
    expect(next.replicas).toEqual([2, 3, 1]);
    expect(next.addingReplicas).toEqual([3]);
    expect(next.removingReplicas).toEqual([1]);
    expect(next.leader).toBe(1);
    expect(next.isr).toEqual([1, 2]);
  });

  test("may change the replication factor", () => {
    expect(startReassignment(state({}), [1, 2, 3], rules([1, 2, 3]), "t/0")).toMatchObject({ replicas: [1, 2, 3], addingReplicas: [3], removingReplicas: [] });
    expect(startReassignment(state({}), [2], rules([1, 2]), "t/0")).toMatchObject({ replicas: [2, 1], addingReplicas: [], removingReplicas: [1] });
  });

  test("refuses an empty list, a broker named twice, a broker that is not live, and fewer replicas than minInsyncReplicas", () => {
    expect(errorCodeOf(() => startReassignment(state({}), [], rules([1, 2]), "t/0"))).toBe("INVALID_REPLICA_ASSIGNMENT");
    expect(errorCodeOf(() => startReassignment(state({}), [2, 2], rules([1, 2]), "t/0"))).toBe("INVALID_REPLICA_ASSIGNMENT");
    expect(errorCodeOf(() => startReassignment(state({}), [1, 7], rules([1, 2]), "t/0"))).toBe("INVALID_REPLICA_ASSIGNMENT");
    expect(errorCodeOf(() => startReassignment(state({}), [2], rules([1, 2], 2), "t/0"))).toBe("INVALID_REPLICA_ASSIGNMENT");
  });

  test("cancelling goes back to the original replicas, and needs a reassignment in progress", () => {
    const moving = state({ replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1] });
    expect(startReassignment(moving, null, rules([1, 2]), "t/0")).toMatchObject({ replicas: [2, 1, 3], addingReplicas: [], removingReplicas: [3] });
    expect(errorCodeOf(() => startReassignment(state({}), null, rules([1, 2]), "t/0"))).toBe("INVALID_REPLICA_ASSIGNMENT");
  });

  test("a second reassignment replaces the first, measured from the original replicas", () => {
    const moving = state({ replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1] });
    expect(startReassignment(moving, [2, 4], rules([1, 2, 3, 4]), "t/0")).toMatchObject({ replicas: [2, 4, 3, 1], addingReplicas: [4], removingReplicas: [3, 1] });
  });
});

describe("the controller's reassignment step", () => {
  const moving = state({ replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1] });

  test("changes nothing while a target replica is not in the ISR", () => {
    expect(targetReplicas(moving)).toEqual([2, 3]);
    expect(planReassignment(moving, null, live(1, 2, 3))).toBeNull();
  });

  test("once every target replica is in sync, moves leadership into the target and drops the removed replicas", () => {
    const caughtUp = { ...moving, isr: [1, 2, 3] };
    expect(planReassignment(caughtUp, null, live(1, 2, 3))).toEqual({ leader: 2, leaderEpoch: 5, isr: [2, 3], replicas: [2, 3], addingReplicas: [], removingReplicas: [] });
  });

  test("keeps the leader and its epoch when the leader stays a replica", () => {
    const caughtUp = state({ leader: 2, replicas: [2, 3, 1], isr: [2, 1, 3], addingReplicas: [3], removingReplicas: [1] });
    expect(planReassignment(caughtUp, null, live(1, 2, 3))).toMatchObject({ leader: 2, leaderEpoch: 4, isr: [2, 3], replicas: [2, 3] });
  });

  test("a leader change during the move keeps the move's lists", () => {
    const leaderDead = { ...moving, leader: 1, isr: [1, 2] };
    const plan = planReassignment(leaderDead, planPartition(leaderDead, live(2, 3)), live(2, 3));
    expect(plan).toMatchObject({ leader: 2, leaderEpoch: 5, isr: [2], replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1] });
  });

  test("a partition not being moved gets the leader plan unchanged", () => {
    expect(planReassignment(state({}), null, live(1, 2))).toBeNull();
    const plain = state({});
    const plan = planPartition(plain, live(2));
    expect(planReassignment(plain, plan, live(2))).toBe(plan);
  });
});

describe("a rebalance plan", () => {
  const twoBrokers: PartitionAssignment[] = [0, 1, 2, 3, 4, 5].map((partition) => ({ topic: "t", partition, replicas: partition % 2 === 0 ? [1, 2] : [2, 1] }));

  const loads = (assignments: readonly PartitionAssignment[], moves: ReturnType<typeof planRebalance>) => {
    const after = new Map(assignments.map((a) => [`${a.topic}/${a.partition}`, a.replicas]));
    for (const move of moves) after.set(`${move.topic}/${move.partition}`, move.to);
    const replicas = new Map<number, number>();
    const leaders = new Map<number, number>();
    for (const set of after.values()) {
      set.forEach((id) => replicas.set(id, (replicas.get(id) ?? 0) + 1));
      leaders.set(set[0] as number, (leaders.get(set[0] as number) ?? 0) + 1);
    }
    return { replicas, leaders };
  };

  test("spreads replicas and preferred leaders evenly over a new broker, moving only the replicas it must", () => {
    const moves = planRebalance(twoBrokers, [1, 2, 3]);
    const { replicas, leaders } = loads(twoBrokers, moves);
    expect([...replicas.values()].sort()).toEqual([4, 4, 4]);
    expect([...leaders.values()].sort()).toEqual([2, 2, 2]);
    const replicasMoved = moves.reduce((sum, move) => sum + move.to.filter((id) => !move.from.includes(id)).length, 0);
    expect(replicasMoved).toBe(4);
  });

  test("moves nothing when the cluster is already even", () => {
    const even: PartitionAssignment[] = [
      { topic: "t", partition: 0, replicas: [1, 2] },
      { topic: "t", partition: 1, replicas: [2, 3] },
      { topic: "t", partition: 2, replicas: [3, 1] },
    ];
    expect(planRebalance(even, [1, 2, 3])).toEqual([]);
  });

  test("moves replicas off a broker that is no longer live", () => {
    const moves = planRebalance([{ topic: "t", partition: 0, replicas: [9, 1] }], [1, 2]);
    expect(moves).toEqual([{ topic: "t", partition: 0, from: [9, 1], to: [2, 1] }]);
  });

  test("never names a broker twice in one partition", () => {
    const many: PartitionAssignment[] = Array.from({ length: 40 }, (_, partition) => ({ topic: `t${partition % 3}`, partition, replicas: [1, 2, 3] }));
    for (const move of planRebalance(many, [1, 2, 3, 4, 5])) expect(new Set(move.to).size).toBe(move.to.length);
  });
});
