/**
 * confluent-kafka 1.7 (Debian python3-confluent-kafka, over librdkafka 2.0.2), unmodified,
 * against the Kafka listener: produce with acks 0, 1 and all; an idempotent producer compressing
 * with zstd (InitProducerId, batches stored whole with their producer id and codec); consume from
 * the beginning, the end, an offset and a timestamp (offsets_for_times); a subscribed member with
 * on_assign/on_revoke callbacks commits and the next one resumes there; two members rebalance
 * when one joins and when one leaves; the AdminClient creates and deletes a topic and lists and
 * describes groups.
 *
 * Needs /usr/bin/python3 with confluent-kafka (.ci/run installs python3-confluent-kafka).
 * Outside CI the test is skipped, loudly, when that is missing; in CI (CI=true) it must run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { readBatchHeader, scanBatches } from "../../../src/format/record-batch.ts";
import { startTestBroker, type TestBroker } from "../../server/helpers.ts";
import { lineReader } from "./child-output.ts";

const PYTHON = "/usr/bin/python3";
const CLIENT = path.join(import.meta.dir, "confluent_kafka_client.py");
const STEP_MS_MAX = 25_000;
const ZSTD = 4;

const available = fs.existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import confluent_kafka"]).exitCode === 0;
if (!available) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} with confluent-kafka is required in CI (apt-get install python3-confluent-kafka)`);
  console.warn(`skipping the confluent-kafka tests: ${PYTHON} with confluent-kafka is not installed (apt-get install python3-confluent-kafka)`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts one step of the client script; `lines` yields its output as it comes. */
function start(port: number, ...args: string[]) {
  const child = Bun.spawn([PYTHON, CLIENT, String(port), ...args], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill(), STEP_MS_MAX);
  const stderr = new Response(child.stderr).text();
  return { child, timer, stderr };
}

async function python(port: number, ...args: string[]): Promise<Run> {
  const { child, timer, stderr } = start(port, ...args);
  const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr: await stderr };
}

function lines(run: Run): string[] {
  if (run.code !== 0) throw new Error(`the client failed (exit ${run.code}): ${run.stderr}`);
  return run.stdout.trimEnd().split("\n");
}

describe.skipIf(!available)("confluent-kafka against the Kafka listener", () => {
  let test_: TestBroker;
  let port: number;

  /**
   * Two messages to "ck" at each acks level, one level after the other: each level is its own
   * producer and connection, and acks=0 is never answered, so the next level waits until the
   * broker has stored the two (otherwise they could land after the next level's).
   */
  async function produceAtEach(...levels: string[]): Promise<string[]> {
    const printed: string[] = [];
    for (const level of levels) {
      const before = test_.broker.context.log.hasTopic("ck") ? test_.broker.context.log.partition("ck", 0).nextOffset : 0;
      printed.push(...lines(await python(port, "acks", level)));
      const deadline = Date.now() + STEP_MS_MAX;
      while (test_.broker.context.log.partition("ck", 0).nextOffset < before + 2 && Date.now() < deadline) await Bun.sleep(10);
    }
    return printed;
  }
  beforeAll(async () => {
    test_ = await startTestBroker();
    port = test_.broker.kafkaPort ?? 0;
  });
  afterAll(async () => {
    await test_[Symbol.asyncDispose]();
  });

  test("produces with acks 0, 1 and all: acks=0 is delivered without an offset, the others learn theirs", async () => {
    expect(await produceAtEach("0", "1", "all")).toEqual(["acks=0 - -", "acks=1 2 3", "acks=all 4 5"]);
    expect(test_.broker.context.log.partition("ck", 0).nextOffset).toBe(6);
  });

  test("an idempotent producer compressing with zstd: its batches are stored whole, with its issued producer id and the zstd codec", async () => {
    expect(lines(await python(port, "idempotent"))).toEqual([`offsets ${Array.from({ length: 10 }, (_, index) => 6 + index).join(" ")}`]);
    const partition = test_.broker.context.log.partition("ck", 0);
    const slice = partition.read(6, 1 << 20);
    expect(slice).not.toBeNull();
    try {
      const bytes = partition.readBytes(slice as NonNullable<typeof slice>);
      const spans = [...scanBatches(bytes)];
      expect(spans.length).toBeGreaterThan(0);
      for (const span of spans) {
        expect(test_.broker.context.producerIds.isIssued(span.header.producerId)).toBe(true);
        expect(readBatchHeader(bytes, span.position).attributes & 0x07).toBe(ZSTD);
      }
    } finally {
      slice?.release();
    }
  });

  test("consumes from the beginning, from an offset, and from a timestamp looked up with offsets_for_times", async () => {
    const all = lines(await python(port, "consume", "beginning"));
    expect(all.slice(0, 7)).toEqual(["0 acks=0 0", "1 acks=0 1", "2 acks=1 0", "3 acks=1 1", "4 acks=all 0", "5 acks=all 1", "6 idempotent 0"]);
    expect(all).toHaveLength(16);
    expect(lines(await python(port, "consume", "14"))).toEqual(["14 idempotent 8", "15 idempotent 9"]);
    const beforeMs = Date.now();
    await Bun.sleep(5); // the next batch's timestamps must be later than beforeMs
    expect(await produceAtEach("0", "1", "all")).toEqual(["acks=0 - -", "acks=1 18 19", "acks=all 20 21"]);
    expect(lines(await python(port, "consume", `@${beforeMs + 1}`))).toEqual(["16 acks=0 0", "17 acks=0 1", "18 acks=1 0", "19 acks=1 1", "20 acks=all 0", "21 acks=all 1"]);
  });

  test("consumes from the end: only what is produced after it started", async () => {
    const reader = start(port, "consume", "end");
    const output = lineReader(reader.child.stdout);
    expect(await output.line()).toBe("ready");
    const before = test_.broker.context.log.partition("ck", 0).nextOffset;
    expect(await produceAtEach("1")).toEqual([`acks=1 ${before} ${before + 1}`]);
    const rest = await output.rest();
    clearTimeout(reader.timer);
    expect([await reader.child.exited, rest]).toEqual([0, `${before} acks=1 0\n`]);
  });

  test("a subscribed member with assignment callbacks commits; the next member resumes after the commit", async () => {
    const end = test_.broker.context.log.partition("ck", 0).nextOffset;
    expect(lines(await python(port, "group", "5"))).toEqual(["assigned ck/0", "revoked ck/0", "read 0 1 2 3 4", "committed 5"]);
    expect(test_.broker.context.offsets.fetch("ckg", "ck", 0)?.offset).toBe(5);
    const rest = Array.from({ length: end - 5 }, (_, index) => 5 + index).join(" ");
    expect(lines(await python(port, "group", String(end)))).toEqual(["assigned ck/0", "revoked ck/0", `read ${rest}`, `committed ${end}`]);
  });

  test("two members rebalance when the second joins (they split the partitions) and when it leaves (the first takes all back)", async () => {
    test_.broker.context.log.createTopic("ck4", { partitions: 4 });
    const all = "ck4/0,ck4/1,ck4/2,ck4/3";
    const events = lines(await python(port, "rebalance"));
    const firstHalf = events[2]?.replace("first assigned ", "") ?? "";
    const secondHalf = events[6]?.replace("second assigned ", "") ?? "";
    expect(events).toEqual([
      `first assigned ${all}`,
      `first revoked ${all}`,
      `first assigned ${firstHalf}`,
      `first revoked ${firstHalf}`,
      `first assigned ${all}`,
      `first revoked ${all}`,
      `second assigned ${secondHalf}`,
      `second revoked ${secondHalf}`,
    ]);
    expect([firstHalf.split(",").length, secondHalf.split(",").length]).toEqual([2, 2]);
    expect([...firstHalf.split(","), ...secondHalf.split(",")].sort().join(",")).toBe(all);
  });

  test("static membership: a member restarted with its group.instance.id takes the old one's partitions without a rebalance", async () => {
    if (!test_.broker.context.log.hasTopic("ck4")) test_.broker.context.log.createTopic("ck4", { partitions: 4 });
    const events = lines(await python(port, "static"));
    const firstHalf = events[2]?.replace("first assigned ", "") ?? "";
    const secondHalf = events[4]?.replace("second assigned ", "") ?? "";
    // The first member hears of one rebalance only (the second's first join); the third, which
    // replaced the second under instance id "two", gets the second's partitions, generation unchanged.
    expect(events).toEqual([
      "first assigned ck4/0,ck4/1,ck4/2,ck4/3",
      "first revoked ck4/0,ck4/1,ck4/2,ck4/3",
      `first assigned ${firstHalf}`,
      `first revoked ${firstHalf}`,
      `second assigned ${secondHalf}`,
      `second revoked ${secondHalf}`,
      `third assigned ${secondHalf}`,
      `third revoked ${secondHalf}`,
    ]);
    expect([...firstHalf.split(","), ...secondHalf.split(",")].sort().join(",")).toBe("ck4/0,ck4/1,ck4/2,ck4/3");
    const group = test_.broker.context.groups.classicGroup("ckstatic");
    expect([group?.generation, group?.members.size]).toEqual([2, 2]);
    expect([...(group?.members.values() ?? [])].map((member) => member.instanceId).sort()).toEqual(["one", "two"]);
  });

  test("the AdminClient creates a topic, lists and describes the groups (live and empty), and deletes the topic", async () => {
    const output = lines(await python(port, "admin"));
    expect(output).toContain("created ckadmin");
    expect(output).toContain("partitions 3");
    expect(output).toContain("group ckadmin-group Stable consumer range 1");
    expect(output).toContain("group ckg Empty consumer - 0");
    expect(output).toContain("deleted ckadmin");
    expect(test_.broker.context.log.hasTopic("ckadmin")).toBe(false);
  });
});
