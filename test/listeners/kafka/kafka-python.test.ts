/**
 * kafka-python 2.0.2 (Debian python3-kafka), unmodified, against the Kafka listener: it infers
 * the broker's version from ApiVersions and then uses fixed versions, so this checks the older
 * ones (Metadata v1-ish, Produce v3+, Fetch v4+, ListOffsets v1, OffsetCommit v2, OffsetFetch v1).
 * Produce with acks=all, consume in assign mode, and commit and resume in a group without
 * membership (assign mode), the offsets landing in the store native commits use; a subscribed
 * consumer in a real group (JoinGroup v2, SyncGroup v1, Heartbeat v1, OffsetCommit v2 with its
 * generation) commits and a later member resumes, the offset visible to `runnel groups describe`.
 * Also: produce with acks 0 and 1; consume from the end, an offset and a timestamp
 * (offsets_for_times); two members rebalance when one joins and one leaves; KafkaAdminClient
 * creates and deletes a topic and lists and describes groups.
 *
 * Needs /usr/bin/python3 with kafka-python (.ci/run installs python3-kafka). Outside CI the test
 * is skipped, loudly, when that is missing; in CI (CI=true) it must run.
 */
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startTestBroker, type TestBroker } from "../../server/helpers.ts";
import { lineReader } from "./child-output.ts";
import { ROOT } from "../../client/real-broker.ts";

const PYTHON = "/usr/bin/python3";
const CLIENT = path.join(import.meta.dir, "kafka_python_client.py");

const available = fs.existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import kafka"]).exitCode === 0;
if (!available) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} with kafka-python is required in CI (apt-get install python3-kafka)`);
  console.warn(`skipping the kafka-python tests: ${PYTHON} with kafka-python is not installed (apt-get install python3-kafka)`);
}

async function python(port: number | null, step: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([PYTHON, CLIENT, String(port), step, ...args], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Two messages to "py" at each acks level in turn, waiting until the broker stored them: acks=0
 * is not answered and each level is its own producer and connection, so without the wait its
 * messages could land after the next level's.
 */
async function produceAtEach(test: TestBroker, ...levels: string[]): Promise<string> {
  let printed = "";
  for (const level of levels) {
    const before = test.broker.context.log.hasTopic("py") ? test.broker.context.log.partition("py", 0).nextOffset : 0;
    const run = await python(test.broker.kafkaPort, "acks", level);
    if (run.code !== 0) throw new Error(`kafka-python failed: ${run.stderr}`);
    printed += run.stdout;
    const deadline = Date.now() + 30_000;
    while (test.broker.context.log.partition("py", 0).nextOffset < before + 2 && Date.now() < deadline) await Bun.sleep(10);
  }
  return printed;
}

describe.skipIf(!available)("kafka-python against the Kafka listener", () => {
  test("produces with acks=all, consumes from the earliest offset, and commits and resumes in assign mode", async () => {
    await using test = await startTestBroker();
    const port = test.broker.kafkaPort;
    const produced = await python(port, "produce");
    expect(produced.code).toBe(0);
    expect(produced.stdout).toContain("api_version");
    const consumed = await python(port, "consume");
    expect(consumed.stdout.trimEnd().split("\n")).toEqual(["0 k0 v0", "1 k1 v1", "2 k2 v2", "3 k3 v3", "4 k4 v4"]);
    const first = await python(port, "commit");
    expect(first.stdout).toBe("read 0 1 2 3 4\ncommitted 5\n");
    expect(test.broker.context.offsets.fetch("pyg", "py", 0)?.offset).toBe(5);
    expect((await python(port, "produce")).code).toBe(0);
    const resumed = await python(port, "commit");
    expect(resumed.stdout).toBe("read 5 6 7 8 9\ncommitted 10\n");
  });

  test("a subscribed KafkaConsumer joins a group, consumes and commits; the next member resumes after the commit; runnel groups describe shows the offset", async () => {
    await using test = await startTestBroker();
    const port = test.broker.kafkaPort;
    expect((await python(port, "produce")).code).toBe(0);
    const first = await python(port, "group");
    expect(first.stdout).toBe("assigned py/0\nread 0 1 2 3 4\ncommitted 5\n");
    expect((await python(port, "produce")).code).toBe(0);
    const resumed = await python(port, "group");
    expect(resumed.stdout).toBe("assigned py/0\nread 5 6 7 8 9\ncommitted 10\n");
    const cli = Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "groups", "describe", "pymembers", "--broker", `127.0.0.1:${test.port}`, "--format", "json"], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const described = JSON.parse(await new Response(cli.stdout).text());
    expect(await cli.exited).toBe(0);
    expect(described.partitions).toEqual([{ topic: "py", partition: 0, committed: 10, end: 10, memberId: "-", clientId: "-", lag: 0 }]);
  });

  test("produces with acks 0 and 1; consumes from an offset, from a timestamp (offsets_for_times) and from the end", async () => {
    await using test = await startTestBroker();
    const port = test.broker.kafkaPort;
    expect((await python(port, "produce")).code).toBe(0);
    expect(await produceAtEach(test, "0", "1")).toBe("acks=0 -1 -1\nacks=1 7 8\n"); // acks=0: sent, no offset learned
    expect((await python(port, "seek", "6")).stdout).toBe("6 acks=0 1\n7 acks=1 0\n8 acks=1 1\n");
    const beforeMs = Date.now();
    await Bun.sleep(5); // the next batch's timestamps must be later than beforeMs
    expect(await produceAtEach(test, "0", "1")).toBe("acks=0 -1 -1\nacks=1 11 12\n");
    expect((await python(port, "seek", `@${beforeMs + 1}`)).stdout).toBe("9 acks=0 0\n10 acks=0 1\n11 acks=1 0\n12 acks=1 1\n");
    const reader = Bun.spawn([PYTHON, CLIENT, String(port), "seek", "end"], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => reader.kill(), 30_000);
    const output = lineReader(reader.stdout);
    expect(await output.line()).toBe("ready");
    expect(await produceAtEach(test, "1")).toBe("acks=1 13 14\n");
    const rest = await output.rest();
    clearTimeout(timer);
    expect([await reader.exited, rest]).toEqual([0, "13 acks=1 0\n"]);
  });

  test("two subscribed members split the partitions when the second joins; the first takes all back when it leaves", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("py4", { partitions: 4 });
    const all = "py4/0,py4/1,py4/2,py4/3";
    const pair = await python(test.broker.kafkaPort, "pair");
    const events = pair.stdout.trimEnd().split("\n");
    const firstHalf = events[1]?.replace("first ", "") ?? "";
    const secondHalf = events[3]?.replace("second ", "") ?? "";
    expect(events).toEqual([`first ${all}`, `first ${firstHalf}`, `first ${all}`, `second ${secondHalf}`]);
    expect([...firstHalf.split(","), ...secondHalf.split(",")].sort().join(",")).toBe(all);
    expect(firstHalf.split(",")).toHaveLength(2);
  });

  test("KafkaAdminClient creates a topic, lists and describes a live group, and deletes the topic", async () => {
    await using test = await startTestBroker();
    const admin = await python(test.broker.kafkaPort, "admin");
    expect(admin.stdout).toBe("created pyadmin\nlisted pyadmin-group consumer\ndescribed pyadmin-group Stable consumer range 1\ndeleted pyadmin\n");
    expect(test.broker.context.log.hasTopic("pyadmin")).toBe(false);
  });
});
