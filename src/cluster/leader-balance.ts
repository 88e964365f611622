/**
 * @module cluster/leader-balance
 * Where leadership should go when it is not about a dead broker: pure planning for controlled
 * shutdown (a draining broker hands its leaderships and ISR seats away before it stops) and for
 * preferred-leader election (the first replica of `replicas` leads whenever it can). The
 * controller (cluster/controller.ts) applies these after its failover rule, planPartition, found
 * nothing to do; the draining broker (server/broker.ts) uses drainProgress to know when it may stop.
 *
 * Rules, Kafka's:
 * - A draining broker leaves every ISR and every leadership, to the first live, non-draining ISR
 *   member in replica order (leaderEpoch + 1). When no such member exists the partition keeps it
 *   (leader and ISR unchanged): it is the only replica known to hold every acknowledged record, so
 *   moving leadership elsewhere would lose data; the partition goes offline when the broker stops,
 *   as with any stop, and comes back with it.
 * - The preferred leader takes over (leaderEpoch + 1, ISR unchanged) only when it is live, not
 *   draining and in the ISR: a replica outside the ISR may lack acknowledged records.
 */
import type { PartitionState } from "./cluster-view.ts";

export type LeadershipPlan = Omit<PartitionState, "version">;

/** Live ISR members that may take over from a draining broker, in replica order. */
function successors(state: PartitionState, live: ReadonlySet<number>, draining: ReadonlySet<number>): number[] {
  const eligible = state.isr.filter((id) => live.has(id) && !draining.has(id));
  return [...state.replicas.filter((id) => eligible.includes(id)), ...eligible.filter((id) => !state.replicas.includes(id))];
}

/**
 * Controlled shutdown: the state that takes every draining broker out of `state`'s leadership and
 * ISR, or null when none is there or none can be taken out (no live, non-draining ISR member).
 */
export function planDrain(state: PartitionState, live: ReadonlySet<number>, draining: ReadonlySet<number>): LeadershipPlan | null {
  if (state.leader === -1 || !state.isr.some((id) => draining.has(id))) return null;
  const next = successors(state, live, draining);
  const leader = draining.has(state.leader) ? next[0] : state.leader;
  if (leader === undefined) return null;
  const isr = state.isr.filter((id) => !draining.has(id));
  const leaderEpoch = leader === state.leader ? state.leaderEpoch : state.leaderEpoch + 1;
  return { leader, leaderEpoch, isr, replicas: state.replicas };
}

export type PreferredStatus =
  /** The preferred leader leads. */
  | "preferred"
  /** Another broker leads, and the preferred one could take over now. */
  | "electable"
  /** Another broker (or nobody) leads, and the preferred one may not lead now (down, draining, out of the ISR). */
  | "unavailable";

/** How `state` stands with its preferred leader (`replicas[0]`). */
export function preferredStatus(state: PartitionState, live: ReadonlySet<number>, draining: ReadonlySet<number>): PreferredStatus {
  const preferred = state.replicas[0];
  if (preferred === undefined) return "unavailable";
  if (state.leader === preferred) return "preferred";
  if (state.leader === -1 || !live.has(preferred) || draining.has(preferred) || !state.isr.includes(preferred)) return "unavailable";
  return "electable";
}

/** Preferred-leader election: the state that makes `replicas[0]` lead, or null when it does or may not. */
export function planPreferred(state: PartitionState, live: ReadonlySet<number>, draining: ReadonlySet<number>): LeadershipPlan | null {
  if (preferredStatus(state, live, draining) !== "electable") return null;
  return { leader: state.replicas[0] as number, leaderEpoch: state.leaderEpoch + 1, isr: state.isr, replicas: state.replicas };
}

export interface DrainProgress {
  /** Partitions the broker still leads or sits in the ISR of, that the controller can still move. */
  readonly movable: number;
  /** Partitions the broker leads or sits in the ISR of with no one to take over (kept; logged at stop). */
  readonly stuck: ReadonlyArray<{ readonly topic: string; readonly partition: number }>;
}

/** How far `brokerId`'s controlled shutdown has come, judged from the partition states. */
export function drainProgress(
  brokerId: number,
  partitions: Iterable<{ topic: string; partition: number; state: PartitionState }>,
  live: ReadonlySet<number>,
  draining: ReadonlySet<number>,
): DrainProgress {
  const self = new Set([...draining, brokerId]);
  let movable = 0;
  const stuck: Array<{ topic: string; partition: number }> = [];
  for (const { topic, partition, state } of partitions) {
    if (state.leader !== brokerId && !state.isr.includes(brokerId)) continue;
    if (planDrain(state, live, self) !== null) movable++;
    else stuck.push({ topic, partition });
  }
  return { movable, stuck };
}

/**
 * Automatic rebalance: the partitions to move back to their preferred leader at this check — those
 * electable now that were already electable at the previous check (the imbalance persisted for an
 * interval, so a broker that just came back is not handed leadership in its first seconds) — and the
 * set to remember for the next check.
 */
export function persistentImbalance(
  partitions: Iterable<{ topic: string; partition: number; state: PartitionState }>,
  live: ReadonlySet<number>,
  draining: ReadonlySet<number>,
  seenBefore: ReadonlySet<string>,
): { due: Set<string>; seen: Set<string> } {
  const due = new Set<string>();
  const seen = new Set<string>();
  for (const { topic, partition, state } of partitions) {
    if (preferredStatus(state, live, draining) !== "electable") continue;
    const key = partitionKeyOf(topic, partition);
    seen.add(key);
    if (seenBefore.has(key)) due.add(key);
  }
  return { due, seen };
}

/** One string per partition (topic names cannot hold NUL). */
export function partitionKeyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
