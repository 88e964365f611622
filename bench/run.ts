/**
 * @module bench/run
 * `npm run bench`: runs every mitata micro-benchmark file (bench/*.bench.ts) one after another,
 * each in its own process so one file's heap and JIT state never colour the next.
 * `npm run bench -- format` runs only the files whose name contains "format".
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const benchDir = import.meta.dir;
const filter = process.argv[2] ?? "";
const files = readdirSync(benchDir)
  .filter((name) => name.endsWith(".bench.ts") && name.includes(filter))
  .sort();

let failures = 0;
for (const file of files) {
  process.stdout.write(`\n=== ${file}\n`);
  const child = Bun.spawnSync([process.execPath, join(benchDir, file)], { stdout: "inherit", stderr: "inherit" });
  if (child.exitCode !== 0) {
    failures++;
    process.stderr.write(`bench: ${file} exited with ${child.exitCode}\n`);
  }
}
process.exitCode = failures === 0 ? 0 : 1;
