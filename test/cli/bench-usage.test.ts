/**
 * `runnel bench` with a workload it does not know: one line naming the workloads a user may run
 * and only flags that exist, exit code 2.
 */
import { expect, test } from "bun:test";
import path from "node:path";
import { ROOT } from "../client/real-broker.ts";

test("bench with an unknown workload names the real workloads, no internal ones and no made-up flag", () => {
  const run = Bun.spawnSync([process.execPath, path.join(ROOT, "src/main.ts"), "bench", "nope"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const stderr = run.stderr.toString();
  expect(run.exitCode).toBe(2);
  expect(run.stdout.toString()).toBe("");
  expect(stderr.trim().split("\n")).toHaveLength(1);
  expect(stderr).toContain("unknown workload 'nope'");
  for (const workload of ["produce", "consume", "e2e", "ceiling"]) expect(stderr).toContain(workload);
  expect(stderr).not.toContain("sendfile-server");
  expect(stderr).not.toContain("e2e-consumer");
  const help = Bun.spawnSync([process.execPath, path.join(ROOT, "src/main.ts"), "bench", "--help"], { cwd: ROOT }).stdout.toString();
  for (const flag of stderr.match(/--[a-z-]+/g) ?? []) expect(help).toContain(`${flag} `);
});
