/**
 * The logger's two formats: JSON lines for machines, one readable line per entry for a person
 * at a terminal, pretty-printed in-process (no pino transport: those fail in the compiled binary).
 */
import { describe, expect, test } from "bun:test";
import path from "node:path";
import { loadConfig } from "../src/config.ts";
import { createLogger, formatPrettyLine } from "../src/logger.ts";

const ROOT = path.resolve(import.meta.dir, "..");

function collector(): { lines: string[]; write(chunk: string): void } {
  const lines: string[] = [];
  return { lines, write: (chunk: string) => void lines.push(...chunk.split("\n").filter((line) => line !== "")) };
}

describe("logger", () => {
  test("pretty prints time, level, message and key=value pairs, nested keys dotted", () => {
    const line = formatPrettyLine(
      JSON.stringify({ level: 30, time: "2026-12-07T16:50:05.798Z", name: "runnel", port: 9600, dataDir: "/var/lib/runnel", note: "two words", recovery: { clean: true, partitions: 2 }, msg: "runnel listening on 127.0.0.1:9600" }),
    );
    expect(line).toBe('2026-12-07T16:50:05.798Z INFO  runnel listening on 127.0.0.1:9600  port=9600 dataDir=/var/lib/runnel note="two words" recovery.clean=true recovery.partitions=2');
  });

  test("pretty puts an error's stack on the lines below, indented, and passes non-JSON through", () => {
    const line = formatPrettyLine(JSON.stringify({ level: 50, time: "t", msg: "failed", err: { type: "Error", message: "boom", stack: "Error: boom\n    at f (x.ts:1:1)" } }));
    expect(line.split("\n")).toEqual(["t ERROR failed  err.type=Error err.message=boom", "    Error: boom", "        at f (x.ts:1:1)"]);
    expect(formatPrettyLine("not json {")).toBe("not json {");
  });

  test("createLogger writes JSON by default and for auto off a terminal, pretty when asked or on a terminal", () => {
    for (const [format, isTerminal, pretty] of [
      [undefined, false, false],
      ["json", true, false],
      ["auto", false, false],
      ["auto", true, true],
      ["pretty", false, true],
    ] as const) {
      const sink = collector();
      createLogger("info", { destination: sink, isTerminal, ...(format === undefined ? {} : { format }) }).info({ port: 1 }, "hello");
      expect(sink.lines).toHaveLength(1);
      // Colour only on a terminal (and no NO_COLOR): a file or pipe gets plain text even when forced.
      if (pretty) expect(sink.lines[0]).toMatch(isTerminal && !process.env.NO_COLOR ? /^\S+ \x1b\[32mINFO \x1b\[0m hello  port=1$/ : /^\S+ INFO  hello  port=1$/);
      else expect(JSON.parse(sink.lines[0] ?? "")).toMatchObject({ level: 30, msg: "hello", port: 1 });
    }
  });

  test("logFormat comes from the config file, RUNNEL_LOG_FORMAT or --log-format, and refuses other values", () => {
    expect(loadConfig({}).logFormat).toBe("auto");
    expect(loadConfig({ env: { RUNNEL_LOG_FORMAT: "json" } }).logFormat).toBe("json");
    expect(loadConfig({ env: { RUNNEL_LOG_FORMAT: "json" }, flags: { logFormat: "pretty" } }).logFormat).toBe("pretty");
    expect(() => loadConfig({ flags: { logFormat: "fancy" } })).toThrow("logFormat");
  });

  test("a broker started with --log-format pretty logs readable lines, not JSON", async () => {
    const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "serve", "--port", "0", "--data-dir", `/tmp/runnel-pretty-${process.pid}`, "--log-format", "pretty"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    try {
      const reader = child.stdout.getReader();
      let text = "";
      while (!text.includes("runnel listening")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      const start = text.split("\n").find((line) => line.includes("runnel listening")) ?? "";
      expect(start).toMatch(/^\d{4}-\d\d-\d\dT\S+ INFO  runnel listening on 127\.0\.0\.1:\d+  address=127\.0\.0\.1:\d+ .*recovery\.clean=true recovery\.fresh=true/);
      reader.releaseLock();
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      Bun.spawnSync(["rm", "-rf", `/tmp/runnel-pretty-${process.pid}`]);
    }
  });
});
