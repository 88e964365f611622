/**
 * MemoryBudget (server/memory-budget.ts): the broker-wide bound on partial frames and queued
 * answers, its headroom for small frames, its waiters and the collections it asks for.
 */
import { describe, expect, test } from "bun:test";
import { bufferedBytesBudget, ConfigError, loadConfig } from "../../src/config.ts";
import { MemoryBudget, SMALL_FRAME_BYTES } from "../../src/server/memory-budget.ts";

const MiB = 1024 * 1024;

describe("MemoryBudget", () => {
  test("refuses a large frame past the budget, while small frames may use 1/8 more", () => {
    const budget = new MemoryBudget(8 * MiB, () => {});
    expect(budget.tryReserve(8 * MiB, 8 * MiB)).toBe(true);
    expect(budget.isExhausted).toBe(true);
    expect(budget.tryReserve(256 * 1024, 2 * MiB)).toBe(false);
    expect(budget.tryReserve(SMALL_FRAME_BYTES, SMALL_FRAME_BYTES)).toBe(true);
    expect(budget.tryReserve(MiB, SMALL_FRAME_BYTES)).toBe(false);
    budget.release(8 * MiB + SMALL_FRAME_BYTES);
    expect(budget.usedBytes).toBe(0);
    expect(budget.peakBytes).toBe(8 * MiB + SMALL_FRAME_BYTES);
  });

  test("answer charges go past the budget; reuse buffers are allowed only under half use", () => {
    const budget = new MemoryBudget(8 * MiB, () => {});
    expect(budget.mayKeep()).toBe(true);
    budget.charge(10 * MiB);
    expect(budget.usedBytes).toBe(10 * MiB);
    expect(budget.mayKeep()).toBe(false);
    budget.release(10 * MiB);
    expect(budget.mayKeep()).toBe(true);
  });

  test("a waiter is woken, later and once, only by a release that leaves room for what it asked", async () => {
    const budget = new MemoryBudget(8 * MiB, () => {});
    expect(budget.tryReserve(8 * MiB, 8 * MiB)).toBe(true);
    const woken: string[] = [];
    budget.wait(() => woken.push("big"), 4 * MiB, 4 * MiB);
    budget.wait(() => woken.push("small"), MiB, 2 * MiB);
    expect(budget.waiting).toBe(2);
    await Bun.sleep(0);
    expect(woken).toEqual([]); // registering never wakes: the caller was just refused
    budget.release(MiB);
    expect(woken).toEqual([]); // never from inside release()
    await Bun.sleep(0);
    expect(woken).toEqual(["small"]); // room for 1 MiB, not for 4 MiB
    budget.release(4 * MiB);
    await Bun.sleep(0);
    expect(woken).toEqual(["small", "big"]);
    expect(budget.waiting).toBe(0);
  });

  test("a cancelled waiter is never woken", async () => {
    const budget = new MemoryBudget(MiB, () => {});
    budget.tryReserve(MiB, MiB);
    let woken = false;
    const waiter = () => void (woken = true);
    budget.wait(waiter, MiB, MiB);
    budget.cancelWait(waiter);
    budget.release(MiB);
    await Bun.sleep(0);
    expect(woken).toBe(false);
  });

  test("releasing 64 MiB or more asks for one collection soon, however many releases made it up", async () => {
    let collections = 0;
    const budget = new MemoryBudget(256 * MiB, () => void collections++);
    budget.tryReserve(200 * MiB, 200 * MiB);
    for (let index = 0; index < 100; index++) budget.release(MiB);
    expect(collections).toBe(0);
    await Bun.sleep(200);
    expect(collections).toBe(1);
    expect(budget.collections).toBe(1);
    budget.close();
  });

  test("ordinary traffic far under the budget only requests collections; pressure makes the next one forced", async () => {
    const forcedFlags: boolean[] = [];
    const budget = new MemoryBudget(256 * MiB, (forced) => void forcedFlags.push(forced));
    for (let index = 0; index < 100; index++) {
      budget.charge(MiB); // an answer queued, then written
      budget.release(MiB);
    }
    await Bun.sleep(100);
    expect(forcedFlags).toEqual([false]);
    budget.tryReserve(200 * MiB, 200 * MiB);
    budget.release(200 * MiB);
    await Bun.sleep(100);
    expect(forcedFlags).toEqual([false, true]);
    budget.close();
  });

  test("64 MiB received bring one forced collection once no byte arrives for a second; less brings none", async () => {
    const forcedFlags: boolean[] = [];
    const budget = new MemoryBudget(256 * MiB, (forced) => void forcedFlags.push(forced));
    budget.noteReceived(64 * MiB - 1);
    await Bun.sleep(1_500);
    expect(forcedFlags).toEqual([]);
    budget.noteReceived(1);
    const deadline = Date.now() + 10_000;
    while (forcedFlags.length === 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(forcedFlags).toEqual([true]);
    await Bun.sleep(1_500);
    expect(forcedFlags).toEqual([true]);
    budget.close();
  });

  test("bytes received while the budget is at least half used ask for a collection; under half they do not", async () => {
    let collections = 0;
    const budget = new MemoryBudget(256 * MiB, () => void collections++);
    budget.noteReceived(128 * MiB);
    await Bun.sleep(100);
    expect(collections).toBe(0);
    budget.tryReserve(128 * MiB, 128 * MiB);
    budget.noteReceived(64 * MiB);
    await Bun.sleep(100);
    expect(collections).toBe(1);
    budget.close();
  });
});

describe("bufferedBytesMax", () => {
  const GiB = 1024 * MiB;
  test("0 (the default) is 1/16 of the machine's memory, bounded to 64 MiB..1 GiB and at least two largest frames", () => {
    const defaults = loadConfig();
    expect(defaults.bufferedBytesMax).toBe(0);
    expect(bufferedBytesBudget(defaults, 24 * GiB)).toBe(GiB);
    expect(bufferedBytesBudget(defaults, 4 * GiB)).toBe(256 * MiB);
    expect(bufferedBytesBudget(defaults, 512 * MiB)).toBe(64 * MiB);
    expect(bufferedBytesBudget({ bufferedBytesMax: 0, frameBytesMax: 256 * MiB }, 4 * GiB)).toBe(512 * MiB);
  });

  test("a value given is used as is; one below frameBytesMax is refused naming both", () => {
    expect(bufferedBytesBudget(loadConfig({ flags: { bufferedBytesMax: String(32 * MiB) } }), 24 * GiB)).toBe(32 * MiB);
    expect(() => loadConfig({ flags: { bufferedBytesMax: String(MiB) } })).toThrow(ConfigError);
    expect(() => loadConfig({ flags: { bufferedBytesMax: String(MiB) } })).toThrow(/bufferedBytesMax=1048576 .*at least frameBytesMax \(16777216\)/);
  });
});
