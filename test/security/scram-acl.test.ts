/**
 * Authentication and authorization together (issue 12): with `authentication: "scram"` and
 * `authorizer: "acl"`, the user a connection authenticated as is the principal its ACL entries
 * name, on the native listener (the client library) and on the Kafka listener (kcat with SASL
 * SCRAM). A super-user sets everything up over the wire: users, ACL entries, topics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { CredentialStore } from "../../src/security/credential-store.ts";
import { deriveVerifier } from "../../src/security/scram.ts";
import { startTestBroker, type TestBroker, tempDir } from "../server/helpers.ts";
import { kcatOrSkip, runKcat } from "../support/kcat.ts";

const KCAT = kcatOrSkip("the kcat part of scram-acl.test.ts");

let running: TestBroker;
let broker: string;

/** The first user, made offline before the broker starts (as `runnel users add --data-dir` does). */
function dataDirWithAdmin(): string {
  const dataDir = tempDir("runnel-scram-acl-");
  CredentialStore.open(dataDir).upsert("admin", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "admin-pw", 4096) });
  return dataDir;
}

beforeAll(async () => {
  running = await startTestBroker({ dataDir: dataDirWithAdmin(), authentication: "scram", authorizer: "acl", superUsers: "admin", kafkaPort: 0 });
  broker = `127.0.0.1:${running.port}`;
  const admin = new Admin({ broker, sasl: { user: "admin", password: "admin-pw" } });
  await admin.upsertUser("reader", "reader-pw");
  await admin.connection.request("createAcls", {
    acls: [
      { principal: "User:reader", resourceType: "topic", resourceName: "logs-", patternType: "prefixed", operation: "read" },
      { principal: "User:reader", resourceType: "group", resourceName: "readers", operation: "read" },
    ],
  });
  for (const topic of ["logs-app", "payroll"]) await admin.createTopic(topic, { partitions: 1 });
  await admin.connection.close();
  const producer = new Producer({ broker, sasl: { user: "admin", password: "admin-pw" }, lingerMs: 0 });
  for (const topic of ["logs-app", "payroll"]) await producer.send(topic, { value: `hello ${topic}` });
  await producer.close();
});

afterAll(async () => {
  await running[Symbol.asyncDispose]();
});

describe("SCRAM users as ACL principals on the native listener", () => {
  test("a user allowed to read logs- reads logs-app, and is refused payroll and any write", async () => {
    const consumer = new Consumer({ broker, sasl: { user: "reader", password: "reader-pw" } }).subscribe("logs-app");
    const message = await consumer.next();
    expect(new TextDecoder().decode(message.value?.value ?? new Uint8Array())).toBe("hello logs-app");
    await consumer.close();
    const admin = new Admin({ broker, sasl: { user: "reader", password: "reader-pw" } });
    const answer = await admin.connection.request("fetch", { partitions: [{ topic: "payroll", partition: 0, offset: 0 }] });
    expect((answer.partitions as Array<{ error?: { code: string } }>)[0]?.error?.code).toBe("AUTHORIZATION_FAILED");
    expect((await admin.listTopics()).map((topic) => topic.name)).toEqual(["logs-app"]);
    await expect(admin.deleteTopic("logs-app")).rejects.toMatchObject({ code: "AUTHORIZATION_FAILED" });
    await expect(admin.upsertUser("mallory", "mallory-pw")).rejects.toMatchObject({ code: "AUTHORIZATION_FAILED" });
    await admin.connection.close();
    const producer = new Producer({ broker, sasl: { user: "reader", password: "reader-pw" }, lingerMs: 0 });
    await expect(producer.send("logs-app", { value: "from the reader" })).rejects.toMatchObject({ code: "AUTHORIZATION_FAILED" });
    await producer.close();
  });
});

describe.skipIf(KCAT === null)("SCRAM users as ACL principals on the Kafka listener (kcat)", () => {
  function kcat(args: string[], waitSeconds = 5): ReturnType<typeof runKcat> {
    const sasl = ["-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=reader", "-X", "sasl.password=reader-pw"];
    return runKcat(running.broker.kafkaPort, [...sasl, ...args], { waitSeconds });
  }

  test("kcat as the reader lists and consumes logs-app only, and its consume of payroll fails", async () => {
    const listed = await kcat(["-L"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('topic "logs-app"');
    expect(listed.stdout).not.toContain('topic "payroll"');
    const consumed = await kcat(["-C", "-t", "logs-app", "-o", "beginning", "-e", "-f", "%s\n"]);
    expect(consumed.stdout).toBe("hello logs-app\n");
    const refused = await kcat(["-C", "-t", "payroll", "-o", "beginning", "-e", "-f", "%s\n"], 2);
    expect(refused.stdout).toBe("");
    expect(refused.code).not.toBe(0);
  });
});
