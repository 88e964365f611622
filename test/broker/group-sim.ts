/**
 * @module test/broker/group-sim
 * A group coordinator under a fake clock, and simulated native members that behave as the
 * client library does: heartbeat with what they hold and the epoch of the last answer they
 * processed, adopt `assigned`, give up `revoke`. Shared by the coordinator's model and
 * scenario tests.
 */
import { type AssignorName, partitionKey } from "../../src/broker/assignors.ts";
import { GroupCoordinator, type GroupCoordinatorOptions, type HeartbeatAnswer, type TopicPartitions } from "../../src/broker/group-coordinator.ts";

export class FakeClock {
  nowMs = 1_000;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export interface SimWorld {
  clock: FakeClock;
  topics: Map<string, number>;
  coordinator: GroupCoordinator;
}

export function createWorld(topics: Record<string, number>, options: Partial<GroupCoordinatorOptions> = {}): SimWorld {
  const clock = new FakeClock();
  const topicMap = new Map(Object.entries(topics));
  let nextId = 0;
  const coordinator = new GroupCoordinator({
    nowMs: () => clock.nowMs,
    partitionCountOf: (topic) => topicMap.get(topic) ?? 0,
    newMemberId: () => `m${String(nextId++).padStart(4, "0")}`,
    groupsMax: 100,
    membersPerGroupMax: 1_000,
    topicsPerGroupMax: 100,
    sessionTimeoutMsMin: 100,
    sessionTimeoutMsMax: 60_000,
    sessionTimeoutMsDefault: 10_000,
    heartbeatIntervalMs: 1_000,
    pendingHeartbeatIntervalMs: 100,
    partitionCountCheckIntervalMs: 0,
    ...options,
  });
  return { clock, topics: topicMap, coordinator };
}

/** A member as the client library runs it. */
export class SimMember {
  /** What the member believes it holds. */
  readonly held = new Set<string>();
  ackedEpoch = 0;
  generation = 0;
  /** When the heartbeat of the last answer read was sent: the session the member can count on runs from there. */
  lastAnsweredSendMs: number;
  /** Send time of each answer in `inFlight`. */
  private readonly inFlightSentMs: number[] = [];
  /** Answers sent but not yet read (a client that sends again before reading: pipelining, or a retry after a timeout). */
  readonly inFlight: HeartbeatAnswer[] = [];
  /** Set once the coordinator said UNKNOWN_MEMBER (or it left): it holds nothing and is gone. */
  gone = false;

  private constructor(
    readonly world: SimWorld,
    readonly group: string,
    readonly id: string,
    readonly sessionTimeoutMs: number,
  ) {
    this.lastAnsweredSendMs = world.clock.nowMs;
  }

  static join(world: SimWorld, group: string, topics: string[], extra: { assignor?: AssignorName; sessionTimeoutMs?: number } = {}): SimMember {
    const answer = world.coordinator.join({ group, topics, ...extra });
    const member = new SimMember(world, group, answer.memberId, answer.sessionTimeoutMs);
    member.apply(answer, new Set());
    return member;
  }

  ownedReport(): TopicPartitions[] {
    const byTopic = new Map<string, number[]>();
    for (const key of this.held) {
      const [topic, partition] = key.split("\u0000") as [string, string];
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(partition)]);
    }
    return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
  }

  /**
   * One heartbeat. `keepRevoked`: the member is still committing and keeps what it was asked to
   * give up; `loseAnswer`: the broker handled it but the answer never arrived.
   */
  heartbeat(behaviour: { keepRevoked?: boolean; loseAnswer?: boolean; deferAnswer?: boolean } = {}): HeartbeatAnswer | null {
    if (this.gone) return null;
    const sentMs = this.world.clock.nowMs;
    let answer: HeartbeatAnswer;
    try {
      answer = this.world.coordinator.heartbeat({ group: this.group, memberId: this.id, memberEpoch: this.ackedEpoch, owned: this.ownedReport() });
    } catch (error) {
      if ((error as { code?: string }).code !== "UNKNOWN_MEMBER") throw error;
      this.gone = true;
      this.held.clear();
      return null;
    }
    if (behaviour.loseAnswer === true) return answer;
    if (behaviour.deferAnswer === true || this.inFlight.length > 0) {
      this.inFlight.push(answer);
      this.inFlightSentMs.push(sentMs);
      return answer;
    }
    this.lastAnsweredSendMs = sentMs;
    const kept = behaviour.keepRevoked === true ? new Set([...this.held].filter((key) => inList(answer.revoke, key))) : new Set<string>();
    this.apply(answer, kept);
    return answer;
  }

  /** Reads the oldest answer still in flight, if any. */
  deliver(): void {
    const answer = this.inFlight.shift();
    const sentMs = this.inFlightSentMs.shift();
    if (answer === undefined || sentMs === undefined || this.gone) return;
    this.lastAnsweredSendMs = sentMs;
    this.apply(answer, new Set());
  }

  /**
   * The client's own fence: with no answer to a heartbeat sent within the last session timeout,
   * the broker may have expired it — it stops processing and holds nothing (the broker's clock
   * started no earlier, at the heartbeat's arrival, so the member always lets go first).
   */
  checkSession(): void {
    if (this.world.clock.nowMs >= this.lastAnsweredSendMs + this.sessionTimeoutMs) this.held.clear();
  }

  leave(): void {
    if (this.gone) return;
    this.world.coordinator.leave(this.group, this.id);
    this.gone = true;
    this.held.clear();
    this.inFlight.length = 0;
    this.inFlightSentMs.length = 0;
  }

  /** A SIGKILL: it stops heartbeating; what it held dies with it. */
  kill(): void {
    this.gone = true;
    this.held.clear();
  }

  private apply(answer: HeartbeatAnswer, kept: Set<string>): void {
    this.held.clear();
    for (const entry of answer.assigned) for (const partition of entry.partitions) this.held.add(partitionKey(entry.topic, partition));
    for (const key of kept) this.held.add(key);
    this.ackedEpoch = answer.memberEpoch;
    this.generation = answer.generation;
  }
}

function inList(list: TopicPartitions[], key: string): boolean {
  return list.some((entry) => entry.partitions.some((partition) => partitionKey(entry.topic, partition) === key));
}

/** Heartbeats every live member, honestly, until a round changes nothing (bounded). Returns the rounds taken. */
export function settle(members: readonly SimMember[], roundsMax = 20): number {
  for (let round = 1; round <= roundsMax; round++) {
    const before = snapshot(members);
    for (const member of members) while (member.inFlight.length > 0) member.deliver();
    for (const member of members) member.heartbeat();
    if (snapshot(members) === before) return round;
  }
  throw new Error(`the group did not settle in ${roundsMax} rounds`);
}

function snapshot(members: readonly SimMember[]): string {
  return members.map((member) => `${member.id}:${[...member.held].sort().join(",")}`).join("|");
}

/** Partition key -> the live members holding it. */
export function holders(members: readonly SimMember[]): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const member of members) {
    if (member.gone) continue;
    for (const key of member.held) byKey.set(key, [...(byKey.get(key) ?? []), member.id]);
  }
  return byKey;
}
