/**
 * @module test/client/real-broker
 * Runs the real broker (`runnel serve`) as a child process on 127.0.0.1 for integration
 * tests: port 0 (or a given port, for restarts), a temp data dir, the port read from the
 * start log line. `command` lets a test run a compiled binary instead of `bun src/main.ts`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Subprocess } from "bun";

export const ROOT = path.resolve(import.meta.dir, "../..");

export interface RealBroker {
  readonly port: number;
  readonly address: string;
  readonly dataDir: string;
  readonly child: Subprocess<"ignore", "pipe", "pipe">;
  /** Every log line so far. */
  readonly lines: string[];
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL (a crash) and wait. */
  kill(): Promise<void>;
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  /** Defaults to [bun, src/main.ts]. */
  command?: string[];
  extraArgs?: string[];
  startTimeoutMs?: number;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startRealBroker(options: StartOptions = {}): Promise<RealBroker> {
  const dataDir = options.dataDir ?? tempDir("runnel-client-it-");
  const command = options.command ?? [process.execPath, path.join(ROOT, "src/main.ts")];
  const extraArgs = options.extraArgs ?? [];
  // A broker restarted on its old port would otherwise take that port + 1 for HTTP, which
  // another test's ephemeral port may hold: test brokers take a free HTTP port.
  const httpArgs = extraArgs.includes("--http-port") ? [] : ["--http-port", "0"];
  const kafkaArgs = extraArgs.includes("--kafka-port") ? [] : ["--kafka-port", "0"];
  const child = Bun.spawn([...command, "serve", "--port", String(options.port ?? 0), "--data-dir", dataDir, ...httpArgs, ...kafkaArgs, ...extraArgs], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  const port = await readPort(child, lines, options.startTimeoutMs ?? 15_000);
  return {
    port,
    address: `127.0.0.1:${port}`,
    dataDir,
    child,
    lines,
    async stop() {
      child.kill("SIGTERM");
      return await child.exited;
    },
    async kill() {
      child.kill("SIGKILL");
      await child.exited;
    },
  };
}

/** Reads log lines until the start line names the port; keeps draining afterwards. */
async function readPort(child: Subprocess<"ignore", "pipe", "pipe">, lines: string[], timeoutMs: number): Promise<number> {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  let found: number | null = null;
  const deadline = Date.now() + timeoutMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`broker did not start within ${timeoutMs} ms:\n${lines.join("\n")}`)), Math.max(1, deadline - Date.now()));
  });
  try {
    while (found === null) {
      const { done, value } = await Promise.race([reader.read(), timeout]);
      if (done) {
        const stderr = await new Response(child.stderr).text();
        throw new Error(`broker exited before listening:\n${lines.join("\n")}\n${stderr}`);
      }
      pending += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        if (found === null && line.includes("runnel listening")) found = (JSON.parse(line) as { port: number }).port;
      }
    }
  } finally {
    clearTimeout(timer);
  }
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      lines.push(...decoder.decode(value).split("\n").filter((line) => line !== ""));
    }
  })().catch(() => undefined);
  return found;
}
