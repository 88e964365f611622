/**
 * @module client/group-consumer
 * A consumer that shares its topics' partitions with the other members of its group:
 * `new Consumer({ broker, groupId }).subscribe("orders")` hands every call to one of these (or
 * `new GroupConsumer(...)` directly), then `for await` as with Consumer. The broker assigns the partitions (client/group-member.ts runs the membership);
 * this class serves them through an inner Consumer over exactly the partitions held, from the
 * group's committed offsets.
 *
 * Assignment changes are applied inside next(), never while the caller works on a message
 * (as Kafka runs rebalance callbacks inside poll()): a partition is given up only after the
 * messages handed out so far are committed (with autoCommit, the default) and `onRevoked` has
 * run; then the member tells the broker, which only then hands it to another member. A change
 * that arrives while next() waits for data interrupts the wait (the inner consumer is closed,
 * which commits what was processed). Every commit carries the member's id and generation, so
 * the broker refuses one from a member that no longer owns the partition (COMMIT_FENCED).
 * Partitions `lost` (session expired) are dropped without a commit. close() commits and leaves
 * the group at once.
 *
 * Non-obvious: each change builds a new inner consumer (new connections, positions from the
 * committed offsets). Rebalances are rare; keeping one consumer and adding or removing its
 * partitions in place is the optimisation to make next.
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import { Consumer, type ConsumerOptions, type Message } from "./consumer.ts";
import { GroupMember, type MembershipListener, type TopicPartition } from "./group-member.ts";

export type { TopicPartition };

/** The group options (assignor, session and rebalance timeouts, onAssigned/onRevoked/onLost) are ConsumerOptions'. */
export interface GroupConsumerOptions extends ConsumerOptions {
  groupId: string;
}

const DONE: IteratorResult<Message> = { done: true, value: undefined };

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

function fromKey(text: string): TopicPartition {
  const cut = text.lastIndexOf("\u0000");
  return { topic: text.slice(0, cut), partition: Number(text.slice(cut + 1)) };
}

export class GroupConsumer implements AsyncIterable<Message> {
  private readonly topics: string[] = [];
  private member: GroupMember | null = null;
  private inner: Consumer | null = null;
  /** Set while next() waits inside the inner consumer: a change must interrupt it. */
  private waitingInInner = false;
  private innerClosing: Promise<void> | null = null;
  /** What the inner consumer serves. */
  private owned = new Set<string>();
  private readonly pendingAssigned = new Set<string>();
  private readonly pendingRevoked = new Set<string>();
  private readonly pendingLost = new Set<string>();
  /** Partitions lost and then granted again since the last applyChanges (see note); also in pendingAssigned. */
  private readonly pendingRegained = new Set<string>();
  private failure: RunnelError | null = null;
  private changed: (() => void) | null = null;
  private closing = false;
  private closed: Promise<void> | null = null;

  constructor(private readonly options: GroupConsumerOptions) {
    if (options.groupId === undefined || options.groupId.length === 0) throw new RunnelError("INVALID_CONFIG", "a GroupConsumer needs a groupId");
  }

  /** Adds a topic to the subscription (before iteration starts). */
  subscribe(topic: string): this {
    if (this.member !== null) throw new RunnelError("INVALID_CONFIG", "subscribe() must come before iteration starts");
    this.topics.push(topic);
    return this;
  }

  /** True once iteration has started (the member has joined or is joining). */
  get started(): boolean {
    return this.member !== null;
  }

  /** Next offset to be fetched per partition this member consumes now. */
  positions(): Array<{ topic: string; partition: number; offset: number }> {
    return this.inner?.positions() ?? [];
  }

  /** The partitions this member consumes now. */
  assignment(): TopicPartition[] {
    return [...this.owned].map(fromKey);
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return { next: () => this.next(), return: async () => DONE };
  }

  /** The next message of a partition this member owns; waits for an assignment or data; `done` once closed. */
  next(): Promise<IteratorResult<Message>> {
    // A done result means the inner consumer was closed under the wait (a change, or close()): read again.
    return this.readOwned((inner) => inner.next(), DONE, (result) => result.done === true);
  }

  /**
   * Every message already fetched from the partitions this member owns, as one array (see
   * Consumer.nextBatch); waits for an assignment or data; empty once closed.
   */
  nextBatch(): Promise<Message[]> {
    return this.readOwned((inner) => inner.nextBatch(), [], (batch) => batch.length === 0);
  }

  /**
   * The one read loop of next() and nextBatch(): applies assignment changes, waits while nothing
   * is owned, reads from the inner consumer, and reads again when it got nothing (`isEmpty`) or
   * the session ran out meanwhile (the timer not yet run: what was read is not ours to hand out).
   */
  private async readOwned<T>(read: (inner: Consumer) => Promise<T>, whenClosed: T, isEmpty: (value: T) => boolean): Promise<T> {
    this.member ??= this.startMember();
    for (;;) {
      if (this.closing) return whenClosed;
      if (this.failure !== null) throw this.failure;
      if (this.hasChanges()) await this.applyChanges();
      const inner = this.inner;
      if (inner === null) {
        await this.waitForChange();
        continue;
      }
      this.waitingInInner = true;
      let value: T;
      try {
        value = await read(inner);
      } finally {
        this.waitingInInner = false;
      }
      if (this.member?.checkSession() === true) continue;
      if (!isEmpty(value)) return value;
    }
  }

  /** Commits what was handed out so far, or exactly the given offsets (see Consumer.commit). */
  async commit(offsets?: ReadonlyArray<{ topic: string; partition: number; offset: number }>): Promise<void> {
    await this.inner?.commit(offsets);
  }

  /** Commits, leaves the group (its partitions move at once), closes the connections. */
  close(): Promise<void> {
    this.closed ??= this.shutDown();
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    this.closing = true;
    this.changed?.();
    // Not retireInner(true): the caller may be closing from inside its work on the message at
    // hand, which must not count as processed; the inner close commits what came before it.
    await this.retireInner(false);
    const given = [...this.owned].map(fromKey);
    this.owned = new Set();
    if (given.length > 0) await this.options.onRevoked?.(given);
    await this.member?.close();
  }

  private startMember(): GroupMember {
    if (this.topics.length === 0) throw new RunnelError("INVALID_CONFIG", "nothing to consume: call subscribe(topic) first");
    const listener: MembershipListener = {
      assigned: (partitions) => this.note(this.pendingAssigned, partitions),
      revoke: (partitions) => this.note(this.pendingRevoked, partitions),
      lost: (partitions) => this.note(this.pendingLost, partitions),
      failed: (error) => {
        this.failure = error;
        this.interrupt();
      },
    };
    const { groupId, assignor, sessionTimeoutMs, rebalanceTimeoutMs } = this.options;
    const member = new GroupMember(
      {
        ...this.options,
        groupId,
        topics: this.topics,
        ...(assignor === undefined ? {} : { assignor }),
        ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
        ...(rebalanceTimeoutMs === undefined ? {} : { rebalanceTimeoutMs }),
      },
      listener,
    );
    member.start();
    return member;
  }

  /**
   * Queues news for next(). The sets lose the order of events, which matters for one pair: a
   * partition lost and then granted again before next() applied either (a member that joined
   * again, e.g. at a new coordinator, while next() was busy) must end up owned, so the grant
   * moves it from `pendingLost` to `pendingRegained`: applyChanges then reports it lost and
   * assigned, in that order, and commits nothing at hand. A loss after a grant wins, as the
   * filter in applyChanges makes it.
   */
  private note(into: Set<string>, partitions: readonly TopicPartition[]): void {
    for (const { topic, partition } of partitions) {
      const text = key(topic, partition);
      if (into === this.pendingAssigned && this.pendingLost.delete(text)) this.pendingRegained.add(text);
      if (into === this.pendingLost) {
        this.pendingAssigned.delete(text);
        this.pendingRegained.delete(text);
      }
      into.add(text);
    }
    this.interrupt();
  }

  /** Wakes next(): out of its wait for a change, or out of the inner consumer's long poll. */
  private interrupt(): void {
    this.changed?.();
    if (this.waitingInInner) this.innerClosing ??= this.closeInner();
  }

  private hasChanges(): boolean {
    return this.pendingAssigned.size > 0 || this.pendingRevoked.size > 0 || this.pendingLost.size > 0;
  }

  private waitForChange(): Promise<void> {
    if (this.hasChanges() || this.closing || this.failure !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.changed = resolve;
    }).then(() => {
      this.changed = null;
    });
  }

  /** Applies what the member heard, in order: commit and give up, then take on. */
  private async applyChanges(): Promise<void> {
    const assigned = new Set(this.pendingAssigned);
    const revoked = new Set(this.pendingRevoked);
    const lost = new Set(this.pendingLost);
    const regained = new Set(this.pendingRegained);
    this.pendingAssigned.clear();
    this.pendingRevoked.clear();
    this.pendingLost.clear();
    this.pendingRegained.clear();
    await this.retireInner(lost.size === 0 && regained.size === 0);
    const revokedOwned = [...revoked].filter((text) => this.owned.has(text));
    // A partition regained was lost first: the owner hears both, in that order.
    const lostOwned = [...lost, ...regained].filter((text) => this.owned.has(text));
    const next = new Set([...this.owned, ...assigned].filter((text) => !revoked.has(text) && !lost.has(text)));
    const taken = [...next].filter((text) => !this.owned.has(text) || regained.has(text));
    this.owned = next;
    if (lostOwned.length > 0) await this.options.onLost?.(lostOwned.map(fromKey));
    if (revokedOwned.length > 0) await this.options.onRevoked?.(revokedOwned.map(fromKey));
    if (revoked.size > 0) this.member?.released([...revoked].map(fromKey));
    if (next.size > 0) this.inner = this.newInner(next);
    if (taken.length > 0) await this.options.onAssigned?.(taken.map(fromKey));
  }

  private newInner(partitions: Set<string>): Consumer {
    const member = this.member;
    const inner = new Consumer({ ...this.options, commitFence: () => member?.fence() ?? { memberId: "", generation: 0 } });
    return inner.assign([...partitions].map(fromKey));
  }

  /**
   * Ends the inner consumer. `commitAtHand`: next() is running, so the message handed out last
   * is processed too — commit it with the rest before closing (the close alone commits only what
   * came before it).
   */
  private async retireInner(commitAtHand: boolean): Promise<void> {
    const inner = this.inner;
    if (inner === null) return;
    if (this.innerClosing === null && commitAtHand && this.options.autoCommit !== false) {
      await inner.commit().catch(() => undefined); // fenced or failed: the new owner re-reads from the last commit
    }
    await (this.innerClosing ??= this.closeInner());
    this.innerClosing = null;
    this.inner = null;
  }

  private async closeInner(): Promise<void> {
    await this.inner?.close().catch((error: unknown) => void toRunnelError(error));
  }
}
