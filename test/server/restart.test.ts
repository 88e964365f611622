import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { decodeRecords, encodeBatch, scanBatches } from "../../src/format/record-batch.ts";
import { type Message, tempDir, TestClient } from "./helpers.ts";

const root = path.resolve(import.meta.dir, "../..");
const dataDir = tempDir("runnel-restart-");
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

interface Child {
  process: Bun.Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  startLine: Message;
}

/** Spawns `bun src/main.ts serve --port 0` and reads the port from its start line. */
async function spawnBroker(extra: string[] = []): Promise<Child> {
  const child = Bun.spawn([process.execPath, "src/main.ts", "serve", "--port", "0", "--data-dir", dataDir, ...extra], {
    cwd: root,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = child.stdout.getReader();
  let buffered = "";
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += new TextDecoder().decode(value);
    for (const line of buffered.split("\n")) {
      if (!line.includes("runnel listening")) continue;
      reader.releaseLock();
      const startLine = JSON.parse(line) as Message;
      return { process: child, port: startLine.port as number, startLine };
    }
  }
  child.kill("SIGKILL");
  throw new Error(`broker did not start: ${buffered} ${await new Response(child.stderr).text()}`);
}

describe("broker process: restart", () => {
  test("data and committed offsets survive a SIGTERM restart, which exits 0 after a clean shutdown", async () => {
    const first = await spawnBroker();
    expect(first.startLine).toMatchObject({ dataDir, topics: 0, recovery: { clean: true, fresh: true } });
    {
      await using client = await TestClient.connect(first.port);
      await client.request({ op: "createTopic", topic: "keep", partitions: 2 });
      const batch = encodeBatch([{ value: "one" }, { value: "two" }], { nowMs: 42 });
      const produced = await client.request({ op: "produce", durability: "synced", batches: [{ topic: "keep", partition: 1, batch }] });
      expect(produced.results).toEqual([{ topic: "keep", partition: 1, baseOffset: 0, lastOffset: 1 }]);
      const committed = await client.request({ op: "commitOffsets", group: "readers", offsets: [{ topic: "keep", partition: 1, offset: 1, metadata: "half" }] });
      expect(committed.results).toEqual([{ topic: "keep", partition: 1 }]);
    }
    first.process.kill("SIGTERM");
    expect(await first.process.exited).toBe(0);
    expect(fs.existsSync(path.join(dataDir, "clean-shutdown"))).toBe(true);

    const second = await spawnBroker();
    try {
      expect(second.startLine).toMatchObject({ topics: 1, recovery: { clean: true, partitions: 2 } });
      await using client = await TestClient.connect(second.port);
      const offsets = await client.request({ op: "fetchOffsets", group: "readers", partitions: [{ topic: "keep", partition: 1 }] });
      expect(offsets.offsets).toEqual([{ topic: "keep", partition: 1, offset: 1, metadata: "half" }]);
      const fetched = await client.request({ op: "fetch", partitions: [{ topic: "keep", partition: 1, offset: 1 }] });
      const records = fetched.records as Uint8Array;
      const values = [...scanBatches(records)].flatMap((span) => decodeRecords(records.subarray(span.position, span.position + span.bytes)).map((record) => new TextDecoder().decode(record.value ?? new Uint8Array())));
      expect(values).toEqual(["one", "two"]);
    } finally {
      second.process.kill("SIGINT");
      expect(await second.process.exited).toBe(0);
    }
  });

  test("a bad option stops start-up with one line naming it", async () => {
    const child = Bun.spawn([process.execPath, "src/main.ts", "serve", "--port", "99999"], { cwd: root, stdout: "pipe", stderr: "pipe" });
    expect(await child.exited).toBe(2);
    const stderr = await new Response(child.stderr).text();
    expect(stderr).toBe("runnel serve: invalid option port=99999 (from flag --port): an integer from 0 to 65535\n");
  });
});
