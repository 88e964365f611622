/**
 * Test support: the broker as a real child process (`bun src/main.ts serve`), so a test can
 * SIGKILL it, restart it over the same data directory, and read its RSS from /proc. The child's
 * stdout is drained all the time (a full pipe would stall it); the last lines are kept for
 * failure messages.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.resolve(import.meta.dir, "../..");

export interface BrokerProcess {
  readonly process: Bun.Subprocess<"ignore", "pipe", "pipe">;
  readonly port: number;
  /** The parsed start line ("runnel listening on ..."). */
  readonly startLine: Record<string, unknown>;
  /** ms from spawn to the start line: open + recovery + listen. */
  readonly startMs: number;
  /** Log lines seen so far (bounded). */
  readonly lines: string[];
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number>;
}

const LINES_KEPT = 400;

/** Spawns a broker on `port` (0 = any) over `dataDir`; resolves once it is listening. */
export async function spawnBroker(dataDir: string, port: number, extra: string[] = []): Promise<BrokerProcess> {
  const startedMs = performance.now();
  // Restarted on its old port, a broker would take that port + 1 for HTTP: a free one instead.
  const httpArgs = extra.includes("--http-port") ? [] : ["--http-port", "0"];
  const kafkaArgs = extra.includes("--kafka-port") ? [] : ["--kafka-port", "0"];
  const child = Bun.spawn([process.execPath, "src/main.ts", "serve", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, ...httpArgs, ...kafkaArgs, ...extra], {
    cwd: root,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  const started = drainLines(child.stdout, lines);
  const deadline = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const startLine = await started.catch(() => null);
  clearTimeout(deadline);
  if (startLine === null) {
    child.kill("SIGKILL");
    const stderr = await new Response(child.stderr).text();
    throw new Error(`broker did not start on port ${port}: ${lines.slice(-5).join("\n")} ${stderr}`);
  }
  const startMs = performance.now() - startedMs;
  void new Response(child.stderr).text().then((text) => {
    if (text.length > 0) lines.push(`stderr: ${text}`);
  });
  return {
    process: child,
    port: startLine.port as number,
    startLine,
    startMs,
    lines,
    async kill() {
      child.kill("SIGKILL");
      await child.exited;
    },
    async stop() {
      child.kill("SIGTERM");
      return child.exited;
    },
  };
}

/** Reads stdout forever, keeping the last lines; resolves with the start line when it comes. */
function drainLines(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let found = false;
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of stream) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline = buffered.indexOf("\n");
        while (newline >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          lines.push(line);
          if (lines.length > LINES_KEPT) lines.splice(0, lines.length - LINES_KEPT);
          if (!found && line.includes("runnel listening")) {
            found = true;
            resolve(JSON.parse(line) as Record<string, unknown>);
          }
          newline = buffered.indexOf("\n");
        }
      }
      if (!found) reject(new Error("stdout ended before the start line"));
    })().catch(reject);
  });
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS); null when unreadable. */
export function rssBytes(pid: number): number | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Waits for `condition` (re-checked every few ms) up to `timeoutMs`; throws naming `what`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(5);
  }
}
