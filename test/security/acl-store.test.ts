/**
 * The ACL store (security/acl-store.ts): entries survive a restart and a kill -9 in the middle
 * of writes (every acknowledged entry is there, the file always parses), duplicates are not
 * stored twice, delete filters remove what they match, the entry limit is checked before
 * anything is written, and a damaged file stops the broker's start-up with a message naming it.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { ACL_LIMITS, type AclEntry } from "../../src/security/acl.ts";
import { ACL_FILE_NAME, AclStore } from "../../src/security/acl-store.ts";
import { startTestBroker, tempDir } from "../server/helpers.ts";

function readEntry(topic: string, principal = "User:alice"): AclEntry {
  return { principal, resourceType: "topic", resourceName: topic, patternType: "literal", operation: "read", permission: "allow" };
}

describe("AclStore", () => {
  test("entries added are there after reopening; an entry added twice is stored once", () => {
    const dir = tempDir("runnel-acl-");
    try {
      const store = AclStore.open(dir);
      expect(store.add([readEntry("a"), readEntry("b"), readEntry("a")])).toBe(2);
      expect(store.add([readEntry("a")])).toBe(0);
      const reopened = AclStore.open(dir);
      expect(reopened.list().map((entry) => entry.resourceName)).toEqual(["a", "b"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("remove takes out every entry matching a filter, durably, and answers them", () => {
    const dir = tempDir("runnel-acl-");
    try {
      const store = AclStore.open(dir);
      store.add([readEntry("a"), readEntry("b"), readEntry("a", "User:bob")]);
      const removed = store.remove([{ principal: "User:alice" }]);
      expect(removed.map((entry) => entry.resourceName)).toEqual(["a", "b"]);
      expect(AclStore.open(dir).list()).toEqual([readEntry("a", "User:bob")]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("past the entry limit nothing is added, and LIMIT_EXCEEDED says the limit", () => {
    const store = AclStore.inMemory();
    const many = Array.from({ length: ACL_LIMITS.entriesMax }, (_, index) => readEntry(`t${index}`));
    expect(store.add(many)).toBe(ACL_LIMITS.entriesMax);
    expect(() => store.add([readEntry("one-more")])).toThrow(expect.objectContaining({ code: "LIMIT_EXCEEDED" }));
    expect(store.size).toBe(ACL_LIMITS.entriesMax);
  });

  test("survives kill -9 during writes: every acknowledged entry is there and the file parses", async () => {
    const dir = tempDir("runnel-acl-");
    try {
      for (let round = 1; round <= 3; round++) {
        const child = Bun.spawn([process.execPath, path.join(import.meta.dir, "acl-writer-process.ts"), dir, "100000"], { stdout: "pipe", stderr: "pipe" });
        let acknowledged = 0;
        const reader = child.stdout.getReader();
        let text = "";
        while (acknowledged < round * 40) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
          const last = text.trimEnd().split("\n").at(-1) ?? "";
          acknowledged = Number(last.replace("added ", "")) || acknowledged;
        }
        child.kill(9);
        await child.exited;
        const store = AclStore.open(dir);
        expect(store.size).toBeGreaterThanOrEqual(acknowledged);
        const names = new Set(store.list().map((entry) => entry.resourceName));
        for (let index = 0; index < acknowledged; index++) expect(names.has(`topic-${index}`)).toBe(true);
        expect(fs.readdirSync(dir).filter((name) => name.endsWith(".tmp"))).toEqual([]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("a damaged ACL file stops the broker's start-up with a message naming the file and what to do", async () => {
    const dir = tempDir("runnel-acl-");
    try {
      fs.writeFileSync(path.join(dir, ACL_FILE_NAME), '{"version": 1, "acls": [{"principal": "User:alice"');
      await expect(startTestBroker({ dataDir: dir, kafkaPort: -1 })).rejects.toThrow(/ACL file .*acls\.json is damaged: it is not JSON.*Restore it from a backup/);
      fs.writeFileSync(path.join(dir, ACL_FILE_NAME), JSON.stringify({ version: 1, acls: [{ principal: "alice", resourceType: "topic", resourceName: "t", operation: "read" }] }));
      await expect(startTestBroker({ dataDir: dir, kafkaPort: -1 })).rejects.toThrow(/acls\.0\.principal/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
