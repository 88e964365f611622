/**
 * @module cli/bench
 * `runnel bench produce|consume|e2e|ceiling`: load generator and reporter (work in progress).
 */
const USAGE = "usage: runnel bench produce|consume|e2e|ceiling [options]\n";

export async function run(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write(USAGE);
  return 2;
}
