/**
 * @module broker/assignors
 * The broker-side partition assignors of native consumer groups: pure functions from the
 * group's members (with their subscriptions), the subscribed topics' partition counts and the
 * previous target to the new target — which member should hold each partition. They decide only
 * the goal; the coordinator (group-coordinator.ts) moves partitions towards it one safe step at
 * a time (a partition reaches its new owner only after the old one let go).
 *
 * - `range` (Kafka's RangeAssignor): per topic, the subscribed members in id order take
 *   contiguous runs; the first `count % members` take one more.
 * - `roundRobin` (Kafka's RoundRobinAssignor): every partition in (topic, partition) order goes
 *   to the next member, in id order, that subscribes to its topic.
 * - `sticky` (the default; the spirit of Kafka's StickyAssignor): every partition stays with its
 *   previous target member while that member is present and subscribed; the rest go to the least
 *   loaded subscriber; then single partitions move from the most to the least loaded member until
 *   no move would narrow a gap of more than one. Each move lowers the sum of squared loads, so the
 *   loop ends; with equal subscriptions it ends balanced (loads differ by at most one) having moved
 *   only what balance needs.
 */

export type AssignorName = "sticky" | "range" | "roundRobin";
export const ASSIGNOR_NAMES: readonly AssignorName[] = ["sticky", "range", "roundRobin"];

/** A partition as a Map key: `topic NUL partition` (NUL never appears in a topic name). */
export type PartitionKey = string;

export function partitionKey(topic: string, partition: number): PartitionKey {
  return `${topic}\u0000${partition}`;
}

export function splitPartitionKey(key: PartitionKey): { topic: string; partition: number } {
  const cut = key.lastIndexOf("\u0000");
  return { topic: key.slice(0, cut), partition: Number(key.slice(cut + 1)) };
}

export interface AssignorMember {
  readonly id: string;
  /** Sorted, without repeats. */
  readonly topics: readonly string[];
}

export interface AssignorInput {
  /** In id order. */
  readonly members: readonly AssignorMember[];
  /** Partition count of every subscribed topic that exists (absent or 0: no partitions). */
  readonly partitionCounts: ReadonlyMap<string, number>;
  /** The previous target (only `sticky` reads it). */
  readonly previous: ReadonlyMap<PartitionKey, string>;
}

/** The target: the member that should own each partition some member subscribes to. */
export type Assignment = Map<PartitionKey, string>;

export function assign(name: AssignorName, input: AssignorInput): Assignment {
  if (name === "range") return assignRange(input);
  if (name === "roundRobin") return assignRoundRobin(input);
  return assignSticky(input);
}

/** Subscribed topics that exist, sorted, each with its subscribers in id order. */
function subscribersByTopic(input: AssignorInput): Map<string, AssignorMember[]> {
  const byTopic = new Map<string, AssignorMember[]>();
  for (const member of input.members) {
    for (const topic of member.topics) {
      if ((input.partitionCounts.get(topic) ?? 0) <= 0) continue;
      let subscribers = byTopic.get(topic);
      if (subscribers === undefined) byTopic.set(topic, (subscribers = []));
      subscribers.push(member);
    }
  }
  return new Map([...byTopic].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)));
}

export function assignRange(input: AssignorInput): Assignment {
  const target: Assignment = new Map();
  for (const [topic, subscribers] of subscribersByTopic(input)) {
    const count = input.partitionCounts.get(topic) ?? 0;
    const base = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    let partition = 0;
    subscribers.forEach((member, index) => {
      const share = base + (index < extra ? 1 : 0);
      for (let taken = 0; taken < share; taken++) target.set(partitionKey(topic, partition++), member.id);
    });
  }
  return target;
}

export function assignRoundRobin(input: AssignorInput): Assignment {
  const target: Assignment = new Map();
  const members = input.members;
  let next = 0;
  for (const [topic, subscribers] of subscribersByTopic(input)) {
    const subscribed = new Set(subscribers);
    const count = input.partitionCounts.get(topic) ?? 0;
    for (let partition = 0; partition < count; partition++) {
      // Some member subscribes, so at most members.length steps find one.
      let member = members[next % members.length];
      while (member === undefined || !subscribed.has(member)) member = members[++next % members.length];
      target.set(partitionKey(topic, partition), member.id);
      next++;
    }
  }
  return target;
}

export function assignSticky(input: AssignorInput): Assignment {
  const byTopic = subscribersByTopic(input);
  const held = new Map<string, PartitionKey[]>(input.members.map((member) => [member.id, []]));
  const target: Assignment = new Map();
  const give = (key: PartitionKey, memberId: string): void => {
    target.set(key, memberId);
    held.get(memberId)?.push(key);
  };
  const unplaced: Array<{ key: PartitionKey; subscribers: AssignorMember[] }> = [];
  for (const [topic, subscribers] of byTopic) {
    const subscriberIds = new Set(subscribers.map((member) => member.id));
    const count = input.partitionCounts.get(topic) ?? 0;
    for (let partition = 0; partition < count; partition++) {
      const key = partitionKey(topic, partition);
      const previous = input.previous.get(key);
      if (previous !== undefined && subscriberIds.has(previous)) give(key, previous);
      else unplaced.push({ key, subscribers });
    }
  }
  const loadOf = (member: AssignorMember): number => held.get(member.id)?.length ?? 0;
  const leastLoaded = (subscribers: readonly AssignorMember[]): AssignorMember | undefined => {
    let best: AssignorMember | undefined;
    for (const member of subscribers) if (best === undefined || loadOf(member) < loadOf(best)) best = member;
    return best;
  };
  for (const { key, subscribers } of unplaced) {
    const member = leastLoaded(subscribers);
    if (member !== undefined) give(key, member.id);
  }
  balance(input, byTopic, held, target, leastLoaded);
  return target;
}

/** Moves single partitions from the most to the least loaded eligible member while that narrows a gap of two or more. */
function balance(
  input: AssignorInput,
  byTopic: ReadonlyMap<string, AssignorMember[]>,
  held: Map<string, PartitionKey[]>,
  target: Assignment,
  leastLoaded: (subscribers: readonly AssignorMember[]) => AssignorMember | undefined,
): void {
  const members = input.members;
  const loadOf = (memberId: string): number => held.get(memberId)?.length ?? 0;
  for (;;) {
    const donors = [...members].sort((left, right) => loadOf(right.id) - loadOf(left.id));
    let moved = false;
    for (const donor of donors) {
      const keys = held.get(donor.id) ?? [];
      const donorLoad = keys.length;
      if (donorLoad < 2) break; // sorted: no later donor can give either
      // The newest first: what a donor took last (a fresh placement) is the cheapest to move.
      for (let index = keys.length - 1; index >= 0 && !moved; index--) {
        const key = keys[index] as PartitionKey;
        const receiver = leastLoaded(byTopic.get(splitPartitionKey(key).topic) ?? []);
        if (receiver === undefined || loadOf(receiver.id) >= donorLoad - 1) continue;
        keys.splice(index, 1);
        target.set(key, receiver.id);
        held.get(receiver.id)?.push(key);
        moved = true;
      }
      if (moved) break;
    }
    if (!moved) return;
  }
}
