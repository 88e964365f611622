/**
 * @module bench/stall
 * The longest wait of a well-behaved client (one `metadata` every 20 ms) while another
 * connection sends valid but expensive requests, against the same client with no such load,
 * each on a fresh broker with the default configuration running as a child process (so the
 * client's own work never shares the broker's event loop). Target: no stall over 50 ms.
 *
 *   npx bun bench/stall.ts
 *   ONLY=produceNewTopics npx bun bench/stall.ts     one scenario (and the baseline)
 *
 * The hostile client runs in a process of its own (this file with `--hostile <scenario> <port>`),
 * so its work never delays the probe's answers.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { measureBaseline, measureStall, RawClient, SCENARIOS, type ScenarioName, type ScenarioOutcome } from "../src/bench/stall.ts";

const root = path.resolve(import.meta.dir, "..");
const PROBE_TOPIC = "probe";
/** The probe keeps going this long after the load: past flush.ms (5 s), so the flushes it left count. */
const AFTER_MS = 6_000;

async function withBroker<T>(run: (port: number) => Promise<T>): Promise<T> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-stall-"));
  const child = Bun.spawn([process.execPath, "src/main.ts", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir], {
    cwd: root,
    stdout: "pipe",
    stderr: "inherit",
  });
  try {
    const port = await portFrom(child.stdout);
    const admin = await RawClient.connect("127.0.0.1", port);
    await admin.request({ op: "createTopic", topic: PROBE_TOPIC, partitions: 1 });
    admin.close();
    return await run(port);
  } finally {
    child.kill("SIGTERM");
    await child.exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The port from the start line; keeps reading stdout after it (a full pipe would block the broker). */
function portFrom(stdout: ReadableStream<Uint8Array>): Promise<number> {
  return new Promise((resolve, reject) => {
    void (async () => {
      const decoder = new TextDecoder();
      let text = "";
      let found = false;
      for await (const chunk of stdout) {
        if (found) continue;
        text += decoder.decode(chunk, { stream: true });
        const match = /"port":(\d+)/.exec(text);
        if (match) {
          found = true;
          resolve(Number(match[1]));
        }
      }
      if (!found) reject(new Error(`broker exited before listening: ${text}`));
    })();
  });
}

/** Runs a scenario in a child process (this file, --hostile); its outcome comes back as JSON. */
function inChild(name: ScenarioName): (host: string, port: number) => Promise<ScenarioOutcome> {
  return async (_host, port) => {
    const child = Bun.spawn([process.execPath, import.meta.path, "--hostile", name, String(port)], { cwd: root, stdout: "pipe", stderr: "inherit" });
    const text = await new Response(child.stdout).text();
    await child.exited;
    return JSON.parse(text) as ScenarioOutcome;
  };
}

if (process.argv[2] === "--hostile") {
  const name = process.argv[3] as ScenarioName;
  const client = await RawClient.connect("127.0.0.1", Number(process.argv[4]));
  const outcome = await SCENARIOS[name](client);
  client.close();
  process.stdout.write(JSON.stringify(outcome));
  process.exit(0);
}

const rows: string[] = [];
const baseline = await withBroker((port) => measureBaseline("127.0.0.1", port, PROBE_TOPIC, 8_000));
rows.push(`baseline (no load)      probe max ${baseline.maxMs.toFixed(1)} ms  p99 ${baseline.p99Ms.toFixed(1)} ms  (${baseline.requests} requests)`);
for (const name of (process.env.ONLY ? [process.env.ONLY] : Object.keys(SCENARIOS)) as ScenarioName[]) {
  const { probe, outcome, scenarioMs } = await withBroker((port) => measureStall("127.0.0.1", port, PROBE_TOPIC, inChild(name), AFTER_MS));
  const verdict = probe.maxMs <= 50 ? "ok" : "OVER 50 ms";
  rows.push(
    `${name.padEnd(22)}  probe max ${probe.maxMs.toFixed(1)} ms  p99 ${probe.p99Ms.toFixed(1)} ms  (${probe.requests} requests; ` +
      `${(probe.maxMs / Math.max(baseline.maxMs, 0.001)).toFixed(1)}x baseline max)  ${verdict}; ` +
      `scenario ${scenarioMs.toFixed(0)} ms: ${outcome.created.length} created, refused ${JSON.stringify(outcome.refused)}${outcome.unexpected.length > 0 ? `, UNEXPECTED ${outcome.unexpected.slice(0, 3).join("; ")}` : ""}`,
  );
  console.log(rows[rows.length - 1]);
}
console.log(`\n${rows.join("\n")}`);
