import { expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const fixture = path.join(import.meta.dir, "fixtures/many-partitions.ts");

test("3,000 partitions work under the common default open-files limit (soft 1024), with at most openSegmentsMax segment fds open", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-fds-"));
  try {
    // A fresh login shell's soft limit; Bun raises it to the hard limit at start. The log holds
    // what its bounded cache holds (64 here), active segments included (issue 16).
    const child = Bun.spawnSync(["bash", "-c", `ulimit -Sn 1024 && exec "$0" "$@"`, process.execPath, fixture, dataDir, "30", "100"], { stderr: "pipe" });
    expect(child.stderr.toString()).toBe("");
    expect(child.exitCode).toBe(0);
    const facts = JSON.parse(child.stdout.toString()) as { softLimit: number; fdsWhileOpen: number; fdsAfterReopen: number; partitions: number; allHaveOne: boolean };
    expect(facts.partitions).toBe(3000);
    expect(facts.allHaveOne).toBe(true);
    expect(facts.fdsWhileOpen).toBeLessThan(64 + 40);
    expect(facts.fdsAfterReopen).toBeLessThan(64 + 40);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  // ~25 s on an idle 2-core box, past 60 s when the box is loaded: the bound is generous.
}, 180_000);
