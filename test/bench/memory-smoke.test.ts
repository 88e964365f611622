/**
 * The memory benchmark (bench/memory.ts) at a smoke size, so it never rots: it starts a broker,
 * produces and consumes 10 MB, and prints every memory item for each phase. Only the shape of the
 * report is checked; the figures themselves depend on the machine.
 */
import { expect, test } from "bun:test";
import path from "node:path";

test("bench/memory.ts produces and consumes through a broker and reports each memory item per phase", async () => {
  const child = Bun.spawn([process.execPath, path.resolve(import.meta.dir, "../../bench/memory.ts"), "0.01"], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ exitCode, stderr: exitCode === 0 ? "" : stderr }).toEqual({ exitCode: 0, stderr: "" });
  expect(stdout).toContain("0.01 GB produced (100,000 x 100 B");
  expect(stdout).toMatch(/idle\s+produce peak\s+consume peak\s+end/);
  for (const item of ["RSS", "anonymous", "file-backed", "JS heap in use", "ArrayBuffer bytes", "segment indexes in memory (KB)", "index files on disk (KB)"]) {
    expect(stdout).toContain(item);
  }
  const rss = /^RSS\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$/m.exec(stdout);
  expect(rss?.slice(1).map(Number).every((megabytes) => megabytes > 0)).toBe(true);
}, 60_000);
