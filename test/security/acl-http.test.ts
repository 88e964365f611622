/**
 * Authorization on the HTTP listener's console API (authorizer "acl"): the HTTP principal is
 * User:ANONYMOUS, so the console sees only what the ACL grants the anonymous user; creating a
 * topic from the console needs create permission like anywhere else (403 otherwise).
 */
import { expect, test } from "bun:test";
import { Connection } from "../../src/client/connection.ts";
import { startTestBroker } from "../server/helpers.ts";

test("the console API shows the anonymous user only what it may describe, and refuses the rest with 403", async () => {
  await using broker = await startTestBroker({ authorizer: "acl", kafkaPort: -1 });
  // With authorizer acl and no ACL yet, nobody (here: the anonymous native client) may do anything...
  const native = new Connection({ broker: `127.0.0.1:${broker.port}` });
  await expect(native.request("createTopic", { topic: "public-news", partitions: 1 })).rejects.toMatchObject({ code: "AUTHORIZATION_FAILED" });
  // ...until an entry allows it: everyone (`*`) may do everything under public-, and create payroll.
  broker.broker.context.acls.add([
    { principal: "*", resourceType: "topic", resourceName: "public-", patternType: "prefixed", operation: "all", permission: "allow" },
    { principal: "User:ANONYMOUS", resourceType: "topic", resourceName: "payroll", patternType: "literal", operation: "create", permission: "allow" },
  ]);
  await native.request("createTopic", { topic: "public-news", partitions: 1 });
  await native.request("createTopic", { topic: "payroll", partitions: 1 });
  native.close();
  const base = `http://127.0.0.1:${broker.broker.http!.port}`;
  const topics = (await (await fetch(`${base}/api/topics`)).json()) as { topics: Array<{ name: string }> };
  expect(topics.topics.map((topic) => topic.name)).toEqual(["public-news"]);
  expect((await fetch(`${base}/api/topics/public-news`)).status).toBe(200);
  const refused = await fetch(`${base}/api/topics/payroll`);
  expect(refused.status).toBe(403);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("AUTHORIZATION_FAILED");
  expect((await fetch(`${base}/api/messages?topic=payroll`)).status).toBe(403);
  expect((await fetch(`${base}/api/overview`)).status).toBe(403);
  const created = await fetch(`${base}/api/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "secret-plans" }) });
  expect(created.status).toBe(403);
  const allowed = await fetch(`${base}/api/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "public-events" }) });
  expect(allowed.status).toBe(201);
});
