/**
 * `runnel acls add|remove|list` as an operator runs them: child processes against a broker with
 * authorizer acl and mutual TLS, as the super-user `admin` (its client certificate); a user that
 * is not one is refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as path from "node:path";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { makeTestPki } from "../support/tls-certs.ts";

const ROOT = path.resolve(import.meta.dir, "../..");
const pki = makeTestPki();
const admin = pki.issueClientCert("admin");
const alice = pki.issueClientCert("alice");
let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker({ tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsCa: pki.caCert, authorizer: "acl", superUsers: "admin", kafkaPort: -1 });
});

afterAll(async () => {
  await broker[Symbol.asyncDispose]();
  pki.cleanup();
});

async function runAcls(as: { cert: string; key: string }, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const tls = ["--tls-ca", pki.caCert, "--tls-cert", as.cert, "--tls-key", as.key];
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "acls", ...args, "--broker", `127.0.0.1:${broker.port}`, ...tls], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe("runnel acls", () => {
  test("a super-user adds, lists and removes entries; the broker enforces them at once", async () => {
    const added = await runAcls(admin, ["add", "--principal", "User:alice", "--topic", "logs-", "--prefixed", "--operation", "read", "--operation", "write"]);
    expect(added.stderr).toBe("");
    expect(added.stdout).toBe("added 2 entries\n");
    const denied = await runAcls(admin, ["add", "--principal", "User:alice", "--topic", "logs-secret", "--operation", "all", "--deny"]);
    expect(denied.code).toBe(0);
    const listed = await runAcls(admin, ["list", "--principal", "User:alice", "--format", "json"]);
    const entries = JSON.parse(listed.stdout) as Array<{ resourceName: string; operation: string; permission: string; patternType: string }>;
    expect(entries.map((entry) => `${entry.permission} ${entry.operation} ${entry.resourceName} ${entry.patternType}`)).toEqual(["allow read logs- prefixed", "allow write logs- prefixed", "deny all logs-secret literal"]);
    expect(broker.broker.context.acls.size).toBe(3);
    const removed = await runAcls(admin, ["remove", "--principal", "User:alice", "--topic", "logs-", "--prefixed"]);
    expect(removed.stdout).toStartWith("removed 2 entries\n");
    const text = await runAcls(admin, ["list"]);
    expect(text.stdout).toContain("User:alice");
    expect(text.stdout).toContain("logs-secret");
    expect(text.stdout).not.toContain("logs- ");
  }, 30_000);

  test("a user who is not a super-user and has no alter on the cluster is refused, with the code", async () => {
    const refused = await runAcls(alice, ["add", "--principal", "User:alice", "--topic", "*", "--operation", "all"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("AUTHORIZATION_FAILED");
    expect(refused.stderr).toContain("User:alice may not alter the cluster");
  }, 30_000);

  test("mistakes in the call say what to fix", async () => {
    const noOperation = await runAcls(admin, ["add", "--principal", "User:bob", "--topic", "t"]);
    expect(noOperation.code).toBe(2);
    expect(noOperation.stderr).toContain("--operation");
    const removeAll = await runAcls(admin, ["remove"]);
    expect(removeAll.code).toBe(2);
    expect(removeAll.stderr).toContain("remove needs --principal or a resource");
  }, 30_000);
});
