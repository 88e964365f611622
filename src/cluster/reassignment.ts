/**
 * @module cluster/reassignment
 * Moving partition replicas between brokers, in the shape of Kafka's KIP-455, as pure functions:
 *
 * - `startReassignment`: what an `alterPartitionReassignments` request writes. The partition
 *   record keeps the whole replica set while the move runs — replicas := target first, then the
 *   current replicas leaving — with `addingReplicas` (target minus the original replicas) and
 *   `removingReplicas` (current minus target). Leader and ISR are untouched. A target of null
 *   cancels: the target becomes the original replicas again.
 * - `planReassignment`: the controller's step, level-triggered, after its leader plan. While a
 *   target replica is not in the ISR nothing changes (the new replicas fetch and the leader adds
 *   them to the ISR once caught up). Once every target replica is in the ISR the move completes
 *   in one write: when the leader is not in the target, leadership goes to the first target
 *   replica in the ISR that is live (leaderEpoch + 1); replicas := target, ISR := ISR ∩ target,
 *   and the adding/removing lists are cleared.
 * - `planRebalance`: a plan that spreads replicas, then preferred leaders (first replicas), evenly
 *   over the live brokers, moving as few replicas as it can: one replica off the most loaded
 *   broker onto the least loaded at a time, and leadership only by reordering a replica set.
 */
import { RunnelError } from "../errors.ts";
import type { PartitionState } from "./cluster-view.ts";

/** A partition record's content: what the controller and the admin ops write (the state without its store version). */
export type PartitionPlanWithMoves = Omit<PartitionState, "version">;

/** Rebalance work is bounded: at most this many single-replica moves per plan. */
export const REBALANCE_MOVES_MAX = 100_000;

export function isReassigning(state: Pick<PartitionState, "addingReplicas" | "removingReplicas">): boolean {
  return (state.addingReplicas?.length ?? 0) > 0 || (state.removingReplicas?.length ?? 0) > 0;
}

/** The replica set a reassignment in progress moves to (the replicas themselves when none runs). */
export function targetReplicas(state: Pick<PartitionState, "replicas" | "removingReplicas">): number[] {
  const removing = state.removingReplicas ?? [];
  return state.replicas.filter((id) => !removing.includes(id));
}

/** The replicas before the reassignment in progress began. */
export function originalReplicas(state: Pick<PartitionState, "replicas" | "addingReplicas">): number[] {
  const adding = state.addingReplicas ?? [];
  return state.replicas.filter((id) => !adding.includes(id));
}

export interface ReassignmentRules {
  /** Live broker ids: every broker a reassignment adds must be one. */
  readonly live: ReadonlySet<number>;
  /** The topic's minInsyncReplicas: a smaller target would refuse every replicated produce. */
  readonly minInsyncReplicas: number;
  readonly replicationFactorMax: number;
}

/**
 * The record `state` becomes when asked to move to `target` (null: cancel the reassignment in
 * progress). Throws INVALID_REPLICA_ASSIGNMENT saying what to fix.
 */
export function startReassignment(state: PartitionState, target: readonly number[] | null, rules: ReassignmentRules, name: string): PartitionPlanWithMoves {
  const original = originalReplicas(state);
  if (target === null && !isReassigning(state)) throw invalidAssignment(`${name} has no reassignment in progress to cancel`);
  const wanted = target ?? original;
  if (target !== null) checkTarget(state, target, rules, name);
  const leaving = state.replicas.filter((id) => !wanted.includes(id));
  return {
    leader: state.leader,
    leaderEpoch: state.leaderEpoch,
    isr: state.isr,
    replicas: [...wanted, ...leaving],
    addingReplicas: wanted.filter((id) => !original.includes(id)),
    removingReplicas: leaving,
  };
}

function checkTarget(state: PartitionState, target: readonly number[], rules: ReassignmentRules, name: string): void {
  if (target.length === 0) throw invalidAssignment(`${name}: the replica list is empty; name at least one broker`);
  if (target.length > rules.replicationFactorMax) throw invalidAssignment(`${name}: ${target.length} replicas is more than the ${rules.replicationFactorMax} allowed`);
  if (new Set(target).size !== target.length) throw invalidAssignment(`${name}: replicas [${target.join(", ")}] name a broker twice`);
  const unknown = target.filter((id) => !state.replicas.includes(id) && !rules.live.has(id));
  if (unknown.length > 0) {
    throw invalidAssignment(`${name}: broker(s) ${unknown.join(", ")} are not live in the cluster (live: ${[...rules.live].sort((a, b) => a - b).join(", ")}); start them first`);
  }
  if (target.length < rules.minInsyncReplicas) {
    throw invalidAssignment(`${name}: ${target.length} replica(s) is fewer than the topic's minInsyncReplicas ${rules.minInsyncReplicas}; replicated produces would all fail`);
  }
}

function invalidAssignment(message: string): RunnelError {
  return new RunnelError("INVALID_REPLICA_ASSIGNMENT", message);
}

/**
 * The controller's reassignment step over `state`, after its leader plan `afterLeaders` (null:
 * the leader plan changes nothing). Returns the record to write, or null when nothing changes.
 * The reassignment lists are always carried: a leader change during a move keeps the move.
 */
export function planReassignment(state: PartitionState, afterLeaders: PartitionPlanWithMoves | null, live: ReadonlySet<number>): PartitionPlanWithMoves | null {
  if (!isReassigning(state)) return afterLeaders;
  const base = afterLeaders ?? state;
  const carried: PartitionPlanWithMoves = {
    leader: base.leader,
    leaderEpoch: base.leaderEpoch,
    isr: base.isr,
    replicas: base.replicas,
    addingReplicas: state.addingReplicas ?? [],
    removingReplicas: state.removingReplicas ?? [],
  };
  const unchanged = afterLeaders === null ? null : carried;
  const target = targetReplicas(carried);
  if (base.leader === -1 || !target.every((id) => base.isr.includes(id))) return unchanged;
  let leader = base.leader;
  let leaderEpoch = base.leaderEpoch;
  if (!target.includes(leader)) {
    const next = target.find((id) => base.isr.includes(id) && live.has(id));
    if (next === undefined) return unchanged;
    leader = next;
    leaderEpoch += 1;
  }
  return { leader, leaderEpoch, isr: base.isr.filter((id) => target.includes(id)), replicas: target, addingReplicas: [], removingReplicas: [] };
}

// ---- rebalance -----------------------------------------------------------------------------

export interface PartitionAssignment {
  readonly topic: string;
  readonly partition: number;
  /** Replicas, preferred leader first. */
  readonly replicas: readonly number[];
}

export interface RebalanceMove {
  readonly topic: string;
  readonly partition: number;
  readonly from: readonly number[];
  readonly to: readonly number[];
}

/**
 * Moves that spread `assignments` over the `live` brokers: first every replica on a broker that
 * is not live moves to the least loaded live broker; then, while the most loaded broker holds
 * two replicas more than the least loaded, one of its replicas moves there (in the same slot, so
 * a preferred leader stays a preferred leader); then preferred leaders are evened out by
 * reordering replica sets (no data moves). Deterministic: brokers and partitions in sorted order.
 */
export function planRebalance(assignments: readonly PartitionAssignment[], live: readonly number[]): RebalanceMove[] {
  const brokers = [...new Set(live)].sort((left, right) => left - right);
  if (brokers.length === 0) throw new RunnelError("INVALID_REPLICA_ASSIGNMENT", "no live broker to place replicas on");
  const sorted = [...assignments].sort((left, right) => (left.topic === right.topic ? left.partition - right.partition : left.topic < right.topic ? -1 : 1));
  const working = sorted.map((assignment) => [...assignment.replicas]);
  const load = new Map<number, number>(brokers.map((id) => [id, 0]));
  for (const replicas of working) for (const id of replicas) if (load.has(id)) load.set(id, (load.get(id) ?? 0) + 1);
  moveOffDeadBrokers(working, load, brokers);
  evenReplicaCounts(working, load, brokers);
  evenPreferredLeaders(working, brokers);
  const moves: RebalanceMove[] = [];
  sorted.forEach((assignment, index) => {
    const to = working[index] as number[];
    if (to.join(",") !== assignment.replicas.join(",")) moves.push({ topic: assignment.topic, partition: assignment.partition, from: assignment.replicas, to });
  });
  return moves;
}

function leastLoaded(load: ReadonlyMap<number, number>, brokers: readonly number[], excluded: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const id of brokers) {
    if (excluded.includes(id)) continue;
    if (best === undefined || (load.get(id) ?? 0) < (load.get(best) ?? 0)) best = id;
  }
  return best;
}

function moveOffDeadBrokers(working: number[][], load: Map<number, number>, brokers: readonly number[]): void {
  for (const replicas of working) {
    replicas.forEach((id, slot) => {
      if (load.has(id)) return;
      const to = leastLoaded(load, brokers, replicas);
      if (to === undefined) return; // more replicas than live brokers: this one stays where it is
      replicas[slot] = to;
      load.set(to, (load.get(to) ?? 0) + 1);
    });
  }
}

function evenReplicaCounts(working: number[][], load: Map<number, number>, brokers: readonly number[]): void {
  for (let step = 0; step < REBALANCE_MOVES_MAX; step++) {
    const byLoad = [...brokers].sort((left, right) => (load.get(right) ?? 0) - (load.get(left) ?? 0) || left - right);
    if (!moveOneReplica(working, load, byLoad)) return;
  }
}

/** One replica from a loaded broker to one holding at least two fewer; false when none can move. */
function moveOneReplica(working: number[][], load: Map<number, number>, byLoad: readonly number[]): boolean {
  for (const from of byLoad) {
    for (const to of [...byLoad].reverse()) {
      if ((load.get(from) ?? 0) - (load.get(to) ?? 0) < 2) break;
      const replicas = working.find((candidate) => candidate.includes(from) && !candidate.includes(to));
      if (replicas === undefined) continue;
      replicas[replicas.indexOf(from)] = to;
      load.set(from, (load.get(from) ?? 0) - 1);
      load.set(to, (load.get(to) ?? 0) + 1);
      return true;
    }
  }
  return false;
}

function evenPreferredLeaders(working: number[][], brokers: readonly number[]): void {
  const leaders = new Map<number, number>(brokers.map((id) => [id, 0]));
  for (const replicas of working) {
    const first = replicas[0];
    if (first !== undefined) leaders.set(first, (leaders.get(first) ?? 0) + 1);
  }
  for (let step = 0; step < REBALANCE_MOVES_MAX; step++) {
    const byLeads = [...brokers].sort((left, right) => (leaders.get(right) ?? 0) - (leaders.get(left) ?? 0) || left - right);
    if (!swapOneLeader(working, leaders, byLeads)) return;
  }
}

function swapOneLeader(working: number[][], leaders: Map<number, number>, byLeads: readonly number[]): boolean {
  for (const from of byLeads) {
    for (const to of [...byLeads].reverse()) {
      if ((leaders.get(from) ?? 0) - (leaders.get(to) ?? 0) < 2) break;
      const replicas = working.find((candidate) => candidate[0] === from && candidate.includes(to));
      if (replicas === undefined) continue;
      const slot = replicas.indexOf(to);
      replicas[slot] = from;
      replicas[0] = to;
      leaders.set(from, (leaders.get(from) ?? 0) - 1);
      leaders.set(to, (leaders.get(to) ?? 0) + 1);
      return true;
    }
  }
  return false;
}
