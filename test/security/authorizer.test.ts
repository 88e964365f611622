/**
 * The authorization rule (security/authorizer.ts) on Sessions built directly: off by default,
 * super-users pass, no allow means denied, deny wins, prefixes and the literal `*`, the `*`
 * principal, implied describe, cluster entries, and the anonymous principal.
 */
import { describe, expect, test } from "bun:test";
import { type AclEntry, aclEntrySchema } from "../../src/security/acl.ts";
import { AclStore } from "../../src/security/acl-store.ts";
import { authorize, CLUSTER, groupResource, topicResource } from "../../src/security/authorizer.ts";
import { Session } from "../../src/security/session.ts";

function sessionOf(name: string | null): Session {
  const session = new Session("native", "127.0.0.1");
  if (name !== null) session.principal = { kind: "user", name };
  return session;
}

function entry(fields: Record<string, unknown>): AclEntry {
  return aclEntrySchema.parse(fields);
}

function contextOf(entries: AclEntry[], superUsers = "") {
  return { config: { authorizer: "acl" as const, superUsers }, acls: AclStore.inMemory(entries) };
}

describe("authorize", () => {
  test("with authorizer none everything is allowed, whatever the ACL says", () => {
    const context = { config: { authorizer: "none" as const, superUsers: "" }, acls: AclStore.inMemory([entry({ principal: "*", resourceType: "topic", resourceName: "*", operation: "all", permission: "deny" })]) };
    expect(authorize(context, sessionOf("alice"), "write", topicResource("logs"))).toBe(true);
  });

  test("with authorizer acl and no matching allow, the request is denied; a super-user still passes", () => {
    const context = contextOf([], "root, admin");
    expect(authorize(context, sessionOf("alice"), "read", topicResource("logs"))).toBe(false);
    expect(authorize(context, sessionOf("admin"), "delete", topicResource("logs"))).toBe(true);
    expect(authorize(context, sessionOf("admin"), "alter", CLUSTER)).toBe(true);
  });

  test("a change of superUsers or authorizer (as SIGHUP applies it to the live config) holds from the next check", () => {
    const context = { config: { authorizer: "acl" as "acl" | "none", superUsers: "admin" }, acls: AclStore.inMemory() };
    expect(authorize(context, sessionOf("ops"), "alter", CLUSTER)).toBe(false);
    context.config.superUsers = "admin,ops";
    expect(authorize(context, sessionOf("ops"), "alter", CLUSTER)).toBe(true);
    context.config.superUsers = "admin";
    expect(authorize(context, sessionOf("ops"), "alter", CLUSTER)).toBe(false);
    context.config.authorizer = "none";
    expect(authorize(context, sessionOf("ops"), "alter", CLUSTER)).toBe(true);
  });

  test("a prefixed allow covers names that start with it and nothing else", () => {
    const context = contextOf([entry({ principal: "User:alice", resourceType: "topic", resourceName: "logs-", patternType: "prefixed", operation: "read" })]);
    expect(authorize(context, sessionOf("alice"), "read", topicResource("logs-app"))).toBe(true);
    expect(authorize(context, sessionOf("alice"), "read", topicResource("logs"))).toBe(false);
    expect(authorize(context, sessionOf("alice"), "write", topicResource("logs-app"))).toBe(false);
    expect(authorize(context, sessionOf("bob"), "read", topicResource("logs-app"))).toBe(false);
    expect(authorize(context, sessionOf("alice"), "read", groupResource("logs-app"))).toBe(false);
  });

  test("deny wins over any allow, including one for all operations and everyone", () => {
    const context = contextOf([
      entry({ principal: "*", resourceType: "topic", resourceName: "*", operation: "all" }),
      entry({ principal: "User:alice", resourceType: "topic", resourceName: "payroll", operation: "read", permission: "deny" }),
    ]);
    expect(authorize(context, sessionOf("alice"), "read", topicResource("payroll"))).toBe(false);
    expect(authorize(context, sessionOf("alice"), "write", topicResource("payroll"))).toBe(true);
    expect(authorize(context, sessionOf("bob"), "read", topicResource("payroll"))).toBe(true);
  });

  test("read, write, delete and alter imply describe; create does not; a deny of read leaves describe", () => {
    for (const operation of ["read", "write", "delete", "alter"]) {
      const context = contextOf([entry({ principal: "User:alice", resourceType: "topic", resourceName: "t", operation })]);
      expect(authorize(context, sessionOf("alice"), "describe", topicResource("t"))).toBe(true);
    }
    const create = contextOf([entry({ principal: "User:alice", resourceType: "topic", resourceName: "t", operation: "create" })]);
    expect(authorize(create, sessionOf("alice"), "describe", topicResource("t"))).toBe(false);
  });

  test("a deny for all operations also denies describe", () => {
    const context = contextOf([
      entry({ principal: "User:alice", resourceType: "group", resourceName: "g", operation: "read" }),
      entry({ principal: "User:alice", resourceType: "group", resourceName: "g", operation: "all", permission: "deny" }),
    ]);
    expect(authorize(context, sessionOf("alice"), "describe", groupResource("g"))).toBe(false);
  });

  test("cluster entries match the cluster whatever name they were given", () => {
    const context = contextOf([entry({ principal: "User:ops", resourceType: "cluster", operation: "describe" })]);
    expect(authorize(context, sessionOf("ops"), "describe", CLUSTER)).toBe(true);
    expect(authorize(context, sessionOf("ops"), "alter", CLUSTER)).toBe(false);
    expect(context.acls.list()[0]?.resourceName).toBe("cluster");
  });

  test("an unauthenticated session is User:ANONYMOUS: matched by `*` and by its own entries", () => {
    const context = contextOf([entry({ principal: "User:ANONYMOUS", resourceType: "topic", resourceName: "public", operation: "read" })]);
    expect(authorize(context, sessionOf(null), "read", topicResource("public"))).toBe(true);
    expect(authorize(context, sessionOf(null), "read", topicResource("private"))).toBe(false);
  });

  test("entries are validated: a principal must be User:<name> or *, a topic entry needs its name", () => {
    expect(aclEntrySchema.safeParse({ principal: "alice", resourceType: "topic", resourceName: "t", operation: "read" }).success).toBe(false);
    expect(aclEntrySchema.safeParse({ principal: "User:alice", resourceType: "topic", operation: "read" }).success).toBe(false);
    expect(aclEntrySchema.safeParse({ principal: "User:alice", resourceType: "topic", resourceName: "t", operation: "fly" }).success).toBe(false);
    expect(aclEntrySchema.safeParse({ principal: "User:alice", resourceType: "topic", resourceName: "t".repeat(300), operation: "read" }).success).toBe(false);
  });
});
