/**
 * `runnel serve` and SIGHUP: the daemon convention is to reload, never to stop. A real broker
 * child gets SIGHUP after its config file changed: it applies the live option, names the one
 * that needs a restart, keeps serving, and a later SIGTERM still ends in a clean shutdown.
 */
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CLEAN_SHUTDOWN_FILE } from "../../src/log/log-manager.ts";
import { spawnBroker, waitFor } from "../durability/broker-process.ts";
import { ROOT } from "../client/real-broker.ts";
import { Producer } from "../../src/client/producer.ts";
import { LIVE_OPTIONS } from "../../src/cli/reload.ts";

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-sighup-"));
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

function parsed(lines: string[]): Array<Record<string, unknown>> {
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

function createTopic(port: number, name: string): number | null {
  return Bun.spawnSync([process.execPath, path.join(ROOT, "src/main.ts"), "topics", "create", name, "--broker", `127.0.0.1:${port}`], { cwd: ROOT, timeout: 20_000 }).exitCode;
}

test("SIGHUP reloads the config, the broker keeps serving, and SIGTERM still stops it cleanly", async () => {
  const configFile = path.join(workDir, "runnel.json");
  const dataDir = path.join(workDir, "data");
  fs.writeFileSync(configFile, JSON.stringify({ logLevel: "info", autoCreateTopics: true }));
  const broker = await spawnBroker(dataDir, 0, ["--config", configFile]);
  expect(createTopic(broker.port, "before-hup")).toBe(0);

  fs.writeFileSync(configFile, JSON.stringify({ logLevel: "debug", autoCreateTopics: false, frameBytesMax: 8 * 1024 * 1024 }));
  broker.process.kill("SIGHUP");
  await waitFor(() => broker.lines.some((line) => line.includes("take effect only after a restart")), 10_000, "the reload's log lines");
  const logged = parsed(broker.lines);
  const applied = logged.find((entry) => String(entry.msg).startsWith("config reloaded: applied"));
  expect(applied?.applied).toEqual({ logLevel: ["info", "debug"], autoCreateTopics: [true, false] });
  const pending = logged.find((entry) => entry.needRestart !== undefined);
  expect(pending?.needRestart).toEqual({ frameBytesMax: [16 * 1024 * 1024, 8 * 1024 * 1024] });

  // A second SIGHUP with a config that does not validate changes nothing and stops nothing.
  fs.writeFileSync(configFile, JSON.stringify({ logLevel: "loud" }));
  broker.process.kill("SIGHUP");
  await waitFor(() => broker.lines.some((line) => line.includes("config reload failed")), 10_000, "the failed reload's log line");

  expect(broker.process.exitCode).toBeNull();
  expect(createTopic(broker.port, "after-hup")).toBe(0);
  // autoCreateTopics=false is in force: a send to a new topic is refused, not auto-created.
  const producer = new Producer({ broker: `127.0.0.1:${broker.port}`, lingerMs: 0 });
  try {
    expect(await producer.send("after-hup", { value: "kept serving" })).toMatchObject({ offset: 0 });
    await expect(producer.send("not-auto-created", { value: "x" })).rejects.toMatchObject({ code: "UNKNOWN_TOPIC" });
  } finally {
    await producer.close();
  }
  expect(await broker.stop()).toBe(0);
  expect(fs.existsSync(path.join(dataDir, CLEAN_SHUTDOWN_FILE))).toBe(true);
  expect(broker.lines.some((line) => line.includes("stopped cleanly"))).toBe(true);
}, 30_000);

test("docs/operations.md names exactly the options a reload applies live", () => {
  const doc = fs.readFileSync(path.join(ROOT, "docs/operations.md"), "utf8");
  const section = doc.slice(doc.indexOf("## 12. Signals and reload"), doc.indexOf("## 13."));
  const liveSentence = section.slice(section.indexOf("applies the options that can change while it runs"), section.indexOf("and logs"));
  const named = [...liveSentence.matchAll(/`([a-zA-Z]+)`/g)].map((match) => match[1]);
  expect(named.sort()).toEqual([...LIVE_OPTIONS].sort());
});
