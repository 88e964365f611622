/**
 * The defaults-vs-tuned benchmark (bench/defaults-ratio.ts) at a smoke size, so it never rots:
 * one round of each setup, each in its own process with its own broker. Only the report's shape
 * is checked (every figure a positive number, a ratio per round); the figures depend on the machine.
 */
import { expect, test } from "bun:test";
import path from "node:path";

test("bench/defaults-ratio.ts runs defaults and tuned and reports MB/s, CPU-seconds per GB, peak RSS and their ratio", async () => {
  const child = Bun.spawn([process.execPath, path.resolve(import.meta.dir, "../../bench/defaults-ratio.ts"), "--rounds", "1", "--messages", "5000"], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ exitCode, failed: stderr.includes("exited with") }).toEqual({ exitCode: 0, failed: false });
  for (const setup of ["defaults", "tuned"]) {
    const row = new RegExp(`^\\| \\S+ \\| ${setup} \\| (.+) \\|$`, "m").exec(stdout);
    const figures = row?.[1]!.split(" | ").map((cell) => Number(cell.split(" ")[0])) ?? [];
    expect(figures.length).toBe(5);
    expect(figures.every((figure) => figure > 0)).toBe(true);
  }
  expect(stdout).toMatch(/ratio defaults \/ tuned per round, \S+: \d+\.\d\d; median/);
}, 60_000);
