/**
 * The credential store (security/credential-store.ts): verifiers only, never the password; every
 * change durable when upsert returns, also across a kill -9 of a process in the middle of writing;
 * a file that does not parse stops start-up with one clear line instead of crashing or being
 * replaced.
 */
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { configSchema } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";
import { CredentialStore, USERS_FILE } from "../../src/security/credential-store.ts";
import { deriveVerifier, passwordMatches } from "../../src/security/scram.ts";
import { startBroker } from "../../src/server/broker.ts";
import { ROOT } from "../client/real-broker.ts";
import { tempDir } from "../server/helpers.ts";

describe("CredentialStore", () => {
  test("holds verifiers that check the password, survives a reopen, and never holds the password", () => {
    const dataDir = tempDir("runnel-store-");
    const store = CredentialStore.open(dataDir);
    store.upsert("alice", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "correct horse battery", 4096) });
    const reopened = CredentialStore.open(dataDir);
    const verifier = reopened.lookup("alice", "SCRAM-SHA-256");
    expect(verifier).not.toBeNull();
    expect(passwordMatches("SCRAM-SHA-256", verifier!, "correct horse battery")).toBe(true);
    expect(reopened.lookup("alice", "SCRAM-SHA-512")).toBeNull();
    expect(reopened.lookup("bob", "SCRAM-SHA-256")).toBeNull();
    expect(Buffer.from(reopened.secret).equals(Buffer.from(store.secret))).toBe(true);
    expect(fs.readFileSync(path.join(dataDir, USERS_FILE), "utf8")).not.toContain("correct horse battery");
    expect(reopened.remove("alice")).toBe(true);
    expect(reopened.remove("alice")).toBe(false);
    expect(CredentialStore.open(dataDir).list()).toEqual([]);
  });

  test("a process killed with SIGKILL while adding users leaves a store that parses and holds every user it reported", async () => {
    const dataDir = tempDir("runnel-store-kill-");
    const child = Bun.spawn([process.execPath, path.join(ROOT, "test/security/fixtures/store-writer.ts"), dataDir], { stdout: "pipe", stderr: "pipe" });
    const reported: string[] = [];
    const reader = child.stdout.getReader();
    let pending = "";
    while (reported.length < 40) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += new TextDecoder().decode(value);
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      reported.push(...lines);
    }
    child.kill("SIGKILL");
    await child.exited;
    const store = CredentialStore.open(dataDir);
    const names = new Set(store.list().map((user) => user.name));
    expect(reported.length).toBeGreaterThanOrEqual(40);
    for (const name of reported) expect(names.has(name)).toBe(true);
  }, 30_000);

  test("a users file that does not parse stops start-up with a STORAGE_ERROR naming the file, and is left as it was", async () => {
    const dataDir = tempDir("runnel-store-bad-");
    const file = path.join(dataDir, USERS_FILE);
    for (const contents of ["{not json", JSON.stringify({ version: 1, secret: "AAAA", users: { bob: { "SCRAM-SHA-256": { salt: "AAAA", iterations: 10, storedKey: "AAAA", serverKey: "AAAA" } } } })]) {
      fs.writeFileSync(file, contents);
      const config = configSchema.parse({ port: 0, httpPort: -1, kafkaPort: -1, dataDir, logLevel: "silent" });
      await expect(startBroker({ config, logger: silentLogger() })).rejects.toMatchObject({ code: "STORAGE_ERROR", message: expect.stringContaining(file) });
      expect(fs.readFileSync(file, "utf8")).toBe(contents);
    }
    const serve = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "serve", "--port", "0", "--http-port", "-1", "--kafka-port", "-1", "--data-dir", dataDir], { stdout: "pipe", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(serve.stderr).text(), serve.exited]);
    expect(code).toBe(1);
    expect(stderr).toContain(`the credential store ${file} cannot be read`);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  }, 30_000);
});
