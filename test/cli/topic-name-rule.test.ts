/**
 * @module test/cli/topic-name-rule
 * The CLI states the topic name rule as docs/protocol.md does (1-249 characters), whatever the
 * name's fault: empty, too long or a bad character — one line, the code, exit 1.
 */
import { describe, expect, test } from "bun:test";
import path from "node:path";
import { ROOT } from "../client/real-broker.ts";
import { startTestBroker } from "../server/helpers.ts";

async function runCli(args: string[]): Promise<{ code: number; stderr: string }> {
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), ...args], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return { code, stderr };
}

describe("runnel topics: the topic name rule", () => {
  test("a name that is empty, 250 or 256 characters long, or has a bad character is refused saying 1-249 characters", async () => {
    await using broker = await startTestBroker();
    for (const name of ["", "x".repeat(250), "x".repeat(256), "bad/name"]) {
      for (const command of ["create", "describe"]) {
        const run = await runCli(["topics", command, name, "--broker", `127.0.0.1:${broker.port}`]);
        expect({ name, command, code: run.code }).toEqual({ name, command, code: 1 });
        expect(run.stderr).toContain("1-249 characters");
        expect(run.stderr).toContain("INVALID_TOPIC_NAME");
        expect(run.stderr).not.toContain("255");
        expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
      }
    }
  });
});
