import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { commitTemp, writeTempDurably } from "../../src/log/durable-file.ts";
import { nativeStorage } from "../../src/log/storage.ts";
import { tempDirsPerTest } from "./helpers.ts";

const newDir = tempDirsPerTest();

describe("checkpoint files written in the background", () => {
  test("two overlapping writes of one file each commit their own bytes (no shared temp file)", async () => {
    const directory = newDir("durable");
    const path = `${directory}/recovery-point`;
    // A partition's background flush and its roll checkpoint can write the same file at once.
    const [first, second] = await Promise.all([
      writeTempDurably(nativeStorage, path, "flush", "first"),
      writeTempDurably(nativeStorage, path, "flush", "second"),
    ]);
    expect(first).not.toBe(second);
    expect(fs.readFileSync(first, "utf8")).toBe("first");
    expect(fs.readFileSync(second, "utf8")).toBe("second");
    commitTemp(nativeStorage, first, path, true);
    commitTemp(nativeStorage, second, path, true);
    expect(fs.readFileSync(path, "utf8")).toBe("second");
    expect(fs.readdirSync(directory)).toEqual(["recovery-point"]);
  });

  test("a write that lost to a newer one removes its temp file", async () => {
    const directory = newDir("durable");
    const path = `${directory}/producer-state`;
    const temporary = await writeTempDurably(nativeStorage, path, "flush", "stale");
    commitTemp(nativeStorage, temporary, path, false);
    expect(fs.readdirSync(directory)).toEqual([]);
  });
});
