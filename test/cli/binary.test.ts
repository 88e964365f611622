/**
 * The single executable: `bun build --compile --bytecode --format=esm src/main.ts
 * src/server/workers/connection-worker.ts` (the network workers' entry embedded beside the main one; as `npm run
 * build` does: bytecode halves start-up, docs/architecture.md "Round two"), then the
 * CI smoke test with nothing but the binary: serve on a free port with a temp data dir, create
 * a topic, produce 10,000 lines, consume them back, compare, stop with SIGTERM, exit 0. The
 * binary runs from an empty directory with a PATH that has no bun and no node_modules.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import packageJson from "../../package.json" with { type: "json" };
import { ROOT, startRealBroker, tempDir } from "../client/real-broker.ts";

let workDir: string;
let binary: string;
const BARE_ENV = { PATH: "/usr/bin:/bin", HOME: "/nonexistent" };

beforeAll(async () => {
  workDir = tempDir("runnel-binary-");
  binary = path.join(workDir, "runnel");
  const build = Bun.spawn([process.execPath, "build", "--compile", "--bytecode", "--format=esm", path.join(ROOT, "src/main.ts"), path.join(ROOT, "src/server/workers/connection-worker.ts"), "--outfile", binary], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(build.stderr).text(), build.exited]);
  if (code !== 0) throw new Error(`bun build --compile failed (${code}):\n${stderr}`);
}, 60_000);

afterAll(() => {
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function run(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([binary, ...args], { cwd: workDir, env: BARE_ENV, stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

test("the compiled binary serves, produces 10,000 lines, consumes them back and stops cleanly", async () => {
  expect((await run(["--version"])).stdout).toBe(`${packageJson.version}\n`);
  const dataDir = path.join(workDir, "data");
  const broker = await startRealBroker({ command: [binary], dataDir });
  try {
    const created = await run(["topics", "create", "smoke", "--broker", broker.address]);
    expect(created).toMatchObject({ code: 0, stdout: "created topic smoke with 1 partition\n" });
    const lines = Array.from({ length: 10_000 }, (_, index) => `message ${index}`);
    const produced = await run(["produce", "--topic", "smoke", "--broker", broker.address], `${lines.join("\n")}\n`);
    expect(produced).toMatchObject({ code: 0, stderr: "" });
    const consumed = await run(["consume", "--topic", "smoke", "--count", "10000", "--broker", broker.address]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe(`${lines.join("\n")}\n`);
  } finally {
    expect(await broker.stop()).toBe(0);
  }
}, 30_000);

test("the compiled binary serves with network workers (their entry is embedded)", async () => {
  const broker = await startRealBroker({ command: [binary], dataDir: path.join(workDir, "workers-data"), extraArgs: ["--network-workers", "2"] });
  try {
    const created = await run(["topics", "create", "spread", "--broker", broker.address]);
    expect(created).toMatchObject({ code: 0, stdout: "created topic spread with 1 partition\n" });
    const produced = await run(["produce", "--topic", "spread", "--broker", broker.address], "one\ntwo\n");
    expect(produced).toMatchObject({ code: 0, stderr: "" });
    const consumed = await run(["consume", "--topic", "spread", "--count", "2", "--broker", broker.address]);
    expect(consumed).toMatchObject({ code: 0, stdout: "one\ntwo\n" });
  } finally {
    expect(await broker.stop()).toBe(0);
  }
}, 30_000);

test("the compiled binary pretty-prints its log in-process (pino transports would fail in it)", async () => {
  const child = Bun.spawn([binary, "serve", "--port", "0", "--data-dir", path.join(workDir, "pretty-data"), "--log-format", "pretty"], { cwd: workDir, env: BARE_ENV, stdout: "pipe", stderr: "pipe" });
  let text = "";
  try {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes("runnel listening")) break;
    }
  } finally {
    child.kill("SIGTERM");
  }
  expect(await child.exited).toBe(0);
  expect(text).toMatch(/^\S+ INFO  log recovered {2}dataDir=/m);
  expect(text).toMatch(/^\S+ INFO  runnel listening on 127\.0\.0\.1:\d+ {2}address=/m);
  expect(await new Response(child.stderr).text()).toBe("");
}, 30_000);
