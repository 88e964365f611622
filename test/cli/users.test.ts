/**
 * `runnel users` and the authentication flags of the CLI, as an operator uses them: the first
 * user made offline (password on stdin; the data directory never holds it), refused while a broker
 * holds the directory; users added over the wire by a super-user; the other commands taking
 * --user with RUNNEL_PASSWORD or --password-file; no --password flag anywhere. And the safe
 * default: `runnel serve` on a non-loopback address with authentication none refuses to start
 * unless --allow-anonymous.
 */
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "../client/real-broker.ts";
import { spawnBroker } from "../durability/broker-process.ts";
import { tempDir } from "../server/helpers.ts";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Result> {
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), ...args], {
    cwd: ROOT,
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, RUNNEL_PASSWORD: "", ...options.env },
  });
  const timer = setTimeout(() => child.kill(), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Every file under `dir`, read as bytes, searched for `needle`. */
function holdsText(dir: string, needle: string): boolean {
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const bytes = fs.readFileSync(path.join(entry.parentPath, entry.name));
    if (bytes.includes(Buffer.from(needle))) return true;
  }
  return false;
}

describe("runnel users", () => {
  test("offline: the first users are made with the password on stdin; the data directory never holds the password", async () => {
    const dataDir = tempDir("runnel-users-");
    const added = await cli(["users", "add", "admin", "--data-dir", dataDir], { stdin: "Tr0ub4dor&3-horse\n" });
    expect(added).toMatchObject({ code: 0, stdout: "added user admin\n" });
    const passwordFile = path.join(tempDir("runnel-pw-"), "pw.txt");
    fs.writeFileSync(passwordFile, "second-s3cret\n");
    expect((await cli(["users", "add", "app", "--data-dir", dataDir, "--new-password-file", passwordFile, "--iterations", "4096"])).code).toBe(0);
    const listed = await cli(["users", "list", "--data-dir", dataDir, "--format", "json"]);
    expect(JSON.parse(listed.stdout)).toEqual([
      { name: "admin", mechanisms: [{ mechanism: "SCRAM-SHA-256", iterations: 8192 }, { mechanism: "SCRAM-SHA-512", iterations: 8192 }] },
      { name: "app", mechanisms: [{ mechanism: "SCRAM-SHA-256", iterations: 4096 }, { mechanism: "SCRAM-SHA-512", iterations: 4096 }] },
    ]);
    expect(holdsText(dataDir, "Tr0ub4dor&3-horse")).toBe(false);
    expect(holdsText(dataDir, "second-s3cret")).toBe(false);
    expect(fs.statSync(path.join(dataDir, "users.json")).mode & 0o777).toBe(0o600);
    expect((await cli(["users", "remove", "app", "--data-dir", dataDir])).stdout).toBe("removed user app\n");
    expect((await cli(["users", "add", "x", "--password", "oops", "--data-dir", dataDir])).code).toBe(2);
    expect((await cli(["users", "add", "x", "--data-dir", dataDir], { stdin: "" })).stderr).toContain("the new password is empty");
  }, 30_000);

  test("a broker with users: super-users manage users over the wire, other commands take --user; offline edits are refused while it runs", async () => {
    const dataDir = tempDir("runnel-users-live-");
    expect((await cli(["users", "add", "admin", "--data-dir", dataDir], { stdin: "admin-pw\n" })).code).toBe(0);
    const broker = await spawnBroker(dataDir, 0, ["--authentication", "scram", "--super-users", "admin"]);
    try {
      const address = `127.0.0.1:${broker.port}`;
      const asAdmin = { env: { RUNNEL_PASSWORD: "admin-pw" } };
      const newPassword = path.join(tempDir("runnel-pw-"), "app.txt");
      fs.writeFileSync(newPassword, "app-pw\n");
      expect((await cli(["users", "add", "app", "--broker", address, "--user", "admin", "--new-password-file", newPassword], asAdmin)).stdout).toBe("added user app\n");
      expect((await cli(["users", "list", "--broker", address, "--user", "admin"], asAdmin)).stdout).toContain("app\tSCRAM-SHA-256");
      expect((await cli(["topics", "create", "orders", "--broker", address, "--user", "app", "--password-file", newPassword])).code).toBe(0);
      const asApp = ["--broker", address, "--user", "app", "--password-file", newPassword];
      expect((await cli(["produce", "--topic", "orders", ...asApp], { stdin: "first order\n" })).code).toBe(0);
      expect((await cli(["consume", "--topic", "orders", "--count", "1", ...asApp])).stdout).toBe("first order\n");
      expect((await cli(["groups", "list", ...asApp])).code).toBe(0);
      const anonymous = await cli(["topics", "list", "--broker", address]);
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr).toContain("AUTHENTICATION_REQUIRED");
      const notSuper = await cli(["users", "list", "--broker", address, "--user", "app", "--password-file", newPassword]);
      expect(notSuper.stderr).toContain("AUTHORIZATION_FAILED");
      const wrong = await cli(["topics", "list", "--broker", address, "--user", "app"], { env: { RUNNEL_PASSWORD: "nope" } });
      expect(wrong.stderr).toContain("AUTHENTICATION_FAILED");
      expect((await cli(["topics", "list", "--broker", address, "--user", "app"])).stderr).toContain("needs a password");
      const http = String(broker.startLine.http);
      expect((await cli(["top", "--http", http, "--once", "--interval-ms", "100", "--user", "app", "--password-file", newPassword])).code).toBe(0);
      expect((await cli(["top", "--http", http, "--once", "--interval-ms", "100"])).stderr).toContain("answered 401");
      const offline = await cli(["users", "add", "late", "--data-dir", dataDir], { stdin: "pw\n" });
      expect(offline.code).toBe(1);
      expect(offline.stderr).toContain("in use by another broker");
    } finally {
      await broker.stop();
    }
  }, 60_000);
});

describe("runnel serve's safe default", () => {
  test("a non-loopback address with authentication none is refused, naming it and the way out", async () => {
    const dataDir = tempDir("runnel-exposed-");
    const refused = await cli(["serve", "--host", "0.0.0.0", "--port", "0", "--kafka-port", "-1", "--http-port", "-1", "--data-dir", dataDir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("the native listener on 0.0.0.0 (--host)");
    expect(refused.stderr).toContain("--authentication scram");
    expect(refused.stderr).toContain("--allow-anonymous");
    expect(fs.existsSync(path.join(dataDir, ".lock"))).toBe(false);
  });

  test("--allow-anonymous, or authentication scram, lets it start", async () => {
    const anonymous = await spawnBroker(tempDir("runnel-exposed-"), 0, ["--kafka-host", "0.0.0.0", "--allow-anonymous"]);
    expect(await anonymous.stop()).toBe(0);
    const authenticated = await spawnBroker(tempDir("runnel-exposed-"), 0, ["--kafka-host", "0.0.0.0", "--authentication", "scram"]);
    expect(await authenticated.stop()).toBe(0);
  }, 30_000);
});
