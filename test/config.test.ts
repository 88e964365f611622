import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, configSchema, envName, flagName, loadConfig, parseFlags } from "../src/config.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-config-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
  return file;
}

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  test("defaults are the documented ones", () => {
    const config = loadConfig();
    expect(config).toMatchObject({ host: "127.0.0.1", port: 9600, dataDir: "./data", logLevel: "info", frameBytesMax: 16 * 1024 * 1024, autoCreateTopics: true, zeroCopy: true });
    expect(configSchema.parse({})).toEqual(config);
  });

  test("precedence is defaults < file < env < flags", () => {
    const file = writeConfig("layers.json", { port: 1111, dataDir: "/from/file", logLevel: "warn", connectionsMax: 7 });
    const config = loadConfig({ configFile: file, env: { RUNNEL_PORT: "2222", RUNNEL_LOG_LEVEL: "debug" }, flags: { port: "3333" } });
    expect(config.port).toBe(3333);
    expect(config.logLevel).toBe("debug");
    expect(config.dataDir).toBe("/from/file");
    expect(config.connectionsMax).toBe(7);
    expect(config.host).toBe("127.0.0.1");
  });

  test("env and flag names map mechanically from option names", () => {
    expect(envName("frameBytesMax")).toBe("RUNNEL_FRAME_BYTES_MAX");
    expect(flagName("dataDir")).toBe("--data-dir");
    expect(loadConfig({ env: { RUNNEL_AUTO_CREATE_TOPICS: "off", RUNNEL_ZERO_COPY: "false" } })).toMatchObject({ autoCreateTopics: false, zeroCopy: false });
  });

  test("a bad value stops with one line naming the option, the value, its source and what is allowed", () => {
    const message = errorOf(() => loadConfig({ flags: { port: "70000" } }));
    expect(message).toBe("invalid option port=70000 (from flag --port): an integer from 0 to 65535");
    expect(message).not.toContain("\n");
    expect(errorOf(() => loadConfig({ env: { RUNNEL_PORT: "ninety" } }))).toBe('invalid option port="ninety" (from environment RUNNEL_PORT): an integer from 0 to 65535');
    expect(errorOf(() => loadConfig({ env: { RUNNEL_LOG_LEVEL: "loud" } }))).toContain("one of fatal, error, warn, info, debug, trace, silent");
    expect(errorOf(() => loadConfig({ flags: { retentionMs: "-5" } }))).toContain("-1 (off) or an integer from 1");
  });

  test("a config file with an unknown key or bad JSON is refused", () => {
    expect(errorOf(() => loadConfig({ configFile: writeConfig("unknown.json", { prot: 1 }) }))).toContain("unknown option 'prot'");
    expect(errorOf(() => loadConfig({ configFile: writeConfig("bad.json", "{port:") }))).toContain("not valid JSON");
    expect(errorOf(() => loadConfig({ configFile: path.join(dir, "missing.json") }))).toContain("cannot read config file");
    expect(errorOf(() => loadConfig({ configFile: writeConfig("typed.json", { port: "9600" }) }))).toContain("from config file");
  });

  test("batchBytesMax must leave room in a frame for the fetch head", () => {
    expect(errorOf(() => loadConfig({ flags: { frameBytesMax: String(2 * 1024 * 1024), batchBytesMax: String(2 * 1024 * 1024) } }))).toContain("invalid option batchBytesMax=2097152");
  });

  test("parseFlags splits option flags from the command's own, in both --a b and --a=b forms", () => {
    const parsed = parseFlags(["--port", "9700", "--data-dir=/tmp/x", "--config", "a.json", "--help"], new Set(["--config"]), new Set(["--help"]));
    expect(parsed.flags).toEqual({ port: "9700", dataDir: "/tmp/x" });
    expect(parsed.extra.get("--config")).toBe("a.json");
    expect(parsed.extra.get("--help")).toBe(true);
    expect(errorOf(() => parseFlags(["--prot", "1"]))).toContain("unknown flag '--prot'");
    expect(errorOf(() => parseFlags(["--port"]))).toContain("needs a value");
  });
});
