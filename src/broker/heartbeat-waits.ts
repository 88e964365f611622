/**
 * @module broker/heartbeat-waits
 * Heartbeats parked until their member has news (heartbeat `waitMs`): a member with nothing to
 * do sends one heartbeat per interval and the broker holds it, answering at once when the
 * coordinator says the member has a partition to take or to give up (`news`), else when the
 * wait is up. So a rebalance reaches members within a round trip, while idle members cost one
 * request per interval. At most one parked heartbeat per member (a newer one wakes the older);
 * their deadlines share one heap and one timer, like sessions and long-polling fetches.
 */
import { DeadlineHeap, type DeadlineItem } from "./deadline-heap.ts";
import { DeadlineTimer } from "./deadline-timer.ts";

interface Wait extends DeadlineItem {
  readonly key: string;
  readonly resolve: () => void;
}

export class HeartbeatWaits {
  private readonly waits = new Map<string, Wait>();
  private readonly heap = new DeadlineHeap<Wait>();
  private readonly timer: DeadlineTimer;

  constructor(private readonly nowMs: () => number) {
    this.timer = new DeadlineTimer(() => this.expire(), nowMs);
  }

  get size(): number {
    return this.waits.size;
  }

  /** Resolves on news for the member, or after `waitMs`. */
  park(groupId: string, memberId: string, waitMs: number): Promise<void> {
    const key = keyOf(groupId, memberId);
    this.finish(this.waits.get(key));
    return new Promise<void>((resolve) => {
      const wait: Wait = { key, resolve, deadlineMs: 0, heapIndex: -1 };
      const deadlineMs = this.nowMs() + waitMs;
      this.waits.set(key, wait);
      this.heap.set(wait, deadlineMs);
      this.timer.armFor(deadlineMs);
    });
  }

  news(groupId: string, memberId: string): void {
    this.finish(this.waits.get(keyOf(groupId, memberId)));
  }

  /** Shutdown: every parked heartbeat answers now. */
  wakeAll(): void {
    for (const wait of [...this.waits.values()]) this.finish(wait);
    this.timer.disarm();
  }

  private expire(): number | null {
    const now = this.nowMs();
    for (let first = this.heap.peek(); first !== undefined && first.deadlineMs <= now; first = this.heap.peek()) this.finish(first);
    return this.heap.peek()?.deadlineMs ?? null;
  }

  private finish(wait: Wait | undefined): void {
    if (wait === undefined) return;
    this.heap.remove(wait);
    if (this.waits.get(wait.key) === wait) this.waits.delete(wait.key);
    wait.resolve();
  }
}

function keyOf(groupId: string, memberId: string): string {
  return `${groupId}\u0000${memberId}`;
}
