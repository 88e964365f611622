/**
 * bench/groups.ts at a smoke size, so the consumer-group benchmark never rots: it starts a
 * broker, rebalances small groups after a leave, and measures heartbeat CPU, printing each figure.
 */
import { expect, test } from "bun:test";
import * as path from "node:path";

test("the consumer-group benchmark runs at a smoke size and prints its figures and baselines", async () => {
  const root = path.resolve(import.meta.dir, "../..");
  const child = Bun.spawn([process.execPath, "bench/groups.ts", "--smoke"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
  expect(stdout).toMatch(/leave -> all 6 partitions owned again, 3 members/);
  expect(stdout).toMatch(/leave -> all 10 partitions owned again, 5 members/);
  expect(stdout).toMatch(/baseline, no member: broker CPU [\d.]+% of one core/);
  expect(stdout).toMatch(/baseline, 20 connections each sending one describeGroup every 3000 ms: broker CPU [\d.]+% of one core/);
  expect(stdout).toMatch(/20 members heartbeating every 3000 ms: broker CPU [\d.]+% of one core/);
}, 60_000);
