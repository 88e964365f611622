/**
 * @module broker/deadline-heap
 * A binary min-heap of items on their `deadlineMs`, each item knowing its own place
 * (`heapIndex`), so one can leave or move in O(log n) — a heartbeat pushes its member's
 * deadline later without a search. The group coordinator keeps every member's session deadline
 * in one; one timer armed for the earliest (broker/deadline-timer.ts) serves them all, as the
 * long-poll notifier (broker/partition-notifier.ts) keeps its parked fetches' deadlines in one too.
 */

/** An entry of the heap. `heapIndex` is the heap's business: -1 while out of it. */
export interface DeadlineItem {
  deadlineMs: number;
  heapIndex: number;
}

export class DeadlineHeap<Item extends DeadlineItem> {
  private readonly items: Item[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The item due first, or undefined when empty. */
  peek(): Item | undefined {
    return this.items[0];
  }

  /** A copy of the items, in no particular order (for a pass that may change the heap as it goes). */
  snapshot(): Item[] {
    return this.items.slice();
  }

  has(item: Item): boolean {
    return item.heapIndex >= 0 && this.items[item.heapIndex] === item;
  }

  /** Puts `item` in at `deadlineMs`, or moves it there if it is in already. */
  set(item: Item, deadlineMs: number): void {
    if (!this.has(item)) {
      item.deadlineMs = deadlineMs;
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.siftUp(item.heapIndex);
      return;
    }
    const earlier = deadlineMs < item.deadlineMs;
    item.deadlineMs = deadlineMs;
    if (earlier) this.siftUp(item.heapIndex);
    else this.siftDown(item.heapIndex);
  }

  /** Takes `item` out; nothing when it is not in. */
  remove(item: Item): void {
    if (!this.has(item)) return;
    const index = item.heapIndex;
    const last = this.items.pop();
    item.heapIndex = -1;
    if (last === undefined || last === item) return;
    this.items[index] = last;
    last.heapIndex = index;
    this.siftDown(index);
    this.siftUp(last.heapIndex);
  }

  private siftUp(start: number): void {
    const items = this.items;
    let index = start;
    const moving = items[index];
    if (moving === undefined) return;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = items[parentIndex];
      if (parent === undefined || parent.deadlineMs <= moving.deadlineMs) break;
      items[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    items[index] = moving;
    moving.heapIndex = index;
  }

  private siftDown(start: number): void {
    const items = this.items;
    let index = start;
    const moving = items[index];
    if (moving === undefined) return;
    for (;;) {
      let childIndex = 2 * index + 1;
      let child = items[childIndex];
      if (child === undefined) break;
      const right = items[childIndex + 1];
      if (right !== undefined && right.deadlineMs < child.deadlineMs) {
        childIndex++;
        child = right;
      }
      if (child.deadlineMs >= moving.deadlineMs) break;
      items[index] = child;
      child.heapIndex = index;
      index = childIndex;
    }
    items[index] = moving;
    moving.heapIndex = index;
  }
}
