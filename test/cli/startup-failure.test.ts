/**
 * `runnel serve` that cannot start says why in one line on stderr — the port or the path, the
 * errno and what to do — exits non-zero, and prints no stack trace (that is for --log-level
 * debug). Each case is a real child process over a real directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CLEAN_SHUTDOWN_FILE } from "../../src/log/log-manager.ts";
import { ROOT } from "../client/real-broker.ts";

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-startup-"));
const mounts: string[] = [];
afterAll(() => {
  for (const mount of mounts) Bun.spawnSync(["umount", "-l", mount]);
  fs.rmSync(workDir, { recursive: true, force: true });
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function serve(args: string[], prefix: string[] = []): Outcome {
  const run = Bun.spawnSync([...prefix, process.execPath, path.join(ROOT, "src/main.ts"), "serve", "--port", "0", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return { code: run.exitCode ?? -1, stdout: run.stdout.toString(), stderr: run.stderr.toString() };
}

/** One line on stderr holding every expected piece; no stack anywhere. */
function expectOneClearLine(outcome: Outcome, pieces: string[]): void {
  expect(outcome.code).toBe(1);
  const lines = outcome.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("runnel serve: ");
  for (const piece of pieces) expect(lines[0]).toContain(piece);
  expect(outcome.stderr + outcome.stdout).not.toMatch(/\bat \S+ \(|"stack"/);
}

/** How to run a child that root's permission bypass does not help, or why we cannot. */
function withoutRootBypass(): string[] | { reason: string } {
  if (process.getuid?.() !== 0) return [];
  // Root ignores directory modes through CAP_DAC_OVERRIDE; dropping it makes 0555 bind root too.
  const probe = Bun.spawnSync(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"], { stderr: "pipe" });
  return probe.exitCode === 0 ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] : { reason: `setpriv cannot drop CAP_DAC_OVERRIDE: ${probe.stderr.toString().trim()}` };
}

describe("runnel serve start-up failures", () => {
  test("a port in use names the address and EADDRINUSE, and the data dir is left cleanly closed", () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const dataDir = path.join(workDir, "port");
      // The other listeners on free ports: unset, HTTP would take the held port + 1, which another
      // socket may hold (ephemeral ports are handed out nearby), and that failure would come first.
      const outcome = serve(["--port", String(holder.port), "--http-port", "0", "--kafka-port", "0", "--data-dir", dataDir]);
      expectOneClearLine(outcome, [`127.0.0.1:${holder.port}`, "EADDRINUSE", "--port"]);
      expect(fs.existsSync(path.join(dataDir, CLEAN_SHUTDOWN_FILE))).toBe(true);
    } finally {
      holder.stop(true);
    }
  });

  test("a data dir that is a file names the path and the errno", () => {
    const file = path.join(workDir, "a-file");
    fs.writeFileSync(file, "not a directory");
    expectOneClearLine(serve(["--data-dir", file]), [file, "EEXIST", "--data-dir"]);
    expectOneClearLine(serve(["--data-dir", path.join(file, "below")]), [path.join(file, "below"), "ENOTDIR"]);
  });

  test("an unwritable data dir names the path and EACCES", () => {
    const prefix = withoutRootBypass();
    if (!Array.isArray(prefix)) {
      console.log(`skipped: ${prefix.reason}`);
      return;
    }
    const locked = path.join(workDir, "locked");
    fs.mkdirSync(locked, { mode: 0o555 });
    fs.chmodSync(locked, 0o555);
    expectOneClearLine(serve(["--data-dir", locked], prefix), [locked, "EACCES", "write access"]);
    expectOneClearLine(serve(["--data-dir", path.join(locked, "new")], prefix), [path.join(locked, "new"), "EACCES"]);
  });

  test("a data dir on a read-only file system names the path and EROFS", () => {
    const mount = path.join(workDir, "readonly");
    fs.mkdirSync(mount);
    const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mount], { stderr: "pipe" });
    if (mounted.exitCode !== 0) {
      console.log(`skipped: cannot mount a read-only tmpfs (needs Linux and root): ${mounted.stderr.toString().trim()}`);
      return;
    }
    mounts.push(mount);
    expectOneClearLine(serve(["--data-dir", mount]), [mount, "EROFS", "read-only"]);
  });

  test("at --log-level debug the stack is logged, still with the one line on stderr", () => {
    const file = path.join(workDir, "another-file");
    fs.writeFileSync(file, "");
    const outcome = serve(["--data-dir", file, "--log-level", "debug", "--log-format", "json"]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr.trim().split("\n")).toHaveLength(1);
    expect(outcome.stdout).toContain('"stack"');
  });
});
