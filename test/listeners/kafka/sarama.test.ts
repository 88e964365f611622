/**
 * Sarama 1.22 (Debian golang-github-shopify-sarama-dev, Go 1.19), unmodified, against the Kafka
 * listener: a tiny Go program (sarama/main.go) built offline (GO111MODULE=off, GOPATH=
 * /usr/share/gocode) once per source version, cached in the temp dir. Sarama does not negotiate
 * versions: it sends those of the Kafka version it is told (V2_0_0_0 here, for record batches) —
 * Produce v3, Fetch v4, Metadata v5, ListOffsets v1, JoinGroup v1, SyncGroup v0, Heartbeat v0,
 * OffsetCommit v1, OffsetFetch v1, LeaveGroup v0. Produce with acks 0, 1 and all; consume from
 * the oldest, the newest, an offset and a timestamp; a ConsumerGroup member commits and the next
 * resumes; two members rebalance when one joins and one leaves; ClusterAdmin creates and deletes
 * a topic and lists and describes groups; every compression codec produced and consumed back.
 *
 * Sarama 1.22 leaves a batch's maxTimestamp at -1 (Kafka fills it in; so does our produce path,
 * format/kafka-max-timestamp.ts) and commits with OffsetCommit v1 — the two things it found.
 *
 * Needs `go` and Sarama's sources (.ci/run installs golang-go, golang-github-shopify-sarama-dev
 * and gcc for its cgo zstd). Outside CI the test is skipped, loudly, when they are missing; in
 * CI (CI=true) it must run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readBatchHeader, scanBatches } from "../../../src/format/record-batch.ts";
import { startTestBroker, type TestBroker } from "../../server/helpers.ts";
import { lineReader } from "./child-output.ts";

const GOPATH = "/usr/share/gocode";
const SOURCE = path.join(import.meta.dir, "sarama", "main.go");
const GO = Bun.which("go");
const STEP_MS_MAX = 25_000;
const BUILD_MS_MAX = 300_000;

const available = GO !== null && fs.existsSync(path.join(GOPATH, "src/github.com/Shopify/sarama")) && Bun.which("gcc") !== null;
if (!available) {
  if (process.env.CI === "true") throw new Error("go, gcc and Sarama are required in CI (apt-get install golang-go golang-github-shopify-sarama-dev gcc)");
  console.warn("skipping the Sarama tests: go, gcc or Sarama's sources are missing (apt-get install golang-go golang-github-shopify-sarama-dev gcc)");
}

/** Builds the client once per version of its source; later runs reuse the binary. */
async function buildClient(): Promise<string> {
  const source = fs.readFileSync(SOURCE);
  const dir = path.join(os.tmpdir(), `runnel-sarama-${Bun.hash(source).toString(16)}`);
  const binary = path.join(dir, "sarama-client");
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}`;
  const build = Bun.spawn([GO ?? "go", "build", "-o", partial, SOURCE], {
    cwd: dir,
    env: { ...process.env, GO111MODULE: "off", GOPATH, GOCACHE: path.join(dir, "cache"), GOFLAGS: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => build.kill(), BUILD_MS_MAX);
  const [stderr, code] = await Promise.all([new Response(build.stderr).text(), build.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`go build of ${SOURCE} failed (exit ${code}): ${stderr}`);
  fs.renameSync(partial, binary); // atomic: a concurrent run sees the whole binary or none
  return binary;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function lines(run: Run): string[] {
  if (run.code !== 0) throw new Error(`the Sarama client failed (exit ${run.code}): ${run.stderr}`);
  return run.stdout.trimEnd().split("\n");
}

describe.skipIf(!available)("Sarama against the Kafka listener", () => {
  let test_: TestBroker;
  let port: number;
  let client: string;

  function start(...args: string[]) {
    const child = Bun.spawn([client, String(port), ...args], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => child.kill(), STEP_MS_MAX);
    return { child, timer, stderr: new Response(child.stderr).text() };
  }

  async function sarama(...args: string[]): Promise<Run> {
    const { child, timer, stderr } = start(...args);
    const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    clearTimeout(timer);
    return { code, stdout, stderr: await stderr };
  }

  /** Two messages to "sa" at each acks level in turn, waiting until the broker stored them (acks=0 is not answered, and each level has its own connection). */
  async function produceAtEach(...levels: string[]): Promise<string[]> {
    const printed: string[] = [];
    for (const level of levels) {
      const before = test_.broker.context.log.hasTopic("sa") ? test_.broker.context.log.partition("sa", 0).nextOffset : 0;
      printed.push(...lines(await sarama("acks", level)));
      const deadline = Date.now() + STEP_MS_MAX;
      while (test_.broker.context.log.partition("sa", 0).nextOffset < before + 2 && Date.now() < deadline) await Bun.sleep(10);
    }
    return printed;
  }

  beforeAll(async () => {
    client = await buildClient();
    test_ = await startTestBroker();
    port = test_.broker.kafkaPort ?? 0;
  }, BUILD_MS_MAX);
  afterAll(async () => {
    await test_?.[Symbol.asyncDispose]();
  });

  test("produces with acks 0, 1 and all (its batches' unset maxTimestamp filled in); acks=0 learns no offsets", async () => {
    expect(await produceAtEach("0", "1", "all")).toEqual(["acks=0 0 0", "acks=1 2 3", "acks=all 4 5"]);
    expect(test_.broker.context.log.partition("sa", 0).nextOffset).toBe(6);
  });

  test("consumes from the oldest offset, from an offset, and from a timestamp looked up with GetOffset", async () => {
    expect(lines(await sarama("consume", "oldest"))).toEqual(["0 acks=0 0", "1 acks=0 1", "2 acks=1 0", "3 acks=1 1", "4 acks=all 0", "5 acks=all 1"]);
    expect(lines(await sarama("consume", "4"))).toEqual(["4 acks=all 0", "5 acks=all 1"]);
    const beforeMs = Date.now();
    await Bun.sleep(5); // the next batch's timestamps must be later than beforeMs
    expect(await produceAtEach("0", "1", "all")).toEqual(["acks=0 0 0", "acks=1 8 9", "acks=all 10 11"]);
    expect(lines(await sarama("consume", `@${beforeMs + 1}`))).toEqual(["6 acks=0 0", "7 acks=0 1", "8 acks=1 0", "9 acks=1 1", "10 acks=all 0", "11 acks=all 1"]);
  });

  test("consumes from the newest offset: only what is produced after it started", async () => {
    const reader = start("newest");
    const output = lineReader(reader.child.stdout);
    expect(await output.line()).toBe("ready");
    const before = test_.broker.context.log.partition("sa", 0).nextOffset;
    // "ready" comes once ConsumePartition resolved the newest offset, before any of these.
    expect(await produceAtEach("1")).toEqual([`acks=1 ${before} ${before + 1}`]);
    const rest = await output.rest();
    clearTimeout(reader.timer);
    expect([await reader.child.exited, rest]).toEqual([0, `${before} acks=1 0\n`]);
  });

  test("compressed batches (gzip, snappy, lz4, zstd) are stored as they came, their unset maxTimestamp filled in, and consumed back", async () => {
    expect(lines(await sarama("codecs"))).toEqual(["gzip 0 1", "snappy 2 3", "lz4 4 5", "zstd 6 7"]);
    const partition = test_.broker.context.log.partition("sz", 0);
    const slice = partition.read(0, 1 << 20);
    expect(slice).not.toBeNull();
    try {
      const bytes = partition.readBytes(slice as NonNullable<typeof slice>);
      const headers = [...scanBatches(bytes)].map((span) => readBatchHeader(bytes, span.position));
      expect(headers.map((header) => header.attributes & 0x07)).toEqual([1, 2, 3, 4]);
      expect(headers.every((header) => header.maxTimestamp >= header.firstTimestamp)).toBe(true);
    } finally {
      slice?.release();
    }
    expect(lines(await sarama("consume", "sz:oldest"))).toEqual(["0 gzip 0", "1 gzip 1", "2 snappy 0", "3 snappy 1", "4 lz4 0", "5 lz4 1", "6 zstd 0", "7 zstd 1"]);
  });

  test("a ConsumerGroup member commits (OffsetCommit v1); the next member resumes after the commit", async () => {
    expect(lines(await sarama("group", "4"))).toEqual(["member claims sa/0", "read 0 1 2 3"]);
    expect(test_.broker.context.offsets.fetch("sag", "sa", 0)?.offset).toBe(4);
    const end = test_.broker.context.log.partition("sa", 0).nextOffset;
    const rest = Array.from({ length: end - 4 }, (_, index) => 4 + index).join(" ");
    expect(lines(await sarama("group", String(end)))).toEqual(["member claims sa/0", `read ${rest}`]);
    expect(test_.broker.context.offsets.fetch("sag", "sa", 0)?.offset).toBe(end);
  });

  test("two ConsumerGroup members split the partitions when the second joins; the first takes all back when it leaves", async () => {
    test_.broker.context.log.createTopic("sa4", { partitions: 4 });
    const all = "sa4/0,sa4/1,sa4/2,sa4/3";
    const events = lines(await sarama("pair"));
    const firstHalf = events[1]?.replace("first claims ", "") ?? "";
    const secondHalf = events[3]?.replace("second claims ", "") ?? "";
    expect(events).toEqual([`first claims ${all}`, `first claims ${firstHalf}`, `first claims ${all}`, `second claims ${secondHalf}`]);
    expect([firstHalf.split(",").length, secondHalf.split(",").length]).toEqual([2, 2]);
    expect([...firstHalf.split(","), ...secondHalf.split(",")].sort().join(",")).toBe(all);
  });

  test("ClusterAdmin creates a topic, lists and describes the groups, and deletes the topic", async () => {
    const output = lines(await sarama("admin"));
    expect(output).toHaveLength(4);
    expect([output[0], output[2], output[3]]).toEqual(["created saadmin", "described sag Empty consumer 0", "deleted saadmin"]);
    expect(output[1]?.replace(/^groups /, "").split(", ")).toContain("sag consumer"); // "groups sag consumer, ..."
    expect(test_.broker.context.log.hasTopic("saadmin")).toBe(false);
  });
});
