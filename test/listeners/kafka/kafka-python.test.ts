/**
 * kafka-python 2.0.2 (Debian python3-kafka), unmodified, against the Kafka listener: it infers
 * the broker's version from ApiVersions and then uses fixed versions, so this checks the older
 * ones (Metadata v1-ish, Produce v3+, Fetch v4+, ListOffsets v1, OffsetCommit v2, OffsetFetch v1).
 * Produce with acks=all, consume in assign mode, and commit and resume in a group without
 * membership (assign mode), the offsets landing in the store native commits use; a subscribed
 * consumer in a real group (JoinGroup v2, SyncGroup v1, Heartbeat v1, OffsetCommit v2 with its
 * generation) commits and a later member resumes, the offset visible to `runnel groups describe`.
 *
 * Needs /usr/bin/python3 with kafka-python (.ci/run installs python3-kafka). Outside CI the test
 * is skipped, loudly, when that is missing; in CI (CI=true) it must run.
 */
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startTestBroker } from "../../server/helpers.ts";
import { ROOT } from "../../client/real-broker.ts";

const PYTHON = "/usr/bin/python3";
const CLIENT = path.join(import.meta.dir, "kafka_python_client.py");

const available = fs.existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import kafka"]).exitCode === 0;
if (!available) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} with kafka-python is required in CI (apt-get install python3-kafka)`);
  console.warn(`skipping the kafka-python tests: ${PYTHON} with kafka-python is not installed (apt-get install python3-kafka)`);
}

async function python(port: number | null, step: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([PYTHON, CLIENT, String(port), step], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
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
});
