/**
 * The deadline heap against a plain array model: random inserts, moves (earlier and later) and
 * removals, checking after each step that the item due first is the model's earliest and that
 * every item knows its own place; and the held-heartbeat table woken by news, by its deadline,
 * and replaced by a newer heartbeat of the same member.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DeadlineHeap, type DeadlineItem } from "../../src/broker/deadline-heap.ts";
import { HeartbeatWaits } from "../../src/broker/heartbeat-waits.ts";

interface Item extends DeadlineItem {
  readonly name: number;
}

const stepArb = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), item: fc.nat(19), deadlineMs: fc.integer({ min: 0, max: 1_000 }) }),
  fc.record({ kind: fc.constant("remove" as const), item: fc.nat(19) }),
);

describe("DeadlineHeap", () => {
  test("the item due first is always the model's earliest, through random sets, moves and removals", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 200 }), (steps) => {
        const heap = new DeadlineHeap<Item>();
        const items: Item[] = Array.from({ length: 20 }, (_, name) => ({ name, deadlineMs: 0, heapIndex: -1 }));
        const model = new Map<number, number>();
        for (const step of steps) {
          const item = items[step.item] as Item;
          if (step.kind === "set") {
            heap.set(item, step.deadlineMs);
            model.set(item.name, step.deadlineMs);
          } else {
            heap.remove(item);
            model.delete(item.name);
          }
          expect(heap.size).toBe(model.size);
          const earliest = Math.min(...model.values());
          expect(heap.peek()?.deadlineMs ?? Number.POSITIVE_INFINITY).toBe(earliest);
          for (const each of items) expect(heap.has(each)).toBe(model.has(each.name));
        }
      }),
      { seed: 4_242, numRuns: 200 },
    );
  });
});

describe("HeartbeatWaits", () => {
  test("a held heartbeat is answered on news for its member, at its deadline, or when a newer one of the same member arrives", async () => {
    const waits = new HeartbeatWaits(() => performance.now());
    const woken: string[] = [];
    void waits.park("g", "a", 60_000).then(() => woken.push("a"));
    void waits.park("g", "b", 60_000).then(() => woken.push("b"));
    void waits.park("g", "c", 1).then(() => woken.push("c"));
    waits.news("g", "a");
    waits.news("other-group", "b");
    for (let waitedMs = 0; !woken.includes("c") && waitedMs < 5_000; waitedMs += 5) await Bun.sleep(5);
    expect(woken.sort()).toEqual(["a", "c"]);
    void waits.park("g", "b", 60_000).then(() => woken.push("b again"));
    await Bun.sleep(0);
    expect(woken).toContain("b"); // the older heartbeat of b answers when the newer arrives
    expect(waits.size).toBe(1);
    waits.wakeAll();
    await Bun.sleep(0);
    expect(woken).toContain("b again");
    expect(waits.size).toBe(0);
  });
});
