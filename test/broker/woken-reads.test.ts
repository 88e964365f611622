/**
 * Woken reads (broker/woken-reads.ts): a fetch woken by data reads again after the synchronous
 * work that woke it — every frame of the read event — not inside it, and in the order woken.
 */
import { describe, expect, test } from "bun:test";
import { readAfterFrames, type WokenRead } from "../../src/broker/woken-reads.ts";

describe("woken reads", () => {
  test("fetches woken during a read event read again once it is over, in the order they were woken", async () => {
    const log: string[] = [];
    const reader = (name: string): WokenRead => ({ readAgain: () => void log.push(`read ${name}`) });
    const first = reader("first");
    const second = reader("second");
    // One read event: three frames dispatched synchronously, the first two waking fetches.
    log.push("frame 1");
    readAfterFrames(first);
    log.push("frame 2");
    readAfterFrames(second);
    log.push("frame 3");
    expect(log).toEqual(["frame 1", "frame 2", "frame 3"]);
    await Promise.resolve();
    expect(log).toEqual(["frame 1", "frame 2", "frame 3", "read first", "read second"]);
  });

  test("a fetch woken while the woken ones are read is read in the same pass, and the next event starts afresh", async () => {
    const log: string[] = [];
    const late: WokenRead = { readAgain: () => void log.push("late") };
    const early: WokenRead = {
      readAgain: () => {
        log.push("early");
        readAfterFrames(late);
      },
    };
    readAfterFrames(early);
    await Promise.resolve();
    expect(log).toEqual(["early", "late"]);
    readAfterFrames(late);
    await Promise.resolve();
    expect(log).toEqual(["early", "late", "late"]);
  });
});
