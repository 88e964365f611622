/**
 * @module bench/embedded-broker
 * `runnel bench --embedded`: starts a broker as a child process (`runnel serve` on 127.0.0.1,
 * port 0, a temp data dir), reads its port from the start log line, and reports the child's
 * CPU time and peak RSS from /proc before stopping it.
 *
 * Non-obvious: inside a `bun build --compile` binary, process.execPath IS the runnel binary
 * (and import.meta.path lives under /$bunfs/), so the child is `[execPath, "serve", ...]`;
 * under bun it is `[bun, <repo>/src/main.ts, "serve", ...]`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Subprocess } from "bun";
import { RunnelError } from "../errors.ts";

export interface ProcessUsage {
  /** User + system CPU seconds. */
  cpuSeconds: number;
  /** Peak resident set (VmHWM), bytes. */
  peakRssBytes: number;
  /** Current resident set (VmRSS), bytes. */
  rssBytes: number;
}

export interface EmbeddedBroker {
  readonly address: string;
  /** The Kafka listener's address from the start line (`runnel bench kafka`); null when it is off. */
  readonly kafkaAddress: string | null;
  readonly pid: number;
  readonly dataDir: string;
  usage(): ProcessUsage | null;
  /** SIGTERM, wait for exit, remove the data dir. Returns the usage read just before. */
  stop(): Promise<ProcessUsage | null>;
}

/** The argv that runs `runnel <args>` from this process (compiled binary or bun + main.ts). */
export function runnelCommand(args: readonly string[]): string[] {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
  if (compiled) return [process.execPath, ...args];
  return [process.execPath, path.resolve(import.meta.dir, "../main.ts"), ...args];
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time and RSS of `pid` from /proc; null where /proc is absent or the process is gone. */
export function readProcessUsage(pid: number): ProcessUsage | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" that ends the command name: state is field 3; utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return { cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, peakRssBytes: statusKib(status, "VmHWM") * 1024, rssBytes: statusKib(status, "VmRSS") * 1024 };
  } catch {
    return null;
  }
}

function statusKib(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return match === null ? 0 : Number(match[1]);
}

/** Brokers started and not yet stopped, with their data dirs: what a signal must clean up. */
const live = new Map<Subprocess, string>();

/** Stops every embedded broker of this process (SIGTERM, then wait) and removes its data dir. */
export async function stopEmbeddedBrokers(): Promise<void> {
  await Promise.all(
    [...live].map(async ([child, dataDir]) => {
      child.kill("SIGTERM");
      await child.exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
      live.delete(child);
    }),
  );
}

export async function startEmbeddedBroker(extraArgs: readonly string[] = [], startTimeoutMs = 15_000): Promise<EmbeddedBroker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-bench-"));
  const child = Bun.spawn(runnelCommand(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--log-level", "info", ...extraArgs]), {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  live.set(child, dataDir);
  let port: number;
  let kafkaAddress: string | null;
  try {
    ({ port, kafkaAddress } = await readPort(child, startTimeoutMs));
  } catch (error) {
    child.kill("SIGKILL");
    await child.exited;
    live.delete(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  let stopped: Promise<ProcessUsage | null> | null = null;
  return {
    address: `127.0.0.1:${port}`,
    kafkaAddress,
    pid: child.pid,
    dataDir,
    usage: () => readProcessUsage(child.pid),
    stop: () =>
      (stopped ??= (async () => {
        const usage = readProcessUsage(child.pid);
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await child.exited;
        clearTimeout(timer);
        live.delete(child);
        fs.rmSync(dataDir, { recursive: true, force: true });
        return usage;
      })()),
  };
}

/** Reads JSON log lines until the start line gives the port; keeps draining stdout afterwards. */
async function readPort(child: Subprocess<"ignore", "pipe", "pipe">, timeoutMs: number): Promise<{ port: number; kafkaAddress: string | null }> {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RunnelError("TIMEOUT", `the embedded broker did not start within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), timeout]);
      if (done) {
        const stderr = await new Response(child.stderr).text();
        throw new RunnelError("BROKER_UNAVAILABLE", `the embedded broker exited before listening: ${stderr.trim() || pending.trim()}`);
      }
      pending += decoder.decode(value, { stream: true });
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (!line.includes("runnel listening")) continue;
        const { port, kafka } = JSON.parse(line) as { port?: unknown; kafka?: unknown };
        if (typeof port === "number") {
          void drain(reader);
          void new Response(child.stderr).text().catch(() => undefined);
          return { port, kafkaAddress: typeof kafka === "string" && kafka !== "off" ? kafka : null };
        }
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

async function drain(reader: { read(): Promise<{ done: boolean }> }): Promise<void> {
  try {
    for (;;) if ((await reader.read()).done) return;
  } catch {
    // the child went away
  }
}
