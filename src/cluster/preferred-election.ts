/**
 * @module cluster/preferred-election
 * On-demand preferred-leader election, for the native `electLeaders` op and `runnel cluster
 * elect-leaders`: read the partitions, and when some preferred leader could take over, leave an
 * election request for the controller (a key on a lease under `/runnel/<cluster>/elections/`,
 * acted on while it exists), wait until each of those partitions has its preferred leader back (or
 * can no longer get it) within a bound, withdraw the request and say what happened to each.
 */
import { RunnelError } from "../errors.ts";
import type { ClusterView, PartitionState } from "./cluster-view.ts";
import type { ElectionRequest } from "./controller.ts";
import { partitionKeyOf, preferredStatus } from "./leader-balance.ts";

/** Between two looks at the partitions while the controller works. */
const ELECTION_POLL_MS = 100;

export type ElectionOutcome =
  /** The preferred leader took over. */
  | "elected"
  /** It led already: nothing to do (Kafka's ELECTION_NOT_NEEDED). */
  | "alreadyPreferred"
  /** It may not lead now: down, draining or out of the ISR (Kafka's PREFERRED_LEADER_NOT_AVAILABLE). */
  | "unavailable"
  /** It could have, and had not within the bound (no controller, etcd slow). */
  | "timedOut";

export interface ElectionResult {
  readonly topic: string;
  readonly partition: number;
  readonly preferred: number;
  readonly leader: number;
  readonly outcome: ElectionOutcome;
}

export interface ElectionSnapshot {
  readonly partitions: Iterable<{ topic: string; partition: number; state: PartitionState }>;
  readonly live: ReadonlySet<number>;
  readonly draining: ReadonlySet<number>;
  /** Topic names the cluster has (an unknown one in the request is UNKNOWN_TOPIC). */
  readonly topics: ReadonlySet<string>;
}

export interface ElectionSource {
  read(): ElectionSnapshot | Promise<ElectionSnapshot>;
  /** Leaves the request for the controller; resolves to the function that withdraws it. */
  request(request: ElectionRequest): Promise<() => Promise<void>>;
}

function matches(request: ElectionRequest, topic: string, partition: number): boolean {
  return (request.topic === undefined || request.topic === topic) && (request.partitions === undefined || request.partitions.includes(partition));
}

function targetsOf(snapshot: ElectionSnapshot, request: ElectionRequest): Array<{ topic: string; partition: number; state: PartitionState }> {
  if (request.topic !== undefined && !snapshot.topics.has(request.topic)) throw new RunnelError("UNKNOWN_TOPIC", `the cluster has no topic ${JSON.stringify(request.topic)}`);
  return [...snapshot.partitions].filter((entry) => matches(request, entry.topic, entry.partition)).sort((left, right) => (left.topic === right.topic ? left.partition - right.partition : left.topic < right.topic ? -1 : 1));
}

/** Runs one election of preferred leaders for the partitions `request` names (all when empty). */
export async function electPreferredLeaders(source: ElectionSource, request: ElectionRequest, timeoutMs: number): Promise<ElectionResult[]> {
  const first = await source.read();
  const before = targetsOf(first, request);
  const waiting = new Set(before.filter(({ state }) => preferredStatus(state, first.live, first.draining) === "electable").map(({ topic, partition }) => partitionKeyOf(topic, partition)));
  let latest = first;
  if (waiting.size > 0) {
    const withdraw = await source.request(request);
    try {
      const deadline = performance.now() + timeoutMs;
      while (performance.now() < deadline) {
        latest = await source.read();
        const still = [...latest.partitions].filter(({ topic, partition, state }) => waiting.has(partitionKeyOf(topic, partition)) && preferredStatus(state, latest.live, latest.draining) === "electable");
        if (still.length === 0) break;
        await Bun.sleep(ELECTION_POLL_MS);
      }
    } finally {
      await withdraw();
    }
  }
  const now = new Map([...latest.partitions].map((entry) => [partitionKeyOf(entry.topic, entry.partition), entry.state]));
  return before.map(({ topic, partition, state }) => {
    const key = partitionKeyOf(topic, partition);
    if (!waiting.has(key)) {
      const outcome = preferredStatus(state, first.live, first.draining) === "preferred" ? "alreadyPreferred" : "unavailable";
      return { topic, partition, preferred: state.replicas[0] ?? -1, leader: state.leader, outcome };
    }
    const current = now.get(key) ?? state;
    const status = preferredStatus(current, latest.live, latest.draining);
    const outcome: ElectionOutcome = status === "preferred" ? "elected" : status === "electable" ? "timedOut" : "unavailable";
    return { topic, partition, preferred: current.replicas[0] ?? -1, leader: current.leader, outcome };
  });
}

/** A broker's cached cluster view as an election source; null outside an etcd cluster. */
export function viewElectionSource(view: ClusterView | null): ElectionSource | null {
  const states = view?.partitionStates?.bind(view);
  const draining = view?.drainingBrokerIds?.bind(view);
  const request = view?.requestElection?.bind(view);
  if (view === null || view === undefined || states === undefined || draining === undefined || request === undefined) return null;
  return {
    read: () => ({ partitions: [...states()], live: new Set(view.brokers().map((broker) => broker.brokerId)), draining: draining(), topics: new Set(view.topicNames()) }),
    request,
  };
}
