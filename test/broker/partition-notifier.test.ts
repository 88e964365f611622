/**
 * @module test/broker/partition-notifier
 * The long-poll notifier on its own: who is woken by a notify, by its deadline and by
 * wakeAll; that a sleeper is woken exactly once; the waiter bound; and a seeded model test of
 * park/notify against a plain list of who waits on what.
 */
import { describe, expect, test } from "bun:test";
import { PartitionNotifier, type PartitionRef, type Sleeper } from "../../src/broker/partition-notifier.ts";
import { until } from "../support/wait.ts";

/** A sleeper that records its wake-ups (and when, on the monotonic clock). */
class Recorder implements Sleeper {
  readonly wakes: boolean[] = [];
  wokenAtMs = -1;
  constructor(
    readonly name: string,
    private readonly log: string[] = [],
  ) {}
  wake(woken: boolean): void {
    this.wakes.push(woken);
    this.wokenAtMs = performance.now();
    this.log.push(this.name);
  }
}

const at = (topic: string, partition: number): PartitionRef => ({ topic, partition });
const LONG_MS = 60_000;


describe("PartitionNotifier: notify", () => {
  test("notify wakes, in park order, exactly the sleepers on that partition, with true", () => {
    const notifier = new PartitionNotifier(100);
    const log: string[] = [];
    const first = new Recorder("first", log);
    const other = new Recorder("other", log);
    const second = new Recorder("second", log);
    const otherTopic = new Recorder("otherTopic", log);
    expect(notifier.park([at("t", 0)], LONG_MS, first)).toBe(true);
    notifier.park([at("t", 1)], LONG_MS, other);
    notifier.park([at("t", 0)], LONG_MS, second);
    notifier.park([at("u", 0)], LONG_MS, otherTopic);
    expect(notifier.size).toBe(4);
    notifier.notify("t", 0);
    expect(log).toEqual(["first", "second"]);
    expect(first.wakes).toEqual([true]);
    expect(second.wakes).toEqual([true]);
    expect(notifier.size).toBe(2);
    notifier.notify("t", 0);
    notifier.notify("nobody", 7);
    expect(log).toEqual(["first", "second"]);
    notifier.wakeAll();
  });

  test("a sleeper on several partitions (with repeats) is woken once, by the first notified, and leaves the others", () => {
    const notifier = new PartitionNotifier(100);
    const many = new Recorder("many");
    const bystander = new Recorder("bystander");
    notifier.park([at("t", 0), at("t", 1), at("t", 1), at("u", 3), at("t", 0)], LONG_MS, many);
    notifier.park([at("t", 1)], LONG_MS, bystander);
    notifier.notify("u", 3);
    expect(many.wakes).toEqual([true]);
    expect(notifier.size).toBe(1);
    notifier.notify("t", 0);
    expect(many.wakes).toEqual([true]);
    notifier.notify("t", 1);
    expect(many.wakes).toEqual([true]);
    expect(bystander.wakes).toEqual([true]);
    expect(notifier.size).toBe(0);
  });

  test("a sleeper that parks again from its wake-up, on the same partition, is not woken twice by that notify", () => {
    const notifier = new PartitionNotifier(100);
    let wakes = 0;
    const again: Sleeper = {
      wake: () => {
        wakes++;
        notifier.park([at("t", 0)], LONG_MS, again);
      },
    };
    notifier.park([at("t", 0)], LONG_MS, again);
    notifier.notify("t", 0);
    expect(wakes).toBe(1);
    expect(notifier.size).toBe(1);
    notifier.notify("t", 0);
    expect(wakes).toBe(2);
    expect(notifier.size).toBe(1);
    notifier.wakeAll();
    expect(wakes).toBe(3);
    // It parked once more from wakeAll, which wakes only those parked when it was called.
    expect(notifier.size).toBe(1);
  });

  test("past the waiter bound park refuses without parking, and accepts again once a sleeper is woken", () => {
    const notifier = new PartitionNotifier(2);
    const sleepers = [new Recorder("a"), new Recorder("b"), new Recorder("c")];
    expect(notifier.park([at("t", 0)], LONG_MS, sleepers[0] as Recorder)).toBe(true);
    expect(notifier.park([at("t", 1)], LONG_MS, sleepers[1] as Recorder)).toBe(true);
    expect(notifier.park([at("t", 2)], LONG_MS, sleepers[2] as Recorder)).toBe(false);
    notifier.notify("t", 2);
    expect(sleepers[2]?.wakes).toEqual([]);
    notifier.notify("t", 0);
    expect(notifier.park([at("t", 2)], LONG_MS, sleepers[2] as Recorder)).toBe(true);
    notifier.wakeAll();
    expect(sleepers.map((sleeper) => sleeper.wakes)).toEqual([[true], [false], [false]]);
    expect(new PartitionNotifier(0).park([at("t", 0)], LONG_MS, new Recorder("none"))).toBe(false);
  });
});

describe("PartitionNotifier: deadlines", () => {
  test("many sleepers with different deadlines are each woken with false at (never before) their own deadline, in deadline order", async () => {
    const notifier = new PartitionNotifier(100);
    const log: string[] = [];
    // Parked out of deadline order, so the shared timer must be re-armed for earlier ones.
    const timeoutsMs = [60, 15, 90, 5, 45, 30, 75, 5, 120, 1];
    const parkedAtMs = performance.now();
    const sleepers = timeoutsMs.map((timeoutMs, index) => {
      const sleeper = new Recorder(`${index}`, log);
      notifier.park([at("t", index % 3)], timeoutMs, sleeper);
      return sleeper;
    });
    await until(() => notifier.size === 0);
    const byDeadline = timeoutsMs.map((timeoutMs, index) => ({ timeoutMs, index })).sort((a, b) => a.timeoutMs - b.timeoutMs || a.index - b.index);
    expect(log).toEqual(byDeadline.map((entry) => `${entry.index}`));
    sleepers.forEach((sleeper, index) => {
      expect(sleeper.wakes).toEqual([false]);
      expect(sleeper.wokenAtMs - parkedAtMs).toBeGreaterThanOrEqual(timeoutsMs[index] as number);
    });
  });

  test("a sleeper parked after one with a far deadline is still woken at its own, nearer deadline", async () => {
    const notifier = new PartitionNotifier(100);
    const far = new Recorder("far");
    const near = new Recorder("near");
    notifier.park([at("t", 0)], LONG_MS, far);
    notifier.park([at("t", 0)], 20, near);
    // Waits far less than the far deadline: the shared timer must have been brought forward.
    await until(() => near.wakes.length > 0, 10_000);
    expect(near.wakes).toEqual([false]);
    expect(far.wakes).toEqual([]);
    expect(notifier.size).toBe(1);
    notifier.wakeAll();
    expect(far.wakes).toEqual([false]);
  });

  test("a sleeper woken by data before its deadline is not woken again when the deadline passes", async () => {
    const notifier = new PartitionNotifier(100);
    const early = new Recorder("early");
    const marker = new Recorder("marker");
    notifier.park([at("t", 0)], 10, early);
    notifier.park([at("t", 1)], 30, marker);
    notifier.notify("t", 0);
    expect(early.wakes).toEqual([true]);
    await until(() => marker.wakes.length > 0);
    expect(early.wakes).toEqual([true]);
    expect(marker.wakes).toEqual([false]);
  });

  test("wakeAll wakes every sleeper with false and leaves nothing for the timer to wake", async () => {
    const notifier = new PartitionNotifier(100);
    const sleepers = [5, 10, 20].map((timeoutMs) => {
      const sleeper = new Recorder(`${timeoutMs}`);
      notifier.park([at("t", 0), at("t", timeoutMs)], timeoutMs, sleeper);
      return sleeper;
    });
    notifier.wakeAll();
    expect(notifier.size).toBe(0);
    // A later sleeper still gets its own deadline: the timer outlives wakeAll only as needed.
    const later = new Recorder("later");
    notifier.park([at("t", 0)], 25, later);
    await until(() => later.wakes.length > 0);
    expect(sleepers.map((sleeper) => sleeper.wakes)).toEqual([[false], [false], [false]]);
    expect(later.wakes).toEqual([false]);
  });
});

describe("PartitionNotifier: model", () => {
  test("seeded random parks and notifies wake exactly whom a plain list of waits says, once each", () => {
    let seed = 0x5eed;
    const random = (): number => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    const notifier = new PartitionNotifier(12);
    const model: Array<{ sleeper: Recorder; keys: Set<string> }> = [];
    const all: Recorder[] = [];
    const refused = new Set<Recorder>();
    for (let step = 0; step < 5_000; step++) {
      if (random() < 0.7) {
        const partitions = Array.from({ length: 1 + Math.floor(random() * 4) }, () => at(`t${Math.floor(random() * 3)}`, Math.floor(random() * 3)));
        const sleeper = new Recorder(`${step}`);
        const parked = notifier.park(partitions, LONG_MS, sleeper);
        expect(parked).toBe(model.length < 12);
        if (!parked) refused.add(sleeper);
        if (parked) model.push({ sleeper, keys: new Set(partitions.map((entry) => `${entry.topic}/${entry.partition}`)) });
        all.push(sleeper);
      } else {
        const topic = `t${Math.floor(random() * 3)}`;
        const partition = Math.floor(random() * 3);
        const due = model.filter((entry) => entry.keys.has(`${topic}/${partition}`)).map((entry) => entry.sleeper);
        const before = all.map((sleeper) => sleeper.wakes.length);
        notifier.notify(topic, partition);
        const woken = all.filter((sleeper, index) => sleeper.wakes.length !== before[index]);
        expect(woken.map((sleeper) => sleeper.name)).toEqual(due.map((sleeper) => sleeper.name));
        for (let index = model.length - 1; index >= 0; index--) if (due.includes((model[index] as { sleeper: Recorder }).sleeper)) model.splice(index, 1);
      }
      expect(notifier.size).toBe(model.length);
    }
    notifier.wakeAll();
    expect(refused.size).toBeGreaterThan(0);
    for (const sleeper of all) expect(sleeper.wakes.length).toBe(refused.has(sleeper) ? 0 : 1);
  });
});
