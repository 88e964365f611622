/**
 * `runnel bench` end to end, at a tiny size: real broker child (--embedded), real files.
 * Asserts what the run reports and writes, never how fast it was.
 */
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "../client/real-broker.ts";

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-bench-cli-"));
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "bench", ...args], { cwd: workDir, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

interface JsonResult {
  workload: string;
  messages: number;
  bytes: number;
  messagesPerSecond: number;
  latencyMs: { count: number; p50: number; p99: number; p99_99: number; max: number } | null;
  ceiling: { name: string; ratio: number; megabytesPerSecond: number } | null;
  latencyFloorMs?: { count: number; p50: number; max: number } | null;
  broker: { cpuSeconds: number; peakRssBytes: number } | null;
  timeline: Array<{ seconds: number; messagesPerSecond: number }>;
  failures: number;
  latencySplit: Array<{ name: string; count: number; upperBounds: boolean }>;
}

test("bench e2e --embedded at a fixed rate reports every message's latency, the same-run floor, and writes JSON and HTML", async () => {
  const json = path.join(workDir, "e2e.json");
  const html = path.join(workDir, "e2e.html");
  const run = await bench(["e2e", "--embedded", "--messages", "3000", "--rate", "3000", "--size", "64", "--partitions", "2", "--warmup", "0", "--json", json, "--html", html]);
  expect(run.stderr).toBe(""); // not a terminal: no progress line
  expect(run.code).toBe(0);
  expect(run.stdout).toContain("latency p99.99 ms");
  expect(run.stdout).toContain("ratio to ceiling");
  const result = (await Bun.file(json).json()) as JsonResult;
  expect(result).toMatchObject({ workload: "e2e", messages: 3000, bytes: 3000 * 64, failures: 0 });
  expect(result.latencyMs?.count).toBe(3000);
  expect(result.latencyMs!.p50).toBeLessThanOrEqual(result.latencyMs!.p99);
  expect(result.latencyMs!.p99).toBeLessThanOrEqual(result.latencyMs!.max);
  expect(result.ceiling!.megabytesPerSecond).toBeGreaterThan(0);
  // The same-run latency floor: the same pace through a bare relay, every message seen once.
  expect(run.stdout).toContain("floor p50 / p99 / p99.99 ms");
  expect(result.latencyFloorMs!.count).toBe(3000);
  expect(result.latencyFloorMs!.p50).toBeLessThanOrEqual(result.latencyFloorMs!.max);
  expect(result.broker!.peakRssBytes).toBeGreaterThan(0);
  expect(result.timeline.length).toBeGreaterThan(0);
  // The split: every message's producer and consumer stages, and the broker's own rows.
  expect(run.stdout).toContain("stage (ms)");
  const stages = new Map(result.latencySplit.map((row) => [row.name, row]));
  for (const name of ["to fetch answer", "consumer", "total"]) expect(stages.get(name)?.count).toBe(3000);
  // The producer's stages sample 1 message in 16.
  for (const name of ["client queue", "produce ack"]) expect(stages.get(name)?.count).toBe(Math.ceil(3000 / 16));
  expect(stages.get("broker produce")?.upperBounds).toBe(true);
  const page = fs.readFileSync(html, "utf8");
  expect(page).toStartWith("<!doctype html>");
  expect(page.match(/<svg /g)?.length).toBe(2);
  expect(page).not.toMatch(/<script|src=|href=/);
}, 20_000);

test("bench e2e leaves the warm-up's messages out of the figures and reports them on their own", async () => {
  const json = path.join(workDir, "e2e-warmup.json");
  const run = await bench(["e2e", "--embedded", "--messages", "1500", "--rate", "1500", "--size", "64", "--warmup", "1", "--no-ceiling", "--no-floor", "--json", json]);
  expect(run.code).toBe(0);
  const result = (await Bun.file(json).json()) as JsonResult & { notes: string[] };
  // N measured messages after the warm-up's ~1 s at 1,500/s, which come on top.
  expect(result).toMatchObject({ workload: "e2e", messages: 1500, bytes: 1500 * 64, failures: 0 });
  expect(result.latencyMs?.count).toBe(1500);
  const stages = new Map(result.latencySplit.map((row) => [row.name, row]));
  expect(stages.get("to fetch answer")?.count).toBe(1500);
  const note = result.notes.find((line) => line.startsWith("warm-up: the first 1 s"));
  expect(note).toBeDefined();
  const warmupMessages = Number(/\(([\d,]+) messages/.exec(note!)![1]!.replaceAll(",", ""));
  expect(warmupMessages).toBeGreaterThan(500);
  expect(warmupMessages).toBeLessThanOrEqual(1600);
}, 20_000);

test("bench produce then consume: consume reads back what produce wrote, decoded and raw", async () => {
  const produce = await bench(["produce", "--embedded", "--messages", "20000", "--size", "100", "--no-ceiling", "--json", path.join(workDir, "p.json")]);
  expect(produce.code).toBe(0);
  const produced = (await Bun.file(path.join(workDir, "p.json")).json()) as JsonResult;
  expect(produced).toMatchObject({ workload: "produce", messages: 20000, bytes: 2_000_000, failures: 0, ceiling: null });
  for (const raw of [false, true]) {
    const file = path.join(workDir, `c-${raw}.json`);
    const consume = await bench(["consume", "--embedded", "--messages", "20000", "--partitions", "2", "--consumers", "2", "--no-ceiling", "--json", file, ...(raw ? ["--raw"] : [])]);
    expect(consume.code).toBe(0);
    const consumed = (await Bun.file(file).json()) as JsonResult & { notes: string[] };
    expect(consumed.messages).toBe(20000);
    expect(consumed.notes.some((note) => note.startsWith("preloaded 20,000 messages"))).toBe(true);
  }
}, 20_000);

test("bench ceiling prints loopback and pwrite figures with the copy/sendfile ratio", async () => {
  const run = await bench(["ceiling", "--size", String(8 << 20), "--json", path.join(workDir, "ceiling.json")]);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain("loopback TCP, sendfile (MB/s)");
  expect(run.stdout).toContain("copy / sendfile ratio");
  const { ceiling } = (await Bun.file(path.join(workDir, "ceiling.json")).json()) as { ceiling: Record<string, number> };
  for (const key of ["tcpSendfileBytesPerSecond", "tcpCopyBytesPerSecond", "pwriteBytesPerSecond", "pwriteSyncedBytesPerSecond"]) expect(ceiling[key]).toBeGreaterThan(0);
});

test("bench rejects bad usage with exit code 2 and one line saying what to fix", async () => {
  const cases: Array<[string[], string]> = [
    [[], "name a workload"],
    [["fly"], "unknown workload 'fly'"],
    [["produce", "--size", "-1"], "--size must be a whole number"],
    [["consume", "--rate", "10"], "--rate applies to produce and e2e"],
    [["e2e", "--embedded", "--broker", "127.0.0.1:1"], "not both"],
  ];
  for (const [args, message] of cases) {
    const run = await bench(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
  }
  const help = await bench(["--help"]);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain("usage: runnel bench");
});

test("a bench stopped with SIGTERM stops its embedded broker and removes its data dir", async () => {
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "bench", "e2e", "--embedded", "--duration", "60", "--rate", "1000", "--no-ceiling"], { cwd: workDir, stdout: "pipe", stderr: "pipe" });
  // Wait (bounded) for the embedded broker: a serve child of this bench appears under /proc.
  const deadline = Date.now() + 15_000;
  let brokerPid: number | null = null;
  while (brokerPid === null && Date.now() < deadline) {
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (parent === child.pid && fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("serve")) brokerPid = Number(entry);
      } catch {
        // the process ended while we looked
      }
    }
    if (brokerPid === null) await Bun.sleep(20);
  }
  expect(brokerPid).not.toBeNull();
  const cmdline = fs.readFileSync(`/proc/${brokerPid}/cmdline`, "utf8").split("\0");
  const dataDir = cmdline[cmdline.indexOf("--data-dir") + 1]!;
  expect(fs.existsSync(dataDir)).toBe(true);
  child.kill("SIGTERM");
  expect(await child.exited).toBe(143);
  expect(fs.existsSync(`/proc/${brokerPid}`)).toBe(false);
  expect(fs.existsSync(dataDir)).toBe(false);
}, 20_000);
