/**
 * Authorization on the native listener (authorizer "acl"): principals come from mutual-TLS client
 * certificates (CN = user name), an admin named in superUsers sets up the ACL with createAcls, and
 * a reader allowed only the prefix `logs-` is held to it for produce, fetch, listOffsets, topic
 * create/delete, group join and commit; metadata and listGroups show only what it may describe;
 * a deny entry wins over an allow.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { Connection } from "../../src/client/connection.ts";
import { Producer } from "../../src/client/index.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";
import { makeTestPki } from "../support/tls-certs.ts";

const pki = makeTestPki();
const pem = (file: string) => fs.readFileSync(file, "utf8");
const certificates = new Map(["admin", "alice", "bob"].map((name) => [name, pki.issueClientCert(name)]));
let running: TestBroker;
const connections: Connection[] = [];

function tlsOf(user: string) {
  const certificate = certificates.get(user)!;
  return { ca: pem(pki.caCert), cert: pem(certificate.cert), key: pem(certificate.key) };
}

function as(user: string): Connection {
  const connection = new Connection({ broker: `127.0.0.1:${running.port}`, tls: tlsOf(user), requestTimeoutMs: 5_000 });
  connections.push(connection);
  return connection;
}

async function errorOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "none";
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

beforeAll(async () => {
  running = await startTestBroker({ tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsCa: pki.caCert, authorizer: "acl", superUsers: "admin", kafkaPort: -1 });
  const admin = as("admin");
  await admin.request("createAcls", {
    acls: [
      { principal: "User:alice", resourceType: "topic", resourceName: "logs-", patternType: "prefixed", operation: "read" },
      { principal: "User:alice", resourceType: "topic", resourceName: "logs-secret", operation: "read", permission: "deny" },
      { principal: "User:alice", resourceType: "group", resourceName: "readers", operation: "read" },
      { principal: "User:bob", resourceType: "topic", resourceName: "logs-", patternType: "prefixed", operation: "write" },
      { principal: "User:bob", resourceType: "topic", resourceName: "tmp-", patternType: "prefixed", operation: "all" },
    ],
  });
  for (const topic of ["logs-app", "logs-secret", "payroll"]) await admin.request("createTopic", { topic, partitions: 1 });
  const producer = new Producer({ broker: `127.0.0.1:${running.port}`, tls: tlsOf("admin"), lingerMs: 0 });
  for (const topic of ["logs-app", "logs-secret", "payroll"]) await producer.send(topic, { value: `hello ${topic}` });
  await producer.close();
});

afterAll(async () => {
  for (const connection of connections) connection.close();
  await running[Symbol.asyncDispose]();
  pki.cleanup();
});

function fetchErrors(answer: WireMap): Array<string | null> {
  return (answer.partitions as Array<{ error?: { code: string } }>).map((entry) => entry.error?.code ?? null);
}

describe("the native listener with authorizer acl and mTLS principals", () => {
  test("a reader of the prefix logs- fetches logs-app but gets AUTHORIZATION_FAILED for payroll, and for logs-secret, whose deny wins", async () => {
    const alice = as("alice");
    const answer = await alice.request("fetch", {
      partitions: [
        { topic: "logs-app", partition: 0, offset: 0 },
        { topic: "payroll", partition: 0, offset: 0 },
        { topic: "logs-secret", partition: 0, offset: 0 },
      ],
    });
    expect(fetchErrors(answer)).toEqual([null, "AUTHORIZATION_FAILED", "AUTHORIZATION_FAILED"]);
    expect((answer.partitions as Array<{ recordsBytes: number }>)[0]!.recordsBytes).toBeGreaterThan(0);
  });

  test("the reader may not produce; a writer of logs- may, but not to payroll", async () => {
    const broker = `127.0.0.1:${running.port}`;
    const alice = new Producer({ broker, tls: tlsOf("alice"), lingerMs: 0 });
    expect(await errorOf(alice.send("logs-app", { value: "from alice" }))).toBe("AUTHORIZATION_FAILED");
    await alice.close();
    const bob = new Producer({ broker, tls: tlsOf("bob"), lingerMs: 0 });
    expect(await errorOf(bob.send("logs-app", { value: "from bob" }))).toBe("none");
    expect(await errorOf(bob.send("payroll", { value: "from bob" }))).toBe("AUTHORIZATION_FAILED");
    await bob.close();
  });

  test("listOffsets answers the reader's topics and refuses the others per partition", async () => {
    const answer = await as("alice").request("listOffsets", {
      partitions: [
        { topic: "logs-app", partition: 0, at: "latest" },
        { topic: "payroll", partition: 0, at: "latest" },
      ],
    });
    expect(fetchErrors(answer)).toEqual([null, "AUTHORIZATION_FAILED"]);
  });

  test("metadata lists only the topics the principal may describe (a deny of read still lets it describe)", async () => {
    const listed = await as("alice").request("metadata", {});
    expect((listed.topics as Array<{ name: string }>).map((topic) => topic.name)).toEqual(["logs-app", "logs-secret"]);
    const named = await as("alice").request("metadata", { topics: ["payroll", "no-such-topic"] });
    expect((named.topics as Array<{ error?: { code: string } }>).map((topic) => topic.error?.code)).toEqual(["AUTHORIZATION_FAILED", "AUTHORIZATION_FAILED"]);
    const all = await as("admin").request("metadata", {});
    expect((all.topics as Array<{ name: string }>).map((topic) => topic.name)).toEqual(["logs-app", "logs-secret", "payroll"]);
  });

  test("topic create and delete need their operation: the reader may do neither, bob may under tmp- only", async () => {
    const alice = as("alice");
    expect(await errorOf(alice.request("createTopic", { topic: "logs-new", partitions: 1 }))).toBe("AUTHORIZATION_FAILED");
    expect(await errorOf(alice.request("deleteTopic", { topic: "logs-app" }))).toBe("AUTHORIZATION_FAILED");
    const bob = as("bob");
    expect(await errorOf(bob.request("createTopic", { topic: "tmp-1", partitions: 1 }))).toBe("none");
    expect(await errorOf(bob.request("deleteTopic", { topic: "tmp-1" }))).toBe("none");
    expect(await errorOf(bob.request("createTopic", { topic: "scratch", partitions: 1 }))).toBe("AUTHORIZATION_FAILED");
    // The refusal is the same whether the topic exists or not: nothing leaks.
    expect(await errorOf(bob.request("deleteTopic", { topic: "no-such-topic" }))).toBe("AUTHORIZATION_FAILED");
  });

  test("auto-creation needs create permission: a writer without it gets UNKNOWN_TOPIC and nothing is created", async () => {
    const bob = new Producer({ broker: `127.0.0.1:${running.port}`, tls: tlsOf("bob"), lingerMs: 0 });
    expect(await errorOf(bob.send("logs-auto", { value: "x" }))).toBe("UNKNOWN_TOPIC");
    expect(await errorOf(bob.send("tmp-auto", { value: "x" }))).toBe("none");
    await bob.close();
    const topics = ((await as("admin").request("metadata", {})).topics as Array<{ name: string }>).map((topic) => topic.name);
    expect(topics).toContain("tmp-auto");
    expect(topics).not.toContain("logs-auto");
  });

  test("group join and commit need read on the group, and a commit read on each topic", async () => {
    const alice = as("alice");
    const joined = await alice.request("joinGroup", { group: "readers", topics: ["logs-app"] });
    expect(typeof joined.memberId).toBe("string");
    expect(await errorOf(alice.request("joinGroup", { group: "writers", topics: ["logs-app"] }))).toBe("AUTHORIZATION_FAILED");
    const commit = await alice.request("commitOffsets", {
      group: "readers",
      offsets: [
        { topic: "logs-app", partition: 0, offset: 1 },
        { topic: "payroll", partition: 0, offset: 1 },
      ],
    });
    expect((commit.results as Array<{ error?: { code: string } }>).map((result) => result.error?.code ?? null)).toEqual([null, "AUTHORIZATION_FAILED"]);
    expect(await errorOf(alice.request("commitOffsets", { group: "writers", offsets: [{ topic: "logs-app", partition: 0, offset: 1 }] }))).toBe("AUTHORIZATION_FAILED");
    await alice.request("leaveGroup", { group: "readers", memberId: joined.memberId as string });
    const groups = await as("bob").request("listGroups", {});
    expect(groups.groups).toEqual([]);
    const adminGroups = await as("admin").request("listGroups", {});
    expect((adminGroups.groups as Array<{ group: string }>).map((group) => group.group)).toEqual(["readers"]);
  });

  test("stats and ACL management need the cluster: refused to the reader, allowed to the super-user", async () => {
    const alice = as("alice");
    expect(await errorOf(alice.request("stats", {}))).toBe("AUTHORIZATION_FAILED");
    expect(await errorOf(alice.request("describeAcls", {}))).toBe("AUTHORIZATION_FAILED");
    expect(await errorOf(alice.request("createAcls", { acls: [{ principal: "User:alice", resourceType: "topic", resourceName: "*", operation: "all" }] }))).toBe("AUTHORIZATION_FAILED");
    const described = await as("admin").request("describeAcls", { filter: { principal: "User:alice" } });
    expect((described.acls as unknown[]).length).toBe(3);
  });

  test("an AUTHORIZATION_FAILED message names the principal, the operation and the resource", async () => {
    let message = "";
    try {
      await as("alice").request("deleteTopic", { topic: "payroll" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("User:alice may not delete topic 'payroll'");
  });
});
