/**
 * @module broker/classic-groups
 * Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), sans-IO,
 * for the Kafka listener: the members assign, the broker only elects a leader and relays. The
 * group coordinator (group-coordinator.ts) owns the one group table and the one deadline heap;
 * this module holds the classic rules and reaches the table through `ClassicTable`.
 *
 * A rebalance, as Kafka's GroupCoordinator runs it:
 * 1. A join (a new member, changed protocols) or a departure moves the group to
 *    `preparingRebalance`; every member must join again (heartbeats answer REBALANCE_IN_PROGRESS).
 *    Joins wait (their promise stays pending) until every known member has joined, or until the
 *    largest rebalance timeout passes — then members that did not join are removed.
 * 2. The join phase completes: a new generation, the protocol (assignor) every member supports,
 *    chosen by the members' first preferences, and a leader (the old one if still there). Every
 *    join is answered; the leader's answer lists every member with its subscription metadata.
 *    The group is `completingRebalance`.
 * 3. Every member sends SyncGroup; the leader's carries the assignments. Syncs wait for the
 *    leader's; then each member gets its assignment bytes and the group is `stable`.
 * Commits and heartbeats are fenced by generation (ILLEGAL_GENERATION) and membership
 * (UNKNOWN_MEMBER).
 *
 * Static membership (KIP-345, group.instance.id): a member may name an instance id that outlives
 * its member ids. A join with that instance id and no member id (a restarted process) replaces the
 * old member — same assignment, no rebalance when the group is stable and the choice of protocol
 * does not change; the answer names the old leader id, so even a returning leader does not
 * reassign, and its SyncGroup gets the stored assignment. The replaced member id is then fenced:
 * a request naming it with the instance id is FENCED_INSTANCE_ID, without it UNKNOWN_MEMBER. A
 * static member leaves only by LeaveGroup or when its session expires (clients do not send
 * LeaveGroup for static members on close), so a restart within the session costs no rebalance.
 */
import { RunnelError } from "../errors.ts";
import type { DeadlineItem } from "./deadline-heap.ts";

export interface ClassicProtocol {
  /** An assignor name ("range", "cooperative-sticky"...). */
  name: string;
  /** The member's subscription, opaque to the broker. */
  metadata: Uint8Array;
}

export interface ClassicMember extends DeadlineItem {
  readonly timed: "classicMember";
  readonly id: string;
  readonly group: ClassicGroup;
  /** group.instance.id of a static member (KIP-345); null for a dynamic one. */
  readonly instanceId: string | null;
  clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: ClassicProtocol[];
  /** The opaque assignment the leader gave it at the last SyncGroup. */
  assignment: Uint8Array;
  pendingJoin: Deferred<ClassicJoinAnswer> | null;
  pendingSync: Deferred<Uint8Array> | null;
}

/** The join phase's deadline, one per group, in the shared heap. */
export interface ClassicRebalance extends DeadlineItem {
  readonly timed: "classicRebalance";
  readonly group: ClassicGroup;
}

export class ClassicGroup {
  readonly kind = "classic";
  generation = 0;
  state: "empty" | "preparingRebalance" | "completingRebalance" | "stable" = "empty";
  protocolName: string | null = null;
  leaderId: string | null = null;
  readonly members = new Map<string, ClassicMember>();
  /** Static members: instance id -> the member id that holds it now. */
  readonly instances = new Map<string, string>();
  readonly rebalance: ClassicRebalance = { timed: "classicRebalance", group: this, deadlineMs: 0, heapIndex: -1 };

  constructor(
    readonly id: string,
    public protocolType: string,
  ) {}
}

export type ClassicTimed = ClassicMember | ClassicRebalance;

interface Deferred<Value> {
  resolve(value: Value): void;
  reject(error: RunnelError): void;
}

export interface ClassicJoinRequest {
  group: string;
  /** "" for a member joining for the first time. */
  memberId: string;
  /** group.instance.id (JoinGroup v5+); null or absent for a dynamic member. */
  instanceId?: string | null;
  clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: ClassicProtocol[];
}

export interface ClassicJoinAnswer {
  generation: number;
  protocolName: string;
  leaderId: string;
  memberId: string;
  /** Every member, its instance id and its metadata for the chosen protocol: for the leader only, else empty. */
  members: Array<{ memberId: string; instanceId: string | null; metadata: Uint8Array }>;
}

export interface ClassicSyncRequest {
  group: string;
  memberId: string;
  /** group.instance.id (SyncGroup v3+); null or absent for a dynamic member. */
  instanceId?: string | null;
  generation: number;
  /** The leader's assignment per member; empty from everyone else. */
  assignments: Array<{ memberId: string; assignment: Uint8Array }>;
}

/** The coordinator's group table and deadline heap, as the classic rules need them. */
export interface ClassicTable {
  nowMs(): number;
  newMemberId(): string;
  /** "native" for a group of the other kind. */
  lookup(groupId: string): ClassicGroup | "native" | undefined;
  /** Adds a new group; throws LIMIT_EXCEEDED at the group bound. */
  add(group: ClassicGroup): void;
  remove(groupId: string): void;
  setDeadline(item: ClassicTimed, deadlineMs: number): void;
  clearDeadline(item: ClassicTimed): void;
  readonly membersPerGroupMax: number;
  readonly sessionTimeoutMsMin: number;
  readonly sessionTimeoutMsMax: number;
}

const EMPTY = new Uint8Array(0);

export class ClassicGroups {
  constructor(private readonly table: ClassicTable) {}

  /** A JoinGroup: resolves when the join phase completes (or rejects: UNKNOWN_MEMBER, REBALANCE_IN_PROGRESS...). */
  join(request: ClassicJoinRequest): Promise<ClassicJoinAnswer> {
    this.checkTimeouts(request);
    const group = this.groupFor(request);
    this.checkProtocols(group, request);
    const instanceId = request.instanceId ?? null;
    if (instanceId !== null && request.memberId !== "") checkInstance(group, request.memberId, instanceId);
    const holder = instanceId === null || request.memberId !== "" ? undefined : group.instances.get(instanceId);
    const replacing = holder === undefined ? undefined : group.members.get(holder);
    if (replacing !== undefined) return this.replaceStatic(replacing, request);
    const member = this.memberFor(group, request);
    return this.joinAs(member, request);
  }

  private joinAs(member: ClassicMember, request: ClassicJoinRequest): Promise<ClassicJoinAnswer> {
    const group = member.group;
    member.clientId = request.clientId;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    member.protocols = request.protocols;
    member.pendingJoin?.reject(new RunnelError("REBALANCE_IN_PROGRESS", "a newer JoinGroup from the same member replaced this one"));
    const answer = new Promise<ClassicJoinAnswer>((resolve, reject) => {
      member.pendingJoin = { resolve, reject };
    });
    // Waiting to join is not silence: the join phase's deadline bounds it instead.
    this.table.clearDeadline(member);
    if (group.state !== "preparingRebalance") this.prepareRebalance(group);
    this.completeJoinIfAllJoined(group);
    return answer;
  }

  /**
   * A static member's process came back (a join with its instance id and no member id): a new
   * member id takes the old one's place and assignment. In a stable group whose protocol choice
   * does not change, the answer comes at once with the current generation and the old leader id
   * (so nobody reassigns) and the group does not rebalance; otherwise the new member joins the
   * rebalance as usual. Whatever the old member id waited for is refused with FENCED_INSTANCE_ID.
   */
  private replaceStatic(old: ClassicMember, request: ClassicJoinRequest): Promise<ClassicJoinAnswer> {
    const group = old.group;
    const leaderBefore = group.leaderId;
    const member = this.newMember(group, request);
    member.assignment = old.assignment;
    const fenced = new RunnelError("FENCED_INSTANCE_ID", `instance '${old.instanceId}' of group '${group.id}' rejoined as member '${member.id}'; member '${old.id}' is fenced`);
    const waitingJoin = old.pendingJoin;
    old.pendingJoin?.reject(fenced);
    old.pendingSync?.reject(fenced);
    old.pendingJoin = null;
    old.pendingSync = null;
    this.table.clearDeadline(old);
    group.members.delete(old.id);
    group.members.set(member.id, member);
    if (member.instanceId !== null) group.instances.set(member.instanceId, member.id);
    if (group.leaderId === old.id) group.leaderId = member.id;
    const protocolName = group.protocolName;
    if (group.state === "stable" && waitingJoin === null && protocolName !== null && chooseProtocol([...group.members.values()]) === protocolName) {
      this.touch(member);
      return Promise.resolve({ generation: group.generation, protocolName, leaderId: leaderBefore ?? member.id, memberId: member.id, members: [] });
    }
    return this.joinAs(member, request);
  }

  /** A SyncGroup: resolves with the member's assignment once the leader has sent them. */
  sync(request: ClassicSyncRequest): Promise<Uint8Array> {
    const member = this.member(request.group, request.memberId, request.instanceId ?? null);
    const group = member.group;
    if (group.state === "preparingRebalance") throw rebalancing(group);
    if (request.generation !== group.generation) throw illegalGeneration(group, request.generation);
    this.touch(member);
    if (group.state === "stable") return Promise.resolve(member.assignment);
    if (member.id === group.leaderId) {
      const given = new Map(request.assignments.map((entry) => [entry.memberId, entry.assignment]));
      for (const each of group.members.values()) each.assignment = given.get(each.id) ?? EMPTY;
      group.state = "stable";
      for (const each of group.members.values()) {
        each.pendingSync?.resolve(each.assignment);
        each.pendingSync = null;
      }
      return Promise.resolve(member.assignment);
    }
    return new Promise((resolve, reject) => {
      member.pendingSync = { resolve, reject };
    });
  }

  /** A Heartbeat: REBALANCE_IN_PROGRESS tells the member to join again. */
  heartbeat(groupId: string, memberId: string, generation: number, instanceId: string | null = null): void {
    const member = this.member(groupId, memberId, instanceId);
    const group = member.group;
    if (member.pendingJoin === null) this.touch(member);
    if (group.state === "preparingRebalance") throw rebalancing(group);
    if (generation !== group.generation) throw illegalGeneration(group, generation);
  }

  /** A LeaveGroup; a static member may be named by its instance id alone (member id ""). */
  leave(groupId: string, memberId: string, instanceId: string | null = null): void {
    const group = this.table.lookup(groupId);
    const holder = instanceId === null || memberId !== "" || typeof group !== "object" ? undefined : group.instances.get(instanceId);
    this.remove(this.member(groupId, holder ?? memberId, instanceId), "it left the group");
  }

  /**
   * A commit by a member: it must be one, of the current generation. While the group prepares a
   * rebalance its members still own their partitions and commit what they did before they join
   * again (clients commit as they give partitions up), so that is allowed, as in Kafka; only
   * between the join phase and the leader's assignment (completingRebalance) is a commit
   * REBALANCE_IN_PROGRESS. Refusing it earlier made kafka-python drop its member id and join as a
   * new member, leaving the old one to time out: a rebalance took a whole session timeout.
   */
  checkCommit(group: ClassicGroup, memberId: string, generation: number, instanceId: string | null = null): void {
    if (instanceId !== null) checkInstance(group, memberId, instanceId);
    if (!group.members.has(memberId)) throw unknownMember(group.id, memberId);
    if (group.state === "completingRebalance") throw rebalancing(group);
    if (generation !== group.generation) throw illegalGeneration(group, generation);
  }

  /** A deadline from the shared heap came due: a session ended, or a join phase's time is up. */
  onDeadline(item: ClassicTimed): void {
    this.table.clearDeadline(item);
    if (item.timed === "classicRebalance") this.completeJoin(item.group);
    else this.remove(item, "its session expired");
  }

  private member(groupId: string, memberId: string, instanceId: string | null = null): ClassicMember {
    const group = this.table.lookup(groupId);
    if (group === "native") throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${groupId}' is a native group; Kafka classic requests do not apply`);
    if (group !== undefined && instanceId !== null) checkInstance(group, memberId, instanceId);
    const member = group?.members.get(memberId);
    if (member === undefined) throw unknownMember(groupId, memberId);
    return member;
  }

  private checkTimeouts(request: ClassicJoinRequest): void {
    const { sessionTimeoutMsMin, sessionTimeoutMsMax } = this.table;
    if (!Number.isSafeInteger(request.sessionTimeoutMs) || request.sessionTimeoutMs < sessionTimeoutMsMin || request.sessionTimeoutMs > sessionTimeoutMsMax) {
      throw new RunnelError("INVALID_REQUEST", `sessionTimeoutMs: ${request.sessionTimeoutMs} is outside the broker's ${sessionTimeoutMsMin}..${sessionTimeoutMsMax}`);
    }
    if (!Number.isSafeInteger(request.rebalanceTimeoutMs) || request.rebalanceTimeoutMs < 1) {
      throw new RunnelError("INVALID_REQUEST", `rebalanceTimeoutMs: ${request.rebalanceTimeoutMs} must be at least 1`);
    }
  }

  private groupFor(request: ClassicJoinRequest): ClassicGroup {
    const found = this.table.lookup(request.group);
    if (found === "native") throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${request.group}' is a native group; a Kafka classic member cannot join it`);
    if (found !== undefined) return found;
    const group = new ClassicGroup(request.group, request.protocolType);
    this.table.add(group);
    return group;
  }

  private checkProtocols(group: ClassicGroup, request: ClassicJoinRequest): void {
    if (request.protocols.length === 0) throw new RunnelError("INVALID_REQUEST", "protocols: a member names at least one protocol");
    const others = [...group.members.values()].filter((member) => member.id !== request.memberId);
    if (others.length === 0) {
      group.protocolType = request.protocolType;
      return;
    }
    if (request.protocolType !== group.protocolType) {
      throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${group.id}' has protocol type '${group.protocolType}', not '${request.protocolType}'`);
    }
    const shared = request.protocols.some((protocol) => others.every((member) => member.protocols.some((own) => own.name === protocol.name)));
    if (!shared) throw new RunnelError("INCONSISTENT_GROUP_PROTOCOL", `group '${group.id}': no protocol named by this member is supported by every member`);
  }

  private memberFor(group: ClassicGroup, request: ClassicJoinRequest): ClassicMember {
    if (request.memberId !== "") {
      const known = group.members.get(request.memberId);
      if (known === undefined) throw unknownMember(group.id, request.memberId);
      return known;
    }
    if (group.members.size >= this.table.membersPerGroupMax) {
      throw new RunnelError("LIMIT_EXCEEDED", `group '${group.id}' has its maximum of ${this.table.membersPerGroupMax} members`);
    }
    const member = this.newMember(group, request);
    group.members.set(member.id, member);
    if (member.instanceId !== null) group.instances.set(member.instanceId, member.id);
    return member;
  }

  /** A member record with a fresh id, not yet in the group. */
  private newMember(group: ClassicGroup, request: ClassicJoinRequest): ClassicMember {
    return {
      timed: "classicMember",
      id: this.table.newMemberId(),
      group,
      instanceId: request.instanceId ?? null,
      clientId: request.clientId,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      protocols: request.protocols,
      assignment: EMPTY,
      pendingJoin: null,
      pendingSync: null,
      deadlineMs: 0,
      heapIndex: -1,
    };
  }

  /** Every member must join again; pending syncs of the old generation are refused. */
  private prepareRebalance(group: ClassicGroup): void {
    for (const member of group.members.values()) {
      member.pendingSync?.reject(rebalancing(group));
      member.pendingSync = null;
    }
    group.state = "preparingRebalance";
    let timeoutMs = 0;
    for (const member of group.members.values()) timeoutMs = Math.max(timeoutMs, member.rebalanceTimeoutMs);
    this.table.setDeadline(group.rebalance, this.table.nowMs() + timeoutMs);
  }

  private completeJoinIfAllJoined(group: ClassicGroup): void {
    if (group.state !== "preparingRebalance") return;
    for (const member of group.members.values()) if (member.pendingJoin === null) return;
    this.completeJoin(group);
  }

  /** Ends the join phase: drops who did not join, picks protocol and leader, answers every join. */
  private completeJoin(group: ClassicGroup): void {
    this.table.clearDeadline(group.rebalance);
    for (const member of [...group.members.values()]) if (member.pendingJoin === null) this.drop(member, "it did not join again within the rebalance timeout");
    if (group.members.size === 0) {
      this.table.remove(group.id);
      return;
    }
    group.generation++;
    const protocolName = chooseProtocol([...group.members.values()]);
    group.protocolName = protocolName;
    if (group.leaderId === null || !group.members.has(group.leaderId)) group.leaderId = group.members.keys().next().value ?? null;
    group.state = "completingRebalance";
    const leaderId = group.leaderId as string;
    const everyone = [...group.members.values()].map((member) => ({ memberId: member.id, instanceId: member.instanceId, metadata: metadataFor(member, protocolName) }));
    for (const member of group.members.values()) {
      this.touch(member);
      const pending = member.pendingJoin;
      member.pendingJoin = null;
      pending?.resolve({ generation: group.generation, protocolName, leaderId, memberId: member.id, members: member.id === leaderId ? everyone : [] });
    }
  }

  private remove(member: ClassicMember, why: string): void {
    const group = member.group;
    this.drop(member, why);
    if (group.members.size === 0) {
      this.table.clearDeadline(group.rebalance);
      this.table.remove(group.id);
      return;
    }
    if (group.state !== "preparingRebalance") this.prepareRebalance(group);
    this.completeJoinIfAllJoined(group);
  }

  /** Takes a member out, refusing what it waits for. */
  private drop(member: ClassicMember, why: string): void {
    this.table.clearDeadline(member);
    member.group.members.delete(member.id);
    if (member.instanceId !== null && member.group.instances.get(member.instanceId) === member.id) member.group.instances.delete(member.instanceId);
    const gone = new RunnelError("UNKNOWN_MEMBER", `member '${member.id}' was removed from group '${member.group.id}': ${why}`);
    member.pendingJoin?.reject(gone);
    member.pendingSync?.reject(gone);
    member.pendingJoin = null;
    member.pendingSync = null;
  }

  private touch(member: ClassicMember): void {
    this.table.setDeadline(member, this.table.nowMs() + member.sessionTimeoutMs);
  }
}

/** The protocol every member supports with the most first-preference votes (ties: the earliest member's order). */
function chooseProtocol(members: readonly ClassicMember[]): string {
  const first = members[0] as ClassicMember;
  const candidates = first.protocols.map((protocol) => protocol.name).filter((name) => members.every((member) => member.protocols.some((own) => own.name === name)));
  const votes = new Map<string, number>(candidates.map((name) => [name, 0]));
  for (const member of members) {
    const preferred = member.protocols.find((protocol) => votes.has(protocol.name));
    if (preferred !== undefined) votes.set(preferred.name, (votes.get(preferred.name) ?? 0) + 1);
  }
  let best = candidates[0] ?? "";
  for (const name of candidates) if ((votes.get(name) ?? 0) > (votes.get(best) ?? 0)) best = name;
  return best;
}

function metadataFor(member: ClassicMember, protocolName: string): Uint8Array {
  return member.protocols.find((protocol) => protocol.name === protocolName)?.metadata ?? EMPTY;
}

/** FENCED_INSTANCE_ID when `instanceId` is held by another member id than `memberId` (KIP-345). */
function checkInstance(group: ClassicGroup, memberId: string, instanceId: string): void {
  const holder = group.instances.get(instanceId);
  if (holder !== undefined && holder !== memberId) {
    throw new RunnelError("FENCED_INSTANCE_ID", `instance '${instanceId.slice(0, 64)}' of group '${group.id}' is held by another member id; '${memberId.slice(0, 64)}' is fenced`);
  }
}

function unknownMember(groupId: string, memberId: string): RunnelError {
  return new RunnelError("UNKNOWN_MEMBER", `'${memberId.slice(0, 64)}' is not a member of group '${groupId}': join again`);
}

function rebalancing(group: ClassicGroup): RunnelError {
  return new RunnelError("REBALANCE_IN_PROGRESS", `group '${group.id}' is rebalancing: join again`);
}

function illegalGeneration(group: ClassicGroup, generation: number): RunnelError {
  return new RunnelError("ILLEGAL_GENERATION", `generation ${generation} is not group '${group.id}''s current ${group.generation}: join again`);
}
