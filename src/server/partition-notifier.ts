/**
 * @module server/partition-notifier
 * Wakes long-polling fetches when data arrives. A fetch that found fewer than `minBytes` parks
 * a waiter on each partition it asked for; a produce that appends to one of them calls
 * `notify`, which resolves every waiter on that partition. A waiter also resolves when its
 * time is up. The number of parked waiters is bounded: past the bound `wait` returns null and
 * the fetch answers at once with what it has.
 */

type Waiter = { keys: string[]; timer: ReturnType<typeof setTimeout>; resolve: (woken: boolean) => void };

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class PartitionNotifier {
  private readonly waitersByKey = new Map<string, Set<Waiter>>();
  private waiting = 0;

  constructor(private readonly waitersMax: number) {}

  get size(): number {
    return this.waiting;
  }

  /**
   * Resolves true when one of `keys` is notified, false when `timeoutMs` passes (or on
   * `wakeAll`). Returns null, without waiting, when the waiter bound is reached.
   */
  wait(keys: readonly string[], timeoutMs: number): Promise<boolean> | null {
    if (this.waiting >= this.waitersMax) return null;
    return new Promise((resolve) => {
      const waiter: Waiter = { keys: [...new Set(keys)], resolve, timer: setTimeout(() => this.finish(waiter, false), timeoutMs) };
      for (const key of waiter.keys) {
        let set = this.waitersByKey.get(key);
        if (set === undefined) this.waitersByKey.set(key, (set = new Set()));
        set.add(waiter);
      }
      this.waiting++;
    });
  }

  notify(topic: string, partition: number): void {
    const set = this.waitersByKey.get(partitionKey(topic, partition));
    if (set === undefined) return;
    for (const waiter of [...set]) this.finish(waiter, true);
  }

  /** Resolves every waiter (shutdown): fetches answer with what they have. */
  wakeAll(): void {
    for (const set of [...this.waitersByKey.values()]) for (const waiter of [...set]) this.finish(waiter, false);
  }

  private finish(waiter: Waiter, woken: boolean): void {
    clearTimeout(waiter.timer);
    let removed = false;
    for (const key of waiter.keys) {
      const set = this.waitersByKey.get(key);
      if (set?.delete(waiter)) removed = true;
      if (set?.size === 0) this.waitersByKey.delete(key);
    }
    if (!removed) return;
    this.waiting--;
    waiter.resolve(woken);
  }
}
