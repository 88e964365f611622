/**
 * kcat (librdkafka 2.0.2) balanced consumer groups (`kcat -G`) against the Kafka listener: two
 * members on a 4-partition topic share it, every message is consumed once across them; when one
 * leaves, the other takes every partition. The group is the broker's coordinator's (classic
 * protocol, librdkafka's own range/roundrobin assignor in the leader).
 *
 * Needs `kcat` on the PATH (.ci/run installs it); skipped loudly outside CI when missing.
 */
import { describe, expect, test } from "bun:test";
import { Producer } from "../../../src/client/index.ts";
import { startTestBroker } from "../../server/helpers.ts";

const KCAT = Bun.which("kcat");
if (KCAT === null) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat group tests: kcat is not installed (apt-get install kcat)");
}

const WAIT_MS_MAX = 30_000;

/** A `kcat -G` member whose output lines ("partition:value") are collected as they come. */
class GroupMember {
  readonly lines: string[] = [];
  private readonly child: ReturnType<typeof Bun.spawn>;

  constructor(port: number, group: string, topic: string) {
    this.child = Bun.spawn(
      [KCAT ?? "kcat", "-b", `127.0.0.1:${port}`, "-G", group, "-u", "-q", "-f", "%p:%s\\n",
        "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300",
        "-X", "auto.commit.interval.ms=200", "-X", "topic.metadata.refresh.interval.ms=1000", topic],
      { stdin: "ignore", stdout: "pipe", stderr: "ignore" },
    );
    void this.collect(this.child.stdout as ReadableStream<Uint8Array>);
  }

  private async collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      this.lines.push(...parts.filter((line) => line !== ""));
    }
  }

  partitions(): Set<number> {
    return new Set(this.lines.map((line) => Number(line.split(":")[0])));
  }

  /** SIGTERM: kcat closes its consumer (commits, LeaveGroup) and exits. */
  async stop(): Promise<void> {
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.child.exited;
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

async function produce(port: number, topic: string, prefix: string, perPartition: number): Promise<string[]> {
  const producer = new Producer({ broker: `127.0.0.1:${port}`, lingerMs: 0 });
  const sent: string[] = [];
  try {
    for (let partition = 0; partition < 4; partition++) {
      for (let index = 0; index < perPartition; index++) {
        const value = `${prefix}-${partition}-${index}`;
        await producer.send(topic, { value, partition });
        sent.push(`${partition}:${value}`);
      }
    }
  } finally {
    await producer.close();
  }
  return sent;
}

describe.skipIf(KCAT === null)("kcat balanced consumer groups against the Kafka listener", () => {
  test("two kcat -G members share a 4-partition topic, each message consumed once; when one leaves the other takes every partition", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("shared", { partitions: 4 });
    const kafkaPort = test.broker.kafkaPort ?? 0;
    const groups = test.broker.context.groups;
    const one = new GroupMember(kafkaPort, "kg", "shared");
    const two = new GroupMember(kafkaPort, "kg", "shared");
    try {
      await until(() => groups.classicGroup("kg")?.state === "stable" && groups.classicGroup("kg")?.members.size === 2, "a stable group of two");
      const first = await produce(test.port, "shared", "a", 10);
      await until(() => one.lines.length + two.lines.length >= first.length, "the first 40 messages");
      expect([...one.lines, ...two.lines].sort()).toEqual([...first].sort());
      expect(one.lines.length).toBeGreaterThan(0);
      expect(two.lines.length).toBeGreaterThan(0);
      const shared = [...one.partitions()].filter((partition) => two.partitions().has(partition));
      expect(shared).toEqual([]);

      await one.stop();
      await until(() => groups.classicGroup("kg")?.state === "stable" && groups.classicGroup("kg")?.members.size === 1, "the group to settle on one member");
      const seenBefore = two.lines.length;
      const second = await produce(test.port, "shared", "b", 5);
      await until(() => second.every((line) => two.lines.includes(line)), "the remaining member to read all 4 partitions");
      expect(new Set(two.lines.slice(seenBefore).filter((line) => line.includes(":b-")).map((line) => line.split(":")[0]))).toEqual(new Set(["0", "1", "2", "3"]));
    } finally {
      await Promise.all([one.stop(), two.stop()]);
    }
  });
});
