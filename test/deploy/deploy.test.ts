/**
 * What deploy/ ships is usable as it stands: the example config passes the real loader (and a
 * broker starts from it), and the systemd unit runs `runnel serve` with that config, reloads
 * with SIGHUP, stops with SIGTERM and waits longer than the broker's own shutdown bound.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { configSchema, loadConfig, parseFlags } from "../../src/config.ts";
import { spawnBroker } from "../durability/broker-process.ts";

const ROOT = path.resolve(import.meta.dir, "../..");
const EXAMPLE = path.join(ROOT, "deploy/runnel.example.json");
const UNIT = path.join(ROOT, "deploy/runnel.service");
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-deploy-"));
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

/** The unit's [Service] settings; a key given twice keeps its last value, as systemd does. */
function serviceSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[")) section = line;
    else if (section === "[Service]") settings.set(line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1));
  }
  return settings;
}

describe("deploy/", () => {
  test("the example config passes the real config loader and sets no option to an unknown key", () => {
    const config = loadConfig({ configFile: EXAMPLE });
    expect(config).toMatchObject({ dataDir: "/var/lib/runnel", port: 9600, logFormat: "json" });
    for (const key of Object.keys(JSON.parse(fs.readFileSync(EXAMPLE, "utf8")) as object)) expect(Object.hasOwn(configSchema.shape, key)).toBe(true);
  });

  test("a broker starts from the example config and stops cleanly", async () => {
    const broker = await spawnBroker(path.join(workDir, "data"), 0, ["--config", EXAMPLE]);
    expect(broker.startLine).toMatchObject({ host: "127.0.0.1", topics: 0 });
    expect(await broker.stop()).toBe(0);
  }, 20_000);

  test("the systemd unit runs serve with the config, reloads with SIGHUP and outwaits the shutdown bound", () => {
    const settings = serviceSettings(fs.readFileSync(UNIT, "utf8"));
    expect(settings.get("Type")).toBe("simple");
    expect(settings.get("ExecStart")).toBe("/usr/local/bin/runnel serve --config /etc/runnel/runnel.json");
    expect(settings.get("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(settings.get("KillSignal")).toBe("SIGTERM");
    expect(settings.get("Restart")).toBe("on-failure");
    expect(settings.get("User")).toBe("runnel");
    expect(Number(settings.get("LimitNOFILE"))).toBeGreaterThanOrEqual(loadConfig({ configFile: EXAMPLE }).openSegmentsMax * 4);
    // The unit's serve arguments are ones `runnel serve` accepts.
    const argv = (settings.get("ExecStart") ?? "").split(" ").slice(2);
    expect(parseFlags(argv, new Set(["--config"])).extra.get("--config")).toBe("/etc/runnel/runnel.json");
    // systemd must not SIGKILL a broker still inside its own bounded shutdown.
    const shutdownTimeoutMs = loadConfig({ configFile: EXAMPLE }).shutdownTimeoutMs;
    expect(Number(settings.get("TimeoutStopSec")) * 1000).toBeGreaterThan(shutdownTimeoutMs + 5_000);
    // The config's data directory is the one systemd creates for the service user.
    expect(`/var/lib/${settings.get("StateDirectory")}`).toBe(loadConfig({ configFile: EXAMPLE }).dataDir);
  });

  test("systemd-analyze verify accepts the unit (when systemd-analyze is installed)", () => {
    const which = Bun.spawnSync(["sh", "-c", "command -v systemd-analyze"]);
    if (which.exitCode !== 0) {
      console.log("skipped: systemd-analyze is not installed");
      return;
    }
    // verify insists that ExecStart's binary exists: stand a script in for /usr/local/bin/runnel.
    const standIn = path.join(workDir, "runnel");
    fs.writeFileSync(standIn, "#!/bin/sh\n", { mode: 0o755 });
    const unit = path.join(workDir, "runnel.service");
    fs.writeFileSync(unit, fs.readFileSync(UNIT, "utf8").replaceAll("/usr/local/bin/runnel", standIn));
    const verified = Bun.spawnSync(["systemd-analyze", "verify", unit], { stderr: "pipe", stdout: "pipe", timeout: 20_000 });
    expect(verified.stderr.toString() + verified.stdout.toString()).toBe("");
    expect(verified.exitCode).toBe(0);
  });
});
