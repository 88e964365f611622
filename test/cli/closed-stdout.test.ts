/**
 * Every command meets a reader that closed stdout early (`runnel topics describe T | head -1`)
 * quietly: exit code 0, nothing on stderr, no stack trace. The child's stdout is the write end of
 * a FIFO whose only reader was closed before the child started, so its first write fails with
 * EPIPE every time (no race with a `head` that may or may not have exited yet).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type RealBroker, ROOT, startRealBroker } from "../client/real-broker.ts";

let broker: RealBroker;
const fifoDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-epipe-"));

beforeAll(async () => {
  broker = await startRealBroker();
});

afterAll(async () => {
  expect(await broker.stop()).toBe(0);
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
  fs.rmSync(fifoDir, { recursive: true, force: true });
});

/** A write-only fd of a pipe nobody reads any more. */
function closedPipe(name: string): number {
  const fifo = path.join(fifoDir, name);
  Bun.spawnSync(["mkfifo", fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writer = fs.openSync(fifo, fs.constants.O_WRONLY);
  fs.closeSync(reader);
  return writer;
}

async function runWithClosedStdout(args: string[]): Promise<{ code: number; stderr: string }> {
  const stdout = closedPipe(`fifo-${args.join("-").replace(/[^a-z0-9-]/gi, "")}`);
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), ...args], { cwd: ROOT, stdin: "ignore", stdout, stderr: "pipe" });
  fs.closeSync(stdout);
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return { code, stderr };
}

describe("a closed stdout", () => {
  test("ends topics describe, topics list and every help text with exit 0 and nothing on stderr", async () => {
    const created = Bun.spawnSync([process.execPath, path.join(ROOT, "src/main.ts"), "topics", "create", "epipe", "--broker", broker.address], { cwd: ROOT });
    expect(created.exitCode).toBe(0);
    const commands = [
      ["topics", "describe", "epipe", "--broker", broker.address],
      ["topics", "list", "--broker", broker.address],
      ["topics", "describe", "epipe", "--format", "json", "--broker", broker.address],
      ["--help"],
      ["--version"],
      ["serve", "--help"],
      ["bench", "--help"],
      ["produce", "--help"],
    ];
    for (const args of commands) {
      expect({ args, ...(await runWithClosedStdout(args)) }).toEqual({ args, code: 0, stderr: "" });
    }
  }, 30_000);
});
