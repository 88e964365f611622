/**
 * `runnel topics|produce|consume` as a user runs them: child processes against the real broker.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { type RealBroker, ROOT, startRealBroker } from "../client/real-broker.ts";

let broker: RealBroker;

beforeAll(async () => {
  broker = await startRealBroker();
});

afterAll(async () => {
  expect(await broker.stop()).toBe(0);
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], stdin?: string | Uint8Array, command: string[] = [process.execPath, path.join(ROOT, "src/main.ts")]): Promise<Run> {
  const child = Bun.spawn([...command, ...args], {
    cwd: ROOT,
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

const b = () => ["--broker", broker.address];

describe("runnel CLI", () => {
  test("topics create, list, describe and delete", async () => {
    const created = await runCli(["topics", "create", "cli-a", "--partitions", "3", "--config", "retention.ms=3600000", ...b()]);
    expect(created).toMatchObject({ code: 0, stdout: "created topic cli-a with 3 partitions\n" });
    const listed = await runCli(["topics", "list", ...b()]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^TOPIC\s+PARTITIONS\s+MESSAGES\n/);
    expect(listed.stdout).toMatch(/\ncli-a\s+3\s+0\n/);
    const described = await runCli(["topics", "describe", "cli-a", "--format", "json", ...b()]);
    const description = JSON.parse(described.stdout) as { name: string; partitions: unknown[]; config: Record<string, number> };
    expect(description).toMatchObject({ name: "cli-a", config: { "retention.ms": 3_600_000 } });
    expect(description.partitions).toHaveLength(3);
    const text = await runCli(["topics", "describe", "cli-a", ...b()]);
    expect(text.stdout).toStartWith("topic cli-a: 3 partitions, 0 messages\n");
    expect(await runCli(["topics", "delete", "cli-a", ...b()])).toMatchObject({ code: 0, stdout: "deleted topic cli-a\n" });
    const gone = await runCli(["topics", "describe", "cli-a", ...b()]);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toBe("");
    expect(gone.stderr.trim().split("\n")).toHaveLength(1);
    expect(gone.stderr).toContain("[UNKNOWN_TOPIC]");
  });

  test("topics alter changes the options given and keeps the others; without --config it says what is needed", async () => {
    await runCli(["topics", "create", "cli-alter", "--config", "retention.ms=3600000", "--config", "segment.bytes=1048576", ...b()]);
    const altered = await runCli(["topics", "alter", "cli-alter", "--config", "retention.bytes=10485760", "--config", "retention.ms=60000", ...b()]);
    expect(altered.code).toBe(0);
    expect(altered.stdout).toMatch(/^altered topic cli-alter: .*retention\.ms=60000.*\n$/);
    const described = JSON.parse((await runCli(["topics", "describe", "cli-alter", "--format", "json", ...b()])).stdout) as { config: Record<string, number> };
    expect(described.config).toMatchObject({ "retention.ms": 60_000, "retention.bytes": 10_485_760, "segment.bytes": 1_048_576 });
    const bare = await runCli(["topics", "alter", "cli-alter", ...b()]);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toContain("--config KEY=VALUE");
    const unknown = await runCli(["topics", "alter", "nope", "--config", "retention.ms=1", ...b()]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("[UNKNOWN_TOPIC]");
    const help = await runCli(["topics", "--help"]);
    expect(help.stdout).toContain("alter NAME --config KEY=VALUE");
  });

  test("produce to a topic that does not exist yet creates it when the broker auto-creates topics", async () => {
    const produced = await runCli(["produce", "--topic", "cli-fresh", ...b()], "first\nsecond\n");
    expect(produced).toMatchObject({ code: 0, stdout: "", stderr: "" });
    const consumed = await runCli(["consume", "--topic", "cli-fresh", "--count", "2", ...b()]);
    expect(consumed).toMatchObject({ code: 0, stdout: "first\nsecond\n" });
  });

  test("produce reads stdin lines; consume prints them back, byte for byte", async () => {
    await runCli(["topics", "create", "cli-lines", "--partitions", "2", ...b()]);
    const lines = Array.from({ length: 2000 }, (_, index) => `line ${index} ünïcode ${"x".repeat(index % 50)}`);
    const produced = await runCli(["produce", "--topic", "cli-lines", ...b()], `${lines.join("\n")}\n`);
    expect(produced).toMatchObject({ code: 0, stdout: "", stderr: "" });
    const consumed = await runCli(["consume", "--topic", "cli-lines", "--count", "2000", ...b()]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.split("\n").slice(0, -1).sort()).toEqual([...lines].sort());
    // Each partition keeps the order the lines were sent in.
    const perPartition = await runCli(["consume", "--topic", "cli-lines", "--partition", "0", "--timeout-ms", "300", ...b()]);
    const part0 = perPartition.stdout.split("\n").slice(0, -1);
    expect(part0.length).toBeGreaterThan(0);
    expect(part0).toEqual([...part0].sort((x, y) => lines.indexOf(x) - lines.indexOf(y)));
  });

  test("keys with --key-separator, --value, --from and json output", async () => {
    await runCli(["topics", "create", "cli-keys", ...b()]);
    expect((await runCli(["produce", "--topic", "cli-keys", "--key-separator", "::", ...b()], "k1::v1\nk2::v2::more\n")).code).toBe(0);
    expect((await runCli(["produce", "--topic", "cli-keys", "--key", "k3", "--value", "v3", "--durability", "synced", ...b()])).code).toBe(0);
    const json = await runCli(["consume", "--topic", "cli-keys", "--count", "3", "--format", "json", ...b()]);
    const messages = json.stdout.trim().split("\n").map((line) => JSON.parse(line) as { key: string; value: string; offset: number });
    expect(messages.map(({ key, value, offset }) => ({ key, value, offset }))).toEqual([
      { key: "k1", value: "v1", offset: 0 },
      { key: "k2", value: "v2::more", offset: 1 },
      { key: "k3", value: "v3", offset: 2 },
    ]);
    const fromOffset = await runCli(["consume", "--topic", "cli-keys", "--from", "2", "--count", "1", ...b()]);
    expect(fromOffset.stdout).toBe("v3\n");
    const missing = await runCli(["produce", "--topic", "cli-keys", "--key-separator", ":", ...b()], "no separator here\n");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("line 1 has no key separator");
  });

  test("consume --group resumes where the last run stopped", async () => {
    await runCli(["topics", "create", "cli-group", ...b()]);
    await runCli(["produce", "--topic", "cli-group", ...b()], "a\nb\nc\nd\n");
    expect((await runCli(["consume", "--topic", "cli-group", "--group", "g", "--count", "2", ...b()])).stdout).toBe("a\nb\n");
    expect((await runCli(["consume", "--topic", "cli-group", "--group", "g", "--count", "2", ...b()])).stdout).toBe("c\nd\n");
  });

  test("failures exit non-zero with one line on stderr saying what to try", async () => {
    const unknownTopic = await runCli(["consume", "--topic", "nope", "--count", "1", ...b()]);
    expect(unknownTopic.code).toBe(1);
    expect(unknownTopic.stderr).toMatch(/^runnel consume: .*nope.*runnel topics (list|create).*\n$/);
    const badName = await runCli(["produce", "--topic", "../etc", ...b()], "x\n");
    expect(badName.code).toBe(1);
    expect(badName.stderr).toMatch(/^runnel produce: .*\[INVALID_TOPIC_NAME\]\n$/);
    const badFlag = await runCli(["consume", "--topic", "x", "--format", "xml"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toBe("runnel consume: --format must be one of text, json; got 'xml'. Try 'runnel consume --help'.\n");
    const noTopic = await runCli(["produce"]);
    expect(noTopic).toMatchObject({ code: 2, stderr: "runnel produce: --topic is required. Try 'runnel produce --help'.\n" });
  });

  test("an unreachable broker is one line naming host:port and what to try, exit 1", async () => {
    const unreachable = await runCli(["topics", "list", "--broker", "127.0.0.1:1"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^runnel topics: cannot reach the Runnel broker at 127\.0\.0\.1:1 .*runnel serve.*\n$/);
  }, 20_000);

  test("every client command has --help with examples", async () => {
    for (const command of ["topics", "produce", "consume"]) {
      const help = await runCli([command, "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`usage: runnel ${command}`);
      expect(help.stdout).toContain("examples:");
      expect(help.stdout).toContain("--broker HOST:PORT");
    }
  });
});

test("topics create and describe say '1 partition' and '1 message' in the singular", async () => {
  const created = await runCli(["topics", "create", "cli-one", "--partitions", "1", ...b()]);
  expect(created).toMatchObject({ code: 0, stdout: "created topic cli-one with 1 partition\n" });
  expect((await runCli(["produce", "--topic", "cli-one", ...b()], "only\n")).code).toBe(0);
  const described = await runCli(["topics", "describe", "cli-one", ...b()]);
  expect(described.stdout).toStartWith("topic cli-one: 1 partition, 1 message\n");
});
