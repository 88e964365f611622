/**
 * `runnel consume --group G` run twice shares the topic's partitions: each process gets a
 * disjoint share, every message produced is printed once across the two, and when one exits
 * (committing what it printed) the other takes every partition. `--from OFFSET` reads every
 * partition explicitly, outside the group's membership.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import type { Subprocess } from "bun";
import { Admin } from "../../src/client/admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { until } from "../support/wait.ts";
import { type RealBroker, ROOT, startRealBroker } from "../client/real-broker.ts";

const MAIN = path.join(ROOT, "src/main.ts");
const PARTITIONS = 4;
const MESSAGES = 200;

let broker: RealBroker;
let admin: Admin;

beforeAll(async () => {
  broker = await startRealBroker();
  admin = new Admin({ broker: broker.address });
});

afterAll(async () => {
  await admin.close();
  await broker.stop();
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

interface Printed {
  partition: number;
  offset: number;
  value: string;
}

/** A `runnel consume --format json` child whose printed lines are parsed as they come. */
class ConsumeProcess {
  readonly printed: Printed[] = [];
  private readonly child: Subprocess<"ignore", "pipe", "pipe">;
  private readonly reading: Promise<void>;

  constructor(args: string[]) {
    this.child = Bun.spawn([process.execPath, MAIN, "consume", "--broker", broker.address, "--format", "json", ...args], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    this.reading = this.read();
  }

  private async read(): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of this.child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        this.printed.push(JSON.parse(pending.slice(0, newline)) as Printed);
        pending = pending.slice(newline + 1);
      }
    }
  }

  partitions(): Set<number> {
    return new Set(this.printed.map((line) => line.partition));
  }

  /** Waits for the child to exit by itself (or SIGTERMs it first with `terminate`); its exit code. */
  async exit(terminate: boolean): Promise<number> {
    if (terminate) this.child.kill("SIGTERM");
    const code = await this.child.exited;
    await this.reading;
    return code;
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}

/** Partitions held per member of `group`, once every partition is held and nothing is moving. */
async function settledShares(group: string, members: number): Promise<number[][]> {
  let shares: number[][] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    const description = await admin.describeGroup(group);
    const moving = description.members.some((member) => member.revoking.length + member.pending.length > 0);
    shares = description.members.map((member) => member.assigned.flatMap((entry) => entry.partitions).sort());
    const held = shares.reduce((sum, share) => sum + share.length, 0);
    if (description.members.length === members && !moving && held === PARTITIONS) return shares;
    if (Date.now() > deadline) throw new Error(`group ${group} did not settle: ${JSON.stringify(description)}`);
    await Bun.sleep(20);
  }
}

async function produce(producer: Producer, tag: string): Promise<void> {
  await Promise.all(Array.from({ length: MESSAGES }, (_, index) => producer.send("jobs", { value: `${tag}${index}`, partition: index % PARTITIONS })));
}

const at = (line: Printed): string => `${line.partition}/${line.offset}`;

describe("runnel consume --group", () => {
  test("two processes share the partitions, print each message once, and one takes all when the other exits", async () => {
    await admin.createTopic("jobs", { partitions: PARTITIONS });
    const producer = new Producer({ broker: broker.address });
    const first = new ConsumeProcess(["--topic", "jobs", "--group", "workers"]);
    const second = new ConsumeProcess(["--topic", "jobs", "--group", "workers"]);
    try {
      const shares = await settledShares("workers", 2);
      expect(shares.every((share) => share.length === PARTITIONS / 2)).toBe(true);
      await produce(producer, "a");
      await until(() => first.printed.length + second.printed.length >= MESSAGES, 20_000);
      const both = [...first.printed, ...second.printed];
      expect(both.length).toBe(MESSAGES);
      expect(new Set(both.map(at)).size).toBe(MESSAGES);
      expect(first.partitions().size).toBe(PARTITIONS / 2);
      expect([...first.partitions()].filter((partition) => second.partitions().has(partition))).toEqual([]);

      // --from with an offset reads every partition itself, whatever the group's members hold.
      const explicit = new ConsumeProcess(["--topic", "jobs", "--group", "workers", "--from", "0", "--count", String(MESSAGES)]);
      expect(await explicit.exit(false)).toBe(0);
      expect(explicit.partitions().size).toBe(PARTITIONS);
      expect((await admin.describeGroup("workers")).members.length).toBe(2);

      const firstPrinted = first.printed.length;
      expect(await first.exit(true)).toBe(0);
      await settledShares("workers", 1);
      await produce(producer, "b");
      await until(() => second.printed.length >= MESSAGES - firstPrinted + MESSAGES, 20_000);
      const all = [...first.printed, ...second.printed];
      expect(all.length).toBe(2 * MESSAGES);
      expect(new Set(all.map(at)).size).toBe(2 * MESSAGES);
      expect(second.partitions().size).toBe(PARTITIONS);
      expect(await second.exit(true)).toBe(0);
    } finally {
      first.kill();
      second.kill();
      await producer.close();
    }
  }, 60_000);
});
