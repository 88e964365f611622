/**
 * @module broker/group-coordinator
 * Consumer groups, sans-IO and protocol-neutral: membership with session deadlines, the target
 * assignment, who owns each partition now, pending revocations, commit fencing. A listener
 * decodes a request, calls one method here, and encodes the answer; the clock is injected
 * (`nowMs`) and one timer (broker/deadline-timer.ts) calls `expire` at `nextDeadlineMs`.
 *
 * Native groups (the msgpack protocol) are assigned by the broker, in the spirit of Kafka's
 * KIP-848. Each member says which topics it subscribes to; the group's assignor
 * (broker/assignors.ts) computes the *target* (who should own what) whenever membership,
 * subscriptions or partition counts change — each such change bumps the group's generation.
 * Partitions then move incrementally, one heartbeat at a time:
 *
 * - A partition owned by A and targeted to B is listed in A's heartbeat answer under `revoke`.
 *   A commits what it processed and stops listing it in its heartbeats: then it is free.
 * - A free partition targeted to B is *granted* in B's next heartbeat answer (`assigned`).
 * - A member that leaves, or misses its session (or does not give a revoked partition up within
 *   its rebalance timeout), is removed and everything it owned is free at once.
 *
 * So a partition has at most one owner at any time: it is granted only while nobody owns it.
 * An owner is "may hold": it is recorded when a grant is *sent*, so a lost answer never lets a
 * second member in. Each grant carries the member's epoch (bumped once per answer that grants);
 * a heartbeat states the epoch of the last answer the member processed, and only partitions
 * granted at or before that epoch count as let go when the heartbeat omits them — a grant still
 * in flight is not mistaken for a release.
 *
 * Commits by a member are fenced (`checkCommit`): it must own the partition and state a
 * generation no older than the one at which it got it. A commit without a member (tools) is
 * not fenced. Kafka classic groups (JoinGroup/SyncGroup, a leader member assigns:
 * classic-groups.ts) live in the same table and the same deadline heap; a group is one kind or
 * the other (INCONSISTENT_GROUP_PROTOCOL otherwise). Membership is soft state: after a restart members get
 * UNKNOWN_MEMBER, give everything up and join again; committed offsets live in the offset store.
 */
import { RunnelError } from "../errors.ts";
import { TOPIC_NAME_PATTERN } from "../limits.ts";
import { type AssignorName, assign, type PartitionKey, partitionKey, splitPartitionKey } from "./assignors.ts";
import { ClassicGroup, ClassicGroups, type ClassicJoinAnswer, type ClassicJoinRequest, type ClassicSyncRequest, type ClassicTimed } from "./classic-groups.ts";
import { DeadlineHeap, type DeadlineItem } from "./deadline-heap.ts";

export type GroupKind = "native" | "classic";

export interface GroupCoordinatorOptions {
  /** Monotonic milliseconds. */
  readonly nowMs: () => number;
  /** The partition count of a topic, 0 when it does not exist. */
  readonly partitionCountOf: (topic: string) => number;
  /** Told the earliest deadline after every change (a timer arms for it); may be called often. */
  readonly onDeadline?: (deadlineMs: number | null) => void;
  /**
   * Told when a member's next heartbeat answer would bring news (a partition to give up or to
   * take, or its removal): a heartbeat parked waiting for news (heartbeat `waitMs`) is woken.
   * Called in the middle of an operation: it must only schedule work.
   */
  readonly onMemberNews?: (groupId: string, memberId: string) => void;
  /** New member ids; random UUIDs by default. */
  readonly newMemberId?: () => string;
  readonly groupsMax: number;
  readonly membersPerGroupMax: number;
  /** Topics one member subscribes to, and topics of one group (the union of its members'). */
  readonly topicsPerGroupMax: number;
  readonly sessionTimeoutMsMin: number;
  readonly sessionTimeoutMsMax: number;
  readonly sessionTimeoutMsDefault: number;
  /** Heartbeat interval told to members in steady state (capped at a third of their session). */
  readonly heartbeatIntervalMs: number;
  /** Heartbeat interval told to a member that waits for partitions others are giving up. */
  readonly pendingHeartbeatIntervalMs: number;
  /** A heartbeat re-reads its group's partition counts at most this often (topicsChanged reads at once). */
  readonly partitionCountCheckIntervalMs: number;
}

export const GROUP_DEFAULTS = {
  sessionTimeoutMsDefault: 10_000,
  /** How long a member may keep a revoked partition before it is removed, unless it asks otherwise. */
  rebalanceTimeoutMsDefault: 60_000,
  rebalanceTimeoutMsMax: 30 * 60_000,
  pendingHeartbeatIntervalMs: 100,
} as const;

/** Partitions grouped by topic, as they travel on the wire. */
export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface JoinRequest {
  group: string;
  /** A client-chosen id (a retried join is then the same member), or none for a broker-made one. */
  memberId?: string | undefined;
  clientId?: string | undefined;
  topics: readonly string[];
  assignor?: AssignorName | undefined;
  sessionTimeoutMs?: number | undefined;
  rebalanceTimeoutMs?: number | undefined;
}

export interface HeartbeatRequest {
  group: string;
  memberId: string;
  /** The memberEpoch of the last answer the member processed. */
  memberEpoch: number;
  /** Every partition the member holds now. */
  owned: readonly TopicPartitions[];
}

export interface HeartbeatAnswer {
  memberId: string;
  generation: number;
  memberEpoch: number;
  /** Everything the member may hold now (held before or granted by this answer). */
  assigned: TopicPartitions[];
  /** What it must give up: commit, then stop listing it. */
  revoke: TopicPartitions[];
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
}

export type GroupState = "empty" | "stable" | "reconciling";

export interface GroupSummary {
  group: string;
  kind: GroupKind;
  state: GroupState;
  generation: number;
  members: number;
}

export interface MemberDescription {
  memberId: string;
  clientId: string;
  topics: string[];
  memberEpoch: number;
  sessionTimeoutMs: number;
  /** Held and meant to stay. */
  assigned: TopicPartitions[];
  /** Held but targeted to another member: being given up. */
  revoking: TopicPartitions[];
  /** Targeted to it, still held by another member. */
  pending: TopicPartitions[];
}

export interface GroupDescription extends GroupSummary {
  assignor: AssignorName | null;
  memberList: MemberDescription[];
}

interface Ownership {
  readonly memberId: string;
  /** Group generation when granted: an older commit generation is fenced. */
  readonly sinceGeneration: number;
  /** The member's epoch of the answer that granted it. */
  readonly grantEpoch: number;
}

interface NativeMember extends DeadlineItem {
  readonly timed: "native";
  readonly id: string;
  readonly group: NativeGroup;
  clientId: string;
  topics: readonly string[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberEpoch: number;
  sessionDeadlineMs: number;
  /** Set while it holds a revoked partition; Infinity otherwise. */
  revokeDeadlineMs: number;
  /** Keys whose ownership names this member. */
  readonly owned: Set<PartitionKey>;
  /** Keys the target gives this member. */
  readonly targeted: Set<PartitionKey>;
}

interface NativeGroup {
  readonly kind: "native";
  readonly id: string;
  generation: number;
  assignor: AssignorName;
  readonly members: Map<string, NativeMember>;
  readonly owners: Map<PartitionKey, Ownership>;
  target: Map<PartitionKey, string>;
  /** Partition counts of the subscribed topics as last read, and when. */
  partitionCounts: Map<string, number>;
  partitionCountsReadAtMs: number;
}

type Group = NativeGroup | ClassicGroup;

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();
  /** Every deadline of every group, both kinds: sessions, revocations, classic join phases. */
  private readonly deadlines = new DeadlineHeap<NativeMember | ClassicTimed>();
  private readonly newMemberId: () => string;
  private readonly classic: ClassicGroups;

  constructor(private readonly options: GroupCoordinatorOptions) {
    this.newMemberId = options.newMemberId ?? (() => crypto.randomUUID());
    this.classic = new ClassicGroups({
      nowMs: options.nowMs,
      newMemberId: this.newMemberId,
      lookup: (groupId) => {
        const group = this.groups.get(groupId);
        return group?.kind === "native" ? "native" : group;
      },
      add: (group) => {
        this.checkGroupRoom();
        this.groups.set(group.id, group);
      },
      remove: (groupId) => this.groups.delete(groupId),
      setDeadline: (item, deadlineMs) => {
        this.deadlines.set(item, deadlineMs);
        this.notifyDeadline();
      },
      clearDeadline: (item) => this.deadlines.remove(item),
      membersPerGroupMax: options.membersPerGroupMax,
      sessionTimeoutMsMin: options.sessionTimeoutMsMin,
      sessionTimeoutMsMax: options.sessionTimeoutMsMax,
    });
  }

  // ------------------------------------------------------------ Kafka classic groups (classic-groups.ts)

  /** JoinGroup: resolves when the join phase completes. */
  classicJoin(request: ClassicJoinRequest): Promise<ClassicJoinAnswer> {
    return this.classic.join(request);
  }

  /** SyncGroup: resolves with the member's assignment once the leader has sent them. */
  classicSync(request: ClassicSyncRequest): Promise<Uint8Array> {
    return this.classic.sync(request);
  }

  /** `instanceId`: a static member's group.instance.id (KIP-345), fenced when another member id holds it. */
  classicHeartbeat(groupId: string, memberId: string, generation: number, instanceId: string | null = null): void {
    this.classic.heartbeat(groupId, memberId, generation, instanceId);
  }

  /** A static member may be named by `instanceId` with memberId "". */
  classicLeave(groupId: string, memberId: string, instanceId: string | null = null): void {
    this.classic.leave(groupId, memberId, instanceId);
  }

  /** A Kafka classic group as it stands, for DescribeGroups (read only); undefined for none or a native group. */
  classicGroup(groupId: string): Readonly<ClassicGroup> | undefined {
    const group = this.groups.get(groupId);
    return group?.kind === "classic" ? group : undefined;
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** Joins (or, for a known memberId, updates the subscription of) a member; answers as a heartbeat holding nothing. */
  join(request: JoinRequest): HeartbeatAnswer {
    const topics = this.checkSubscription(request.topics);
    const sessionTimeoutMs = this.checkSessionTimeout(request.sessionTimeoutMs);
    const rebalanceTimeoutMs = checkRebalanceTimeout(request.rebalanceTimeoutMs);
    const group = this.nativeGroupFor(request.group, request.assignor);
    const existing = request.memberId === undefined ? undefined : group.members.get(request.memberId);
    if (existing !== undefined) return this.rejoin(existing, request, topics, sessionTimeoutMs, rebalanceTimeoutMs);
    if (group.members.size >= this.options.membersPerGroupMax) {
      throw new RunnelError("LIMIT_EXCEEDED", `group '${group.id}' has its maximum of ${this.options.membersPerGroupMax} members`);
    }
    this.checkGroupTopics(group, topics, null);
    const member: NativeMember = {
      id: request.memberId ?? this.newMemberId(),
      group,
      clientId: request.clientId ?? "",
      topics,
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      timed: "native",
      memberEpoch: 0,
      sessionDeadlineMs: 0,
      revokeDeadlineMs: Number.POSITIVE_INFINITY,
      owned: new Set(),
      targeted: new Set(),
      deadlineMs: 0,
      heapIndex: -1,
    };
    group.members.set(member.id, member);
    this.groups.set(group.id, group);
    this.rebalance(group);
    return this.answer(member, member.memberEpoch, []);
  }

  /**
   * A member's heartbeat: releases what it stopped listing, grants what is free for it, lists
   * what it must give up. `refreshSession: false` for the second look of a heartbeat that was
   * parked: the session runs from the heartbeat's arrival, not from its answer.
   */
  heartbeat(request: HeartbeatRequest, refreshSession = true): HeartbeatAnswer {
    for (const entry of request.owned) checkTopicName(entry.topic);
    const member = this.nativeMember(request.group, request.memberId);
    if (!Number.isSafeInteger(request.memberEpoch) || request.memberEpoch < 0 || request.memberEpoch > member.memberEpoch) {
      throw new RunnelError(
        "INVALID_REQUEST",
        `memberEpoch: ${request.memberEpoch} was never sent to member '${member.id}' (latest: ${member.memberEpoch}); send the memberEpoch of the last answer processed`,
      );
    }
    if (this.options.nowMs() - member.group.partitionCountsReadAtMs >= this.options.partitionCountCheckIntervalMs) this.refreshPartitionCounts(member.group);
    return this.answer(member, request.memberEpoch, request.owned, refreshSession);
  }

  /** A member leaves at once: everything it holds is free (it committed first). */
  leave(groupId: string, memberId: string): void {
    const member = this.nativeMember(groupId, memberId);
    this.removeMember(member);
    this.afterRemovals([member.group]);
  }

  /** Removes every member whose session (or revocation) deadline has passed; returns the next deadline. */
  expire(): number | null {
    const now = this.options.nowMs();
    const touched = new Set<NativeGroup>();
    for (let first = this.deadlines.peek(); first !== undefined && first.deadlineMs <= now; first = this.deadlines.peek()) {
      if (first.timed !== "native") {
        this.classic.onDeadline(first);
        continue;
      }
      this.removeMember(first);
      touched.add(first.group);
    }
    this.afterRemovals(touched);
    return this.nextDeadlineMs();
  }

  nextDeadlineMs(): number | null {
    return this.deadlines.peek()?.deadlineMs ?? null;
  }

  /** Re-reads the partition counts of every group's topics (topics created, deleted or grown); rebalances where they changed. */
  topicsChanged(): void {
    for (const group of this.groups.values()) if (group.kind === "native") this.refreshPartitionCounts(group);
    this.notifyDeadline();
  }

  /**
   * Throws unless `memberId` may commit `topic`/`partition` at `generation`: UNKNOWN_MEMBER when
   * it is not a member, COMMIT_FENCED when it does not own the partition or the generation is
   * older than its ownership (or newer than the group's).
   */
  checkCommit(groupId: string, memberId: string, generation: number, topic: string, partition: number, instanceId: string | null = null): void {
    const group = this.groups.get(groupId);
    if (group?.kind === "classic") {
      this.classic.checkCommit(group, memberId, generation, instanceId);
      return;
    }
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined) throw unknownMember(groupId, memberId);
    const ownership = group.owners.get(partitionKey(topic, partition));
    if (ownership === undefined || ownership.memberId !== memberId) {
      throw new RunnelError("COMMIT_FENCED", `member '${memberId}' does not own ${topic}/${partition} in group '${groupId}'`);
    }
    if (generation < ownership.sinceGeneration || generation > group.generation) {
      throw new RunnelError(
        "COMMIT_FENCED",
        `generation ${generation} is outside member '${memberId}''s ownership of ${topic}/${partition} (generations ${ownership.sinceGeneration}..${group.generation})`,
      );
    }
  }

  /** True when the group has members (a group's committed offsets are the offset store's business). */
  hasMembers(groupId: string): boolean {
    return (this.groups.get(groupId)?.members.size ?? 0) > 0;
  }

  listGroups(): GroupSummary[] {
    return [...this.groups.values()].map((group) => summaryOf(group));
  }

  describeGroup(groupId: string): GroupDescription | null {
    const group = this.groups.get(groupId);
    if (group === undefined) return null;
    if (group.kind === "classic") return { ...summaryOf(group), assignor: null, memberList: [] };
    const memberList = [...group.members.values()].map((member) => describeMember(member));
    return { ...summaryOf(group), assignor: group.assignor, memberList };
  }

  // ------------------------------------------------------------ membership

  private nativeGroupFor(groupId: string, assignor: AssignorName | undefined): NativeGroup {
    const group = this.groups.get(groupId);
    if (group?.kind === "classic") {
      throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${groupId}' is a Kafka classic group; a native member cannot join it`);
    }
    if (group !== undefined) {
      if (assignor !== undefined && assignor !== group.assignor) {
        throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${groupId}' assigns with '${group.assignor}', not '${assignor}'`);
      }
      return group;
    }
    this.checkGroupRoom();
    return { kind: "native", id: groupId, generation: 0, assignor: assignor ?? "sticky", members: new Map(), owners: new Map(), target: new Map(), partitionCounts: new Map(), partitionCountsReadAtMs: 0 };
  }

  private checkGroupRoom(): void {
    if (this.groups.size >= this.options.groupsMax) {
      throw new RunnelError("LIMIT_EXCEEDED", `the broker holds at most ${this.options.groupsMax} groups with members`);
    }
  }

  private nativeMember(groupId: string, memberId: string): NativeMember {
    const group = this.groups.get(groupId);
    if (group?.kind === "classic") {
      throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${groupId}' is a Kafka classic group; native heartbeats do not apply`);
    }
    const member = group?.members.get(memberId);
    if (member === undefined) throw unknownMember(groupId, memberId);
    return member;
  }

  private rejoin(member: NativeMember, request: JoinRequest, topics: readonly string[], sessionTimeoutMs: number, rebalanceTimeoutMs: number): HeartbeatAnswer {
    member.sessionTimeoutMs = sessionTimeoutMs;
    member.rebalanceTimeoutMs = rebalanceTimeoutMs;
    if (request.clientId !== undefined) member.clientId = request.clientId;
    if (!sameTopics(member.topics, topics)) {
      this.checkGroupTopics(member.group, topics, member);
      member.topics = topics;
      this.rebalance(member.group);
    }
    // A rejoin does not say what the member holds: whatever it may hold stays its own.
    return this.answer(member, member.memberEpoch, ownedList(member));
  }

  private checkSubscription(topics: readonly string[]): readonly string[] {
    const unique = [...new Set(topics)].sort();
    if (unique.length > this.options.topicsPerGroupMax) {
      throw new RunnelError("LIMIT_EXCEEDED", `topics: a member subscribes to at most ${this.options.topicsPerGroupMax} topics, not ${unique.length}`);
    }
    for (const topic of unique) checkTopicName(topic);
    return unique;
  }

  /** The group's topic union stays bounded: a member that would pass it is refused, the group goes on. */
  private checkGroupTopics(group: NativeGroup, topics: readonly string[], replacing: NativeMember | null): void {
    const union = new Set(topics);
    for (const other of group.members.values()) if (other !== replacing) for (const topic of other.topics) union.add(topic);
    if (union.size > this.options.topicsPerGroupMax) {
      throw new RunnelError("LIMIT_EXCEEDED", `group '${group.id}' would subscribe to ${union.size} topics; at most ${this.options.topicsPerGroupMax}`);
    }
  }

  private checkSessionTimeout(requested: number | undefined): number {
    const { sessionTimeoutMsMin, sessionTimeoutMsMax, sessionTimeoutMsDefault } = this.options;
    const value = requested ?? Math.min(sessionTimeoutMsMax, Math.max(sessionTimeoutMsMin, sessionTimeoutMsDefault));
    if (!Number.isSafeInteger(value) || value < sessionTimeoutMsMin || value > sessionTimeoutMsMax) {
      throw new RunnelError("INVALID_REQUEST", `sessionTimeoutMs: ${value} is outside the broker's ${sessionTimeoutMsMin}..${sessionTimeoutMsMax}`);
    }
    return value;
  }

  private removeMember(member: NativeMember): void {
    const group = member.group;
    this.deadlines.remove(member);
    for (const key of member.owned) this.free(group, key);
    member.owned.clear();
    group.members.delete(member.id);
    this.options.onMemberNews?.(group.id, member.id);
  }

  private afterRemovals(groups: Iterable<NativeGroup>): void {
    for (const group of groups) {
      if (group.members.size === 0) this.groups.delete(group.id);
      else this.rebalance(group);
    }
    this.notifyDeadline();
  }

  // ------------------------------------------------------------ assignment

  /** A new generation and a new target; ownership moves towards it at the members' next heartbeats. */
  private rebalance(group: NativeGroup): void {
    group.generation++;
    group.partitionCounts = this.readPartitionCounts(group);
    const members = [...group.members.values()].sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0));
    const before = new Map(members.map((member) => [member, [...member.targeted]]));
    group.target = assign(group.assignor, { members, partitionCounts: group.partitionCounts, previous: group.target });
    for (const member of members) member.targeted.clear();
    for (const [key, memberId] of group.target) group.members.get(memberId)?.targeted.add(key);
    for (const [member, keys] of before) {
      if (keys.length !== member.targeted.size || keys.some((key) => !member.targeted.has(key))) this.options.onMemberNews?.(group.id, member.id);
    }
  }

  /** Nobody owns `key` any more: the member it is meant for may take it. */
  private free(group: NativeGroup, key: PartitionKey): void {
    group.owners.delete(key);
    const next = group.target.get(key);
    if (next !== undefined) this.options.onMemberNews?.(group.id, next);
  }

  private readPartitionCounts(group: NativeGroup): Map<string, number> {
    group.partitionCountsReadAtMs = this.options.nowMs();
    const counts = new Map<string, number>();
    for (const member of group.members.values()) {
      for (const topic of member.topics) if (!counts.has(topic)) counts.set(topic, Math.max(0, this.options.partitionCountOf(topic)));
    }
    return counts;
  }

  private refreshPartitionCounts(group: NativeGroup): void {
    group.partitionCountsReadAtMs = this.options.nowMs();
    for (const [topic, count] of group.partitionCounts) {
      if (Math.max(0, this.options.partitionCountOf(topic)) !== count) {
        this.rebalance(group);
        return;
      }
    }
  }

  /** The heartbeat step shared by join and heartbeat; see the module comment for the rules. */
  private answer(member: NativeMember, ackedEpoch: number, ownedReport: readonly TopicPartitions[], refreshSession = true): HeartbeatAnswer {
    const group = member.group;
    const reported = new Set<PartitionKey>();
    for (const entry of ownedReport) for (const partition of entry.partitions) reported.add(partitionKey(entry.topic, partition));
    for (const key of member.owned) {
      const ownership = group.owners.get(key);
      if (!reported.has(key) && ownership !== undefined && ownership.grantEpoch <= ackedEpoch) {
        member.owned.delete(key);
        this.free(group, key);
      }
    }
    const grants: PartitionKey[] = [];
    for (const key of member.targeted) if (!group.owners.has(key)) grants.push(key);
    if (grants.length > 0) {
      member.memberEpoch++;
      for (const key of grants) {
        group.owners.set(key, { memberId: member.id, sinceGeneration: group.generation, grantEpoch: member.memberEpoch });
        member.owned.add(key);
      }
    }
    const assigned: PartitionKey[] = [];
    const revoke: PartitionKey[] = [];
    for (const key of member.owned) (member.targeted.has(key) ? assigned : revoke).push(key);
    // Reported but never granted (or already taken back): the member must not keep it.
    for (const key of reported) if (!member.owned.has(key)) revoke.push(key);
    this.touch(member, revoke.length > 0 && revoke.some((key) => member.owned.has(key)), refreshSession);
    let waiting = false;
    for (const key of member.targeted) if (!member.owned.has(key)) waiting = true;
    const steadyMs = Math.min(this.options.heartbeatIntervalMs, Math.floor(member.sessionTimeoutMs / 3));
    return {
      memberId: member.id,
      generation: group.generation,
      memberEpoch: member.memberEpoch,
      assigned: groupByTopic(assigned),
      revoke: groupByTopic(revoke),
      heartbeatIntervalMs: waiting ? Math.min(steadyMs, this.options.pendingHeartbeatIntervalMs) : steadyMs,
      sessionTimeoutMs: member.sessionTimeoutMs,
    };
  }

  /** A sign of life: a new session deadline, and a revocation deadline while it holds something revoked. */
  private touch(member: NativeMember, holdsRevoked: boolean, refreshSession: boolean): void {
    const now = this.options.nowMs();
    if (refreshSession) member.sessionDeadlineMs = now + member.sessionTimeoutMs;
    if (!holdsRevoked) member.revokeDeadlineMs = Number.POSITIVE_INFINITY;
    else if (member.revokeDeadlineMs === Number.POSITIVE_INFINITY) member.revokeDeadlineMs = now + member.rebalanceTimeoutMs;
    this.deadlines.set(member, Math.min(member.sessionDeadlineMs, member.revokeDeadlineMs));
    this.notifyDeadline();
  }

  private notifyDeadline(): void {
    this.options.onDeadline?.(this.nextDeadlineMs());
  }
}

/** The broker's one topic-name rule (docs/protocol.md 6.1), here without a BrokerContext. */
function checkTopicName(topic: string): void {
  if (!TOPIC_NAME_PATTERN.test(topic) || topic === "." || topic === "..") {
    throw new RunnelError("INVALID_TOPIC_NAME", `'${topic.slice(0, 64)}' is not a valid topic name: 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'`);
  }
}

function checkRebalanceTimeout(requested: number | undefined): number {
  const value = requested ?? GROUP_DEFAULTS.rebalanceTimeoutMsDefault;
  if (!Number.isSafeInteger(value) || value < 1 || value > GROUP_DEFAULTS.rebalanceTimeoutMsMax) {
    throw new RunnelError("INVALID_REQUEST", `rebalanceTimeoutMs: ${value} is outside 1..${GROUP_DEFAULTS.rebalanceTimeoutMsMax}`);
  }
  return value;
}

function unknownMember(groupId: string, memberId: string): RunnelError {
  return new RunnelError(
    "UNKNOWN_MEMBER",
    `'${memberId.slice(0, 64)}' is not a member of group '${groupId}' (it left, its session expired, or the broker restarted): give up every partition and join again`,
  );
}

function sameTopics(left: readonly string[], right: readonly string[]): boolean {
  return left.length === right.length && left.every((topic, index) => topic === right[index]);
}

function ownedList(member: NativeMember): TopicPartitions[] {
  return groupByTopic([...member.owned]);
}

/**
 * True when an answer tells the member something it does not know from what it reported:
 * something to give up, or an assigned list other than what it holds. Otherwise a heartbeat
 * with `waitMs` may wait for news before answering.
 */
export function answerHasNews(answer: HeartbeatAnswer, owned: readonly TopicPartitions[]): boolean {
  if (answer.revoke.length > 0) return true;
  const reported = new Set<PartitionKey>();
  for (const entry of owned) for (const partition of entry.partitions) reported.add(partitionKey(entry.topic, partition));
  let assignedCount = 0;
  for (const entry of answer.assigned) {
    for (const partition of entry.partitions) {
      assignedCount++;
      if (!reported.has(partitionKey(entry.topic, partition))) return true;
    }
  }
  return assignedCount !== reported.size;
}

/** Keys grouped by topic, topics and partitions in ascending order. */
export function groupByTopic(keys: Iterable<PartitionKey>): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const key of keys) {
    const { topic, partition } = splitPartitionKey(key);
    let partitions = byTopic.get(topic);
    if (partitions === undefined) byTopic.set(topic, (partitions = []));
    partitions.push(partition);
  }
  return [...byTopic]
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([topic, partitions]) => ({ topic, partitions: partitions.sort((left, right) => left - right) }));
}

function stateOf(group: Group): GroupState {
  if (group.members.size === 0) return "empty";
  if (group.kind === "classic") return group.state === "stable" ? "stable" : "reconciling";
  if (group.owners.size !== group.target.size) return "reconciling";
  for (const [key, ownership] of group.owners) if (group.target.get(key) !== ownership.memberId) return "reconciling";
  return "stable";
}

function summaryOf(group: Group): GroupSummary {
  return { group: group.id, kind: group.kind, state: stateOf(group), generation: group.generation, members: group.members.size };
}

function describeMember(member: NativeMember): MemberDescription {
  const group = member.group;
  const assigned: PartitionKey[] = [];
  const revoking: PartitionKey[] = [];
  for (const key of member.owned) (member.targeted.has(key) ? assigned : revoking).push(key);
  const pending = [...member.targeted].filter((key) => group.owners.get(key)?.memberId !== member.id);
  return {
    memberId: member.id,
    clientId: member.clientId,
    topics: [...member.topics],
    memberEpoch: member.memberEpoch,
    sessionTimeoutMs: member.sessionTimeoutMs,
    assigned: groupByTopic(assigned),
    revoking: groupByTopic(revoking),
    pending: groupByTopic(pending),
  };
}
