/**
 * @module client/group-member
 * A consumer group member's side of the protocol (docs/protocol.md, "Consumer groups"): join,
 * then heartbeat — one at a time, on its own connection so no fetch long-poll delays it — with
 * every partition it holds and the epoch of the last answer it processed. Each answer's news
 * goes to a listener: partitions newly `assigned`; partitions to `revoke` (the owner commits,
 * stops, then calls `released`, which sends the next heartbeat at once); partitions `lost`
 * (no chance to commit: the broker no longer knows the member, or no answer came within the
 * session timeout — by then the broker may have handed them on, so the member stops first; an
 * answer that arrives only after that is not taken either, as its grants may be stale). A
 * member the broker forgot joins again as a new one. While it has nothing to give up, each
 * heartbeat asks the broker to hold it (`waitMs`) until there is news or the interval is up,
 * and the next goes out as soon as the answer is in: idle members cost one request per
 * interval, and a rebalance reaches them within a round trip.
 * In a cluster every request goes to the group's coordinator (client/coordinator-link.ts), found
 * again when it moves; the new coordinator does not know the member (UNKNOWN_MEMBER), so the
 * member lets its partitions go and joins again there.
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { CoordinatorLink } from "./coordinator-link.ts";
import { isRetriable, readArray, readInt, readMap, readString, type WireMap } from "./wire.ts";

export interface TopicPartition {
  topic: string;
  partition: number;
}

export type AssignorName = "sticky" | "range" | "roundRobin";

export interface GroupMemberOptions extends ConnectionOptions {
  groupId: string;
  topics: readonly string[];
  /** The broker's assignor for the group (default: the group's, "sticky" for a new group). */
  assignor?: AssignorName;
  /** Default: the broker's (10 s). */
  sessionTimeoutMs?: number;
  /** How long giving a partition up may take before the broker removes the member. Default: the broker's (60 s). */
  rebalanceTimeoutMs?: number;
  retryBackoffMs?: number;
}

export interface MembershipListener {
  /** Newly granted: start consuming them. */
  assigned(partitions: TopicPartition[]): void;
  /** To give up: commit, stop, then call `released(partitions)`. */
  revoke(partitions: TopicPartition[]): void;
  /** Gone without a chance to commit: stop at once. */
  lost(partitions: TopicPartition[]): void;
  /** A refusal that retrying cannot cure (LIMIT_EXCEEDED, INCONSISTENT_GROUP_PROTOCOL...): the member stopped. */
  failed(error: RunnelError): void;
}

/** Heartbeats never follow each other closer than this, whatever the broker answers. */
const HEARTBEAT_GAP_MIN_MS = 20;

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

function fromKey(text: string): TopicPartition {
  const cut = text.lastIndexOf("\u0000");
  return { topic: text.slice(0, cut), partition: Number(text.slice(cut + 1)) };
}

/** Keys as the wire's [{topic, partitions}]. */
function toWire(keys: Iterable<string>): Array<{ topic: string; partitions: number[] }> {
  const byTopic = new Map<string, number[]>();
  for (const text of keys) {
    const { topic, partition } = fromKey(text);
    let partitions = byTopic.get(topic);
    if (partitions === undefined) byTopic.set(topic, (partitions = []));
    partitions.push(partition);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

function readKeys(value: unknown, op: string, field: string): Set<string> {
  const keys = new Set<string>();
  for (const [index, item] of readArray(value, op, field).entries()) {
    const entry = readMap(item, op, `${field}[${index}]`);
    const topic = readString(entry.topic, op, `${field}[${index}].topic`);
    for (const [at, partition] of readArray(entry.partitions, op, `${field}[${index}].partitions`).entries()) {
      keys.add(key(topic, readInt(partition, op, `${field}[${index}].partitions[${at}]`)));
    }
  }
  return keys;
}

export class GroupMember {
  private readonly connection: Connection;
  /** The group's requests go to its coordinator (client/coordinator-link.ts), found through `connection`. */
  private readonly coordinator: CoordinatorLink;
  private memberId: string | undefined;
  private memberEpoch = 0;
  private generationSeen = 0;
  private sessionTimeoutMs: number;
  /** Everything it may hold (reported in each heartbeat), revocations in progress included. */
  private readonly held = new Set<string>();
  private readonly revoking = new Set<string>();
  private loop: Promise<void> | null = null;
  private closing = false;
  private wake: (() => void) | null = null;
  /** Set when the next heartbeat must go at once (a release, close) and no pause was waiting. */
  private wakeRequested = false;
  private sessionTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the session runs out unless an answer comes (the send time of the last one answered + the session timeout). */
  private sessionEndMs = Number.POSITIVE_INFINITY;
  /** The broker's heartbeat interval, from the latest answer: how long it may hold a heartbeat. */
  private intervalMs = 0;

  constructor(
    private readonly options: GroupMemberOptions,
    private readonly listener: MembershipListener,
  ) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    // A member that cannot reach its broker for a session has lost its partitions anyway: trying
    // to connect for longer would only hold up close().
    this.connection = new Connection({ ...options, connectTimeoutMs: Math.min(options.connectTimeoutMs ?? 10_000, this.sessionTimeoutMs) });
    this.coordinator = new CoordinatorLink(this.connection, options, options.groupId);
  }

  /** The id and generation to stamp on commits. */
  fence(): { memberId: string; generation: number } {
    return { memberId: this.memberId ?? "", generation: this.generationSeen };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Lets everything go now if the session has run out, without waiting for its timer (which a
   * starved process runs late, after the I/O that woke it): the owner calls this before handing
   * a message out. True if it did (the listener heard `lost`).
   */
  checkSession(): boolean {
    if (Date.now() < this.sessionEndMs || this.held.size === 0) return false;
    this.loseAll();
    return true;
  }

  /** The owner gave these up (committed and stopped): the next heartbeat says so, at once. */
  released(partitions: readonly TopicPartition[]): void {
    for (const { topic, partition } of partitions) {
      this.held.delete(key(topic, partition));
      this.revoking.delete(key(topic, partition));
    }
    this.wakeRequested = true;
    this.wake?.();
  }

  /**
   * Stops heartbeating and leaves the group (its partitions move at once). Commit before. The
   * leave goes out at once, beside a heartbeat the broker may be holding (the leave answers it);
   * with the broker unreachable, both give up within the session timeout.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.sessionTimer);
    this.held.clear();
    this.revoking.clear();
    this.wake?.();
    if (this.memberId !== undefined) {
      const leave = { group: this.options.groupId, memberId: this.memberId };
      await this.coordinator.request("leaveGroup", leave, this.sessionTimeoutMs).catch(() => undefined);
    }
    await this.loop;
    await this.coordinator.close();
    await this.connection.close();
  }

  private async run(): Promise<void> {
    let backoffMs = this.options.retryBackoffMs ?? 100;
    while (!this.closing) {
      const sentMs = Date.now();
      let answer: WireMap;
      try {
        answer = this.memberId === undefined ? await this.join() : await this.heartbeat();
      } catch (error) {
        const failure = toRunnelError(error);
        if (this.closing) return;
        if (failure.code === "UNKNOWN_MEMBER") {
          this.loseAll();
          this.memberId = undefined;
          continue;
        }
        if (!isRetriable(failure)) {
          this.loseAll();
          this.listener.failed(failure);
          return;
        }
        await this.pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 1_000);
        continue;
      }
      backoffMs = this.options.retryBackoffMs ?? 100;
      if (Date.now() - sentMs >= this.sessionTimeoutMs) {
        this.takeLateAnswer(answer);
        continue;
      }
      this.armSession(sentMs);
      this.intervalMs = this.apply(answer);
      // Giving partitions up: heartbeat on the interval (released() sends one at once). Otherwise the
      // broker held the heartbeat until news or the interval's end: send the next straight away.
      if (this.revoking.size > 0) await this.pause(this.intervalMs);
      else await this.pause(Math.max(0, HEARTBEAT_GAP_MIN_MS - (Date.now() - sentMs)));
    }
  }

  private join(): Promise<WireMap> {
    const { groupId, topics, assignor, sessionTimeoutMs, rebalanceTimeoutMs, clientId } = this.options;
    return this.coordinator.request(
      "joinGroup",
      {
        group: groupId,
        topics: [...topics],
        ...(clientId === undefined ? {} : { clientId }),
        ...(assignor === undefined ? {} : { assignor }),
        ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
        ...(rebalanceTimeoutMs === undefined ? {} : { rebalanceTimeoutMs }),
      },
      this.sessionTimeoutMs,
    );
  }

  private heartbeat(): Promise<WireMap> {
    const waitMs = this.revoking.size > 0 ? 0 : this.intervalMs;
    const fields = { group: this.options.groupId, memberId: this.memberId, memberEpoch: this.memberEpoch, owned: toWire(this.held), waitMs };
    return this.coordinator.request("heartbeat", fields, this.sessionTimeoutMs);
  }

  /** Takes an answer in; returns when to heartbeat next. */
  private apply(answer: WireMap): number {
    const op = "heartbeat";
    this.memberId = readString(answer.memberId, op, "memberId");
    this.memberEpoch = readInt(answer.memberEpoch, op, "memberEpoch");
    this.generationSeen = readInt(answer.generation, op, "generation");
    this.sessionTimeoutMs = readInt(answer.sessionTimeoutMs, op, "sessionTimeoutMs");
    const assigned = readKeys(answer.assigned, op, "assigned");
    const revoke = readKeys(answer.revoke, op, "revoke");
    const granted = [...assigned].filter((text) => !this.held.has(text));
    const toRevoke = [...revoke].filter((text) => this.held.has(text) && !this.revoking.has(text));
    // Held but neither assigned nor being revoked: the broker no longer counts it as ours.
    const gone = [...this.held].filter((text) => !assigned.has(text) && !revoke.has(text) && !this.revoking.has(text));
    for (const text of granted) this.held.add(text);
    for (const text of toRevoke) this.revoking.add(text);
    for (const text of gone) this.held.delete(text);
    if (gone.length > 0) this.listener.lost(gone.map(fromKey));
    if (toRevoke.length > 0) this.listener.revoke(toRevoke.map(fromKey));
    if (granted.length > 0) this.listener.assigned(granted.map(fromKey));
    return readInt(answer.heartbeatIntervalMs, op, "heartbeatIntervalMs");
  }

  /**
   * An answer that came back a session timeout or more after its request went out (a starved
   * process, a slow network): the broker may have removed the member meanwhile and handed its
   * partitions on, this answer's grants among them, so taking them would make two owners. Let
   * everything go and ask again at once, keeping only the member id: the epoch stays at the last
   * answer processed, so the broker counts no grant of this answer as taken and lists those
   * that are still ours again in the next answer (or, if it removed the member, says so).
   */
  private takeLateAnswer(answer: WireMap): void {
    const memberId = readString(answer.memberId, "heartbeat", "memberId");
    // A join's answer: epoch 0 is the one a new member may always send.
    if (memberId !== this.memberId) this.memberEpoch = 0;
    this.memberId = memberId;
    this.loseAll();
  }

  /** With no answer to a heartbeat sent since `sentMs` within the session, the broker may have moved everything: let go first. */
  private armSession(sentMs: number): void {
    clearTimeout(this.sessionTimer);
    this.sessionEndMs = sentMs + this.sessionTimeoutMs;
    this.sessionTimer = setTimeout(() => this.loseAll(), Math.max(1, sentMs + this.sessionTimeoutMs - Date.now()));
    this.sessionTimer.unref();
  }

  private loseAll(): void {
    clearTimeout(this.sessionTimer);
    if (this.held.size === 0) return;
    const lost = [...this.held].map(fromKey);
    this.held.clear();
    this.revoking.clear();
    this.listener.lost(lost);
  }

  private pause(ms: number): Promise<void> {
    if (this.closing || this.wakeRequested) {
      this.wakeRequested = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.wake = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    }).then(() => {
      this.wake = null;
      this.wakeRequested = false;
    });
  }
}
