/**
 * `runnel groups list|describe|delete|reset-offsets` as a user runs them: child processes
 * against the real broker, with a group member joined over the protocol.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { Admin } from "../../src/client/admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { type RealBroker, ROOT, startRealBroker } from "../client/real-broker.ts";

let broker: RealBroker;

beforeAll(async () => {
  broker = await startRealBroker();
});

afterAll(async () => {
  expect(await broker.stop()).toBe(0);
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

async function runGroups(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "groups", ...args, "--broker", broker.address], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe("runnel groups", () => {
  test("list and describe show members, committed and end offsets and lag; delete and reset-offsets wait for an empty group", async () => {
    await using admin = Object.assign(new Admin({ broker: broker.address }), { [Symbol.asyncDispose]: () => admin.close() });
    await admin.createTopic("orders", { partitions: 2 });
    const producer = new Producer({ broker: broker.address });
    for (let index = 0; index < 5; index++) for (const partition of [0, 1]) void producer.send("orders", { partition, value: `m${index}` });
    await producer.close();
    await admin.commitOffsets("mailer", [{ topic: "orders", partition: 0, offset: 3 }]);
    const joined = await admin.connection.request("joinGroup", { group: "mailer", topics: ["orders"], clientId: "tester" });

    const listed = await runGroups(["list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/mailer\s+native\s+stable\s+1\s+\d+/);

    const described = await runGroups(["describe", "mailer"]);
    expect(described.code).toBe(0);
    expect(described.stdout).toContain("group mailer (native, stable");
    expect(described.stdout).toMatch(new RegExp(`orders\\s+0\\s+3\\s+5\\s+2\\s+${joined.memberId as string}\\s+tester`));
    expect(described.stdout).toMatch(/orders\s+1\s+-\s+5\s+-\s+\S+\s+tester/);

    const refusedDelete = await runGroups(["delete", "mailer"]);
    expect(refusedDelete.code).toBe(1);
    expect(refusedDelete.stderr).toContain("[GROUP_NOT_EMPTY]");
    const refusedReset = await runGroups(["reset-offsets", "mailer", "--topic", "orders", "--to", "earliest"]);
    expect(refusedReset.code).toBe(1);
    expect(refusedReset.stderr).toContain("[GROUP_NOT_EMPTY]");

    await admin.connection.request("leaveGroup", { group: "mailer", memberId: joined.memberId });
    for (const [to, expected] of [["earliest", [0, 0]], ["latest", [5, 5]], ["2", [2, 2]], ["99", [5, 5]]] as const) {
      const reset = await runGroups(["reset-offsets", "mailer", "--topic", "orders", "--to", to]);
      expect(reset.code).toBe(0);
      expect((await admin.committedOffsets("mailer", [0, 1].map((partition) => ({ topic: "orders", partition })))).map((entry) => entry.offset)).toEqual([...expected]);
    }
    const json = JSON.parse((await runGroups(["describe", "mailer", "--format", "json"])).stdout) as { state: string; partitions: Array<{ lag: number }> };
    expect(json.state).toBe("empty");
    expect(json.partitions.map((entry) => entry.lag)).toEqual([0, 0]);

    expect((await runGroups(["reset-offsets", "mailer", "--topic", "orders", "--to", "yesterday-ish"])).code).toBe(2);
    const deleted = await runGroups(["delete", "mailer"]);
    expect(deleted.code).toBe(0);
    expect((await runGroups(["list"])).stdout).not.toContain("mailer");
  });
});
