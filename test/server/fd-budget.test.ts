/**
 * Issue 16: a broker whose process may open only 512 files serves 5,000 partitions. Active
 * segments are not pinned, so segment fds stay within the budget (at most half the open-files
 * limit); nothing fails with EMFILE, and after a kill -9 and a restart under the same limit every
 * partition holds what was acknowledged.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Subprocess } from "bun";
import { RawClient } from "../../src/bench/stall.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";

const root = path.resolve(import.meta.dir, "../..");
const OPEN_FILES_MAX = 512;
const TOPICS = 5;
const PARTITIONS_PER_TOPIC = 1_000;
const ROUNDS = 3;

interface LimitedBroker {
  child: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  lines: string[];
}

/** `runnel serve` under `ulimit -n 512`, default configuration; resolves once it listens. */
async function spawnLimitedBroker(dataDir: string): Promise<LimitedBroker> {
  const child = Bun.spawn(["bash", "-c", `ulimit -n ${OPEN_FILES_MAX}; exec "$0" "$@"`, process.execPath, "src/main.ts", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir], {
    cwd: root,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    let found = false;
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      // Read to the end: a full pipe would block the broker.
      for await (const chunk of child.stdout) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (/EMFILE|ENFILE|error/.test(line)) lines.push(line);
          if (!found && line.includes("runnel listening")) {
            found = true;
            resolve((JSON.parse(line) as { port: number }).port);
          }
        }
      }
      if (!found) reject(new Error(`broker exited before listening: ${await new Response(child.stderr).text()}`));
    })();
  });
  return { child, port, lines };
}

function topicName(index: number): string {
  return `wide${index}`;
}

describe("descriptors under ulimit -n 512", () => {
  test("5,000 partitions take appends in every round, and after kill -9 and a restart each holds every acknowledged batch", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-fd-budget-"));
    let broker = await spawnLimitedBroker(dataDir);
    try {
      const client = await RawClient.connect("127.0.0.1", broker.port);
      for (let topic = 0; topic < TOPICS; topic++) {
        const created = await client.request({ op: "createTopic", topic: topicName(topic), partitions: PARTITIONS_PER_TOPIC });
        expect(created.error).toBeUndefined();
      }
      const batch = encodeBatch([{ value: "acknowledged" }]);
      for (let round = 0; round < ROUNDS; round++) {
        const answers = await Promise.all(
          Array.from({ length: TOPICS }, (_, topic) =>
            client.request({
              op: "produce",
              durability: "written",
              batches: Array.from({ length: PARTITIONS_PER_TOPIC }, (_, partition) => ({ topic: topicName(topic), partition, batch })),
            }),
          ),
        );
        for (const answer of answers) {
          const failed = (answer.results as Array<{ error?: unknown }>).filter((result) => result.error !== undefined);
          expect(failed).toEqual([]);
        }
      }
      const fds = fs.readdirSync(`/proc/${broker.child.pid}/fd`).length;
      expect(fds).toBeLessThan(OPEN_FILES_MAX);
      client.close();
      broker.child.kill("SIGKILL");
      await broker.child.exited;
      expect(broker.lines).toEqual([]);

      broker = await spawnLimitedBroker(dataDir);
      const reader = await RawClient.connect("127.0.0.1", broker.port);
      const meta = await reader.request({ op: "metadata", topics: Array.from({ length: TOPICS }, (_, topic) => topicName(topic)) });
      for (const entry of meta.topics as Array<{ name: string; partitions: Array<{ nextOffset: number }> }>) {
        expect(entry.partitions.length).toBe(PARTITIONS_PER_TOPIC);
        expect(entry.partitions.filter((partition) => partition.nextOffset !== ROUNDS)).toEqual([]);
      }
      const fetched = await reader.request({ op: "fetch", partitions: Array.from({ length: 100 }, (_, partition) => ({ topic: topicName(TOPICS - 1), partition: partition * 10, offset: 0 })) });
      expect((fetched.partitions as Array<{ error?: unknown; nextOffset: number }>).filter((partition) => partition.error !== undefined || partition.nextOffset !== ROUNDS)).toEqual([]);
      reader.close();
      expect(broker.lines).toEqual([]);
    } finally {
      broker.child.kill("SIGKILL");
      await broker.child.exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
