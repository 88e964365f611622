/**
 * Authorization on the Kafka listener (authorizer "acl"), with real clients presenting mutual-TLS
 * client certificates (CN = user name): kcat (librdkafka) for produce, fetch and metadata, kafkajs
 * for a consumer group (join, sync, commit) and topic create/delete. The principal alice may read
 * topics under the prefix `logs-` and the group `readers`; a deny entry takes logs-secret away.
 * Kafka's own codes come back: TOPIC_AUTHORIZATION_FAILED (29), GROUP_AUTHORIZATION_FAILED (30).
 */
import { runKcat } from "../support/kcat.ts";
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

function kcat(user: string, args: string[], stdin?: string): ReturnType<typeof runKcat> {
  const certificate = certificates.get(user)!;
  const tls = ["-X", "security.protocol=ssl", "-X", `ssl.ca.location=${pki.caCert}`, "-X", `ssl.certificate.location=${certificate.cert}`, "-X", `ssl.key.location=${certificate.key}`];
  return runKcat(broker.broker.kafkaPort, [...tls, ...args], stdin === undefined ? {} : { stdin });
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

/** The part of kafkajs's API this test uses, declared here so the type check passes without the package. */
interface KafkajsClient {
  consumer(config: { groupId: string; sessionTimeout: number; heartbeatInterval: number; maxWaitTimeInMs: number; retry?: { retries: number } }): {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    subscribe(subscription: { topic: string; fromBeginning: boolean }): Promise<void>;
    run(config: { autoCommit: boolean; eachMessage(payload: { topic: string; partition: number; message: { offset: string; value: Buffer | null } }): Promise<void> }): Promise<void>;
    commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
    on(event: string, listener: (event: { payload: { error?: { type?: string } } }) => void): void;
  };
  admin(): {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    createTopics(options: { topics: Array<{ topic: string; numPartitions: number }> }): Promise<boolean>;
    deleteTopics(options: { topics: string[] }): Promise<void>;
  };
}
interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number }; ssl: { ca: string[]; cert: string; key: string; servername: string } }) => KafkajsClient;
}

const KAFKAJS = "kafkajs";
let kafkajs: KafkajsModule | null = null;
try {
  // A name in a variable: the type check does not need the package installed.
  kafkajs = (await import(KAFKAJS)) as KafkajsModule;
} catch {
  if (process.env.CI === "true") throw new Error("kafkajs is required in CI (npm install)");
  console.warn("skipping the kafkajs ACL tests: the kafkajs package is not installed (npm install)");
}

function kafkaAs(user: string): KafkajsClient {
  const certificate = certificates.get(user)!;
  const module = kafkajs!;
  return new module.Kafka({
    clientId: `acl-${user}`,
    brokers: [`127.0.0.1:${broker.broker.kafkaPort}`],
    logLevel: module.logLevel.NOTHING,
    retry: { retries: 0 },
    ssl: { ca: [pem(pki.caCert)], cert: pem(certificate.cert), key: pem(certificate.key), servername: "localhost" },
  });
}

async function errorType(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "none";
  } catch (error) {
    const failure = error as { type?: string; cause?: { type?: string }; errors?: Array<{ type?: string }> };
    return failure.type ?? failure.cause?.type ?? failure.errors?.[0]?.type ?? String(error);
  }
}

describe.skipIf(kafkajs === null)("the Kafka listener with authorizer acl, with kafkajs", () => {
  test("topic create and delete need their operation: bob may under tmp-, alice may not at all", async () => {
    const bob = kafkaAs("bob").admin();
    await bob.connect();
    expect(await bob.createTopics({ topics: [{ topic: "tmp-kafka", numPartitions: 1 }] })).toBe(true);
    expect(await errorType(bob.createTopics({ topics: [{ topic: "scratch", numPartitions: 1 }] }))).toBe("TOPIC_AUTHORIZATION_FAILED");
    expect(await errorType(bob.deleteTopics({ topics: ["tmp-kafka"] }))).toBe("none");
    await bob.disconnect();
    const alice = kafkaAs("alice").admin();
    await alice.connect();
    expect(await errorType(alice.deleteTopics({ topics: ["logs-app"] }))).toBe("TOPIC_AUTHORIZATION_FAILED");
    await alice.disconnect();
  }, 60_000);

  test("a consumer joins the group readers, reads and commits; the group writers is refused with GROUP_AUTHORIZATION_FAILED", async () => {
    const consumer = kafkaAs("alice").consumer({ groupId: "readers", sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic: "logs-app", fromBeginning: true });
    const values: string[] = [];
    const done = Promise.withResolvers<void>();
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        values.push(message.value?.toString() ?? "");
        await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
        if (values.length === 2) done.resolve();
      },
    });
    await done.promise;
    await consumer.disconnect();
    expect(values).toEqual(["one", "two"]);
    const certificate = certificates.get("admin")!;
    const admin = new Connection({ broker: `127.0.0.1:${broker.port}`, tls: { ca: pem(pki.caCert), cert: pem(certificate.cert), key: pem(certificate.key) } });
    const committed = await admin.request("fetchOffsets", { group: "readers", partitions: [{ topic: "logs-app", partition: 0 }] });
    expect(committed.offsets).toEqual([{ topic: "logs-app", partition: 0, offset: 2, metadata: "" }]);
    admin.close();

    const refused = kafkaAs("alice").consumer({ groupId: "writers", sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200, retry: { retries: 0 } });
    const crashed = Promise.withResolvers<string>();
    refused.on("consumer.crash", (event) => crashed.resolve(event.payload.error?.type ?? "unknown"));
    await refused.connect();
    await refused.subscribe({ topic: "logs-app", fromBeginning: true });
    await refused.run({ autoCommit: false, eachMessage: async () => {} });
    expect(await crashed.promise).toBe("GROUP_AUTHORIZATION_FAILED");
    await refused.disconnect();
  }, 60_000);
});

/** kafkajs's ACL admin calls (numbers as Kafka's enums: TOPIC 2, LITERAL 3, PREFIXED 4, READ 3, ANY 1, ALLOW 3). */
interface KafkajsAclAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  createAcls(options: { acl: Array<Record<string, unknown>> }): Promise<boolean>;
  describeAcls(filter: Record<string, unknown>): Promise<{ resources: Array<{ resourceType: number; resourceName: string; resourcePatternType: number; acls: Array<{ principal: string; host: string; operation: number; permissionType: number }> }> }>;
  deleteAcls(options: { filters: Array<Record<string, unknown>> }): Promise<{ filterResponses: Array<{ errorCode: number; matchingAcls: Array<{ resourceName: string }> }> }>;
}

describe.skipIf(kafkajs === null)("Kafka's ACL APIs (CreateAcls, DescribeAcls, DeleteAcls) with kafkajs", () => {
  test("a super-user creates, describes and deletes entries of the broker's ACL; alice may not manage ACLs", async () => {
    const admin = kafkaAs("admin").admin() as unknown as KafkajsAclAdmin;
    await admin.connect();
    const carolReads = { resourceType: 2, resourceName: "audit-", resourcePatternType: 4, principal: "User:carol", host: "*", operation: 3, permissionType: 3 };
    expect(await admin.createAcls({ acl: [carolReads] })).toBe(true);
    expect(broker.broker.context.acls.list({ principal: "User:carol" })).toEqual([
      { principal: "User:carol", resourceType: "topic", resourceName: "audit-", patternType: "prefixed", operation: "read", permission: "allow" },
    ]);
    const described = await admin.describeAcls({ resourceType: 1, resourcePatternType: 1, principal: "User:carol", operation: 1, permissionType: 1 });
    expect(described.resources).toEqual([{ resourceType: 2, resourceName: "audit-", resourcePatternType: 4, acls: [{ principal: "User:carol", host: "*", operation: 3, permissionType: 3 }] }]);
    const deleted = await admin.deleteAcls({ filters: [{ resourceType: 1, resourcePatternType: 1, principal: "User:carol", operation: 1, permissionType: 1 }] });
    expect(deleted.filterResponses[0]?.matchingAcls.map((acl) => acl.resourceName)).toEqual(["audit-"]);
    expect(broker.broker.context.acls.list({ principal: "User:carol" })).toEqual([]);
    await admin.disconnect();

    const alice = kafkaAs("alice").admin() as unknown as KafkajsAclAdmin;
    await alice.connect();
    expect(await errorType(alice.createAcls({ acl: [{ ...carolReads, principal: "User:alice", resourceName: "*", resourcePatternType: 3 }] }))).toBe("CLUSTER_AUTHORIZATION_FAILED");
    await alice.disconnect();
    expect(broker.broker.context.acls.list({ principal: "User:alice", resourceName: "*" })).toEqual([]);
  }, 60_000);
});
