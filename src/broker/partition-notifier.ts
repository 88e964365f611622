/**
 * @module broker/partition-notifier
 * Wakes long-polling fetches when data arrives. A fetch that found fewer than `minBytes` parks
 * a sleeper on each partition it asked for; a produce that appends to one of them calls
 * `notify`, which wakes every sleeper parked on that partition. A sleeper also wakes when its
 * time is up. The number of parked sleepers is bounded: past the bound `park` returns false
 * and the fetch answers at once with what it has.
 *
 * Why it is shaped this way: it runs once per fetch and once per produce on the hot path, so it
 * allocates as little as it can (garbage collection pauses bound the broker's tail latency).
 * - Partitions are found through a Map by topic, then a Map by partition number: no key
 *   string is built per call.
 * - Each partition holds an intrusive doubly linked list of links, so a sleeper leaves every
 *   list in O(1) and `notify` walks the list without copying it. A sleeper on one partition is
 *   its own link (one object per park); one on several gets an extra link per other partition.
 *   Repeats in a fetch's partitions are dropped without a Set: a sleeper's links are appended
 *   in one call, so a repeat is always the list's tail.
 * - Deadlines sit in a binary min-heap (broker/deadline-heap.ts, shared with the group coordinator) with one shared timer armed for the earliest. A timer
 *   armed for a later deadline than a new one is re-armed; one armed for an earlier deadline is
 *   left alone (it fires, expires what is due, and re-arms for the next), so the steady state
 *   of fetches with equal `maxWaitMs` woken by data costs no timer call at all.
 *
 * Non-obvious: `wake` runs synchronously inside `notify` / `wakeAll` / the timer, and may
 * park again (even on the partition being notified): `notify` first detaches the whole list,
 * so a sleeper that re-parks joins a fresh list and is not woken twice by the same call.
 */

import { type DeadlineItem, DeadlineHeap } from "./deadline-heap.ts";

/** What a fetch parks: `wake(true)` when data arrived, `wake(false)` when its time is up or on `wakeAll`. Must not throw. */
export interface Sleeper {
  wake(woken: boolean): void;
}

/** A partition a sleeper waits on (a fetch request's partition entries fit as they are). */
export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

/** One waiter's place in one partition's list. */
interface Link {
  readonly waiter: Waiter;
  list: WaiterList | null;
  prev: Link | null;
  next: Link | null;
}

/** A waiter's link in the list of its second or later partition. */
class ExtraLink implements Link {
  list: WaiterList | null = null;
  prev: Link | null = null;
  next: Link | null = null;
  constructor(readonly waiter: Waiter) {}
}

/** A parked sleeper; it is also its own link in its first partition's list. */
class Waiter implements Link, DeadlineItem {
  list: WaiterList | null = null;
  prev: Link | null = null;
  next: Link | null = null;
  /** Position in the deadline heap; -1 once out of it. */
  heapIndex = -1;
  /** Links in the lists of its second and later partitions, or null (the common one-partition fetch). */
  more: ExtraLink[] | null = null;

  /** Set by the heap when the waiter parks. */
  deadlineMs = 0;

  constructor(readonly sleeper: Sleeper) {}

  get waiter(): Waiter {
    return this;
  }
}

interface WaiterList {
  head: Link | null;
  tail: Link | null;
}

/** Monotonic milliseconds: wall-clock steps must not expire or stretch a wait. */
function nowMs(): number {
  return performance.now();
}

export class PartitionNotifier {
  private readonly listsByTopic = new Map<string, Map<number, WaiterList>>();
  /** Parked waiters, a binary min-heap on deadlineMs. */
  private readonly heap = new DeadlineHeap<Waiter>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When the armed timer fires (monotonic ms); meaningful only while `timer` is not null. */
  private timerAtMs = 0;
  private readonly onTimer = (): void => this.expire();

  constructor(private readonly waitersMax: number) {}

  get size(): number {
    return this.heap.size;
  }

  /**
   * Parks `sleeper` on each of `partitions` until one is notified or `timeoutMs` passes.
   * Returns false, without parking, when the waiter bound is reached.
   */
  park(partitions: readonly PartitionRef[], timeoutMs: number, sleeper: Sleeper): boolean {
    if (this.heap.size >= this.waitersMax) return false;
    const waiter = new Waiter(sleeper);
    for (const entry of partitions) this.link(waiter, this.listOf(entry.topic, entry.partition));
    // At least 1 ms, as setTimeout would: a sleeper re-parked from the timer is never due in the same pass.
    this.heap.set(waiter, nowMs() + Math.max(1, timeoutMs));
    this.armFor(waiter.deadlineMs);
    return true;
  }

  notify(topic: string, partition: number): void {
    const list = this.listsByTopic.get(topic)?.get(partition);
    if (list === undefined || list.head === null) return;
    let link: Link | null = list.head;
    list.head = null;
    list.tail = null;
    while (link !== null) {
      const next: Link | null = link.next;
      link.list = null;
      link.prev = null;
      link.next = null;
      this.finish(link.waiter, true);
      link = next;
    }
  }

  /** Wakes every sleeper parked now (shutdown): fetches answer with what they have. */
  wakeAll(): void {
    // A copy (shutdown only), so a sleeper that parks again is not woken again here.
    for (const waiter of this.heap.snapshot()) this.finish(waiter, false);
    if (this.heap.size === 0) this.disarm();
  }

  /** Takes the waiter out of every list and the heap, then wakes its sleeper. */
  private finish(waiter: Waiter, woken: boolean): void {
    if (!this.heap.has(waiter)) return;
    this.heap.remove(waiter);
    unlink(waiter);
    if (waiter.more !== null) for (const link of waiter.more) unlink(link);
    waiter.sleeper.wake(woken);
  }

  private listOf(topic: string, partition: number): WaiterList {
    let lists = this.listsByTopic.get(topic);
    if (lists === undefined) this.listsByTopic.set(topic, (lists = new Map()));
    let list = lists.get(partition);
    if (list === undefined) lists.set(partition, (list = { head: null, tail: null }));
    return list;
  }

  /** Appends the waiter to `list` (as itself the first time, else as an extra link), unless it is there already. */
  private link(waiter: Waiter, list: WaiterList): void {
    if (list.tail !== null && list.tail.waiter === waiter) return;
    let link: Link = waiter;
    if (waiter.list !== null) {
      const extra = new ExtraLink(waiter);
      (waiter.more ??= []).push(extra);
      link = extra;
    }
    link.list = list;
    link.prev = list.tail;
    if (list.tail === null) list.head = link;
    else list.tail.next = link;
    list.tail = link;
  }

  /** Timer callback: wakes every waiter whose deadline has passed, prunes empty lists, re-arms. */
  private expire(): void {
    this.timer = null;
    const now = nowMs();
    for (let first = this.heap.peek(); first !== undefined && first.deadlineMs <= now; first = this.heap.peek()) this.finish(first, false);
    this.pruneEmptyLists();
    const next = this.heap.peek();
    if (next !== undefined) this.armFor(next.deadlineMs);
  }

  /** Lists are kept while empty so the next park on a partition allocates nothing; forgotten here, at most once a timer period. */
  private pruneEmptyLists(): void {
    for (const [topic, lists] of this.listsByTopic) {
      for (const [partition, list] of lists) if (list.head === null) lists.delete(partition);
      if (lists.size === 0) this.listsByTopic.delete(topic);
    }
  }

  /** Makes sure the timer fires no later than `deadlineMs`. */
  private armFor(deadlineMs: number): void {
    if (this.timer !== null && this.timerAtMs <= deadlineMs) return;
    this.disarm();
    const delayMs = Math.max(1, Math.ceil(deadlineMs - nowMs()));
    this.timerAtMs = nowMs() + delayMs;
    this.timer = setTimeout(this.onTimer, delayMs);
    // Parked fetches are held by their connections; the timer alone must not keep a process up.
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Takes a link out of its list, if it is in one. */
function unlink(link: Link): void {
  const list = link.list;
  if (list === null) return;
  if (link.prev === null) list.head = link.next;
  else link.prev.next = link.next;
  if (link.next === null) list.tail = link.prev;
  else link.next.prev = link.prev;
  link.list = null;
  link.prev = null;
  link.next = null;
}
