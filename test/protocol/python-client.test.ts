/**
 * The protocol doc's promise: a client in another language, written from docs/protocol.md with
 * only a msgpack library, produces and consumes. examples/python/runnel_client.py is that
 * client; here it talks to a real broker, and to the TypeScript client through the broker.
 *
 * Needs /usr/bin/python3 with msgpack (Debian: python3-msgpack; .ci/run installs it). Outside
 * CI the test is skipped, loudly, when that is missing; in CI (CI=true) it must run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { Admin, Consumer, Producer } from "../../src/client/index.ts";
import { type RealBroker, ROOT, startRealBroker } from "../client/real-broker.ts";

const PYTHON = "/usr/bin/python3";
const CLIENT = path.join(ROOT, "examples/python/runnel_client.py");

function pythonHasMsgpack(): boolean {
  if (!fs.existsSync(PYTHON)) return false;
  return Bun.spawnSync([PYTHON, "-c", "import msgpack"]).exitCode === 0;
}

const available = pythonHasMsgpack();
if (!available) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} with msgpack is required in CI (apt-get install python3-msgpack)`);
  console.warn(`skipping the Python client test: ${PYTHON} with msgpack is not installed (apt-get install python3-msgpack)`);
}

let broker: RealBroker;
beforeAll(async () => {
  if (available) broker = await startRealBroker();
});
afterAll(async () => {
  if (!available) return;
  expect(await broker.stop()).toBe(0);
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

async function python(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([PYTHON, CLIENT, "--broker", broker.address, ...args], {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe.skipIf(!available)("a Python client written from docs/protocol.md", () => {
  test("produces and consumes its own messages", async () => {
    const lines = Array.from({ length: 500 }, (_, i) => `py-${i}`);
    const produced = await python(["produce", "py-own"], `${lines.join("\n")}\n`);
    expect(produced.stderr).toContain("appended 500 messages at offsets 0..499");
    expect(produced.code).toBe(0);
    const consumed = await python(["consume", "py-own", "500"]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trim().split("\n")).toEqual(lines.map((line, offset) => `0 ${offset} - ${line}`));
  });

  test("reads what the TypeScript producer wrote, across partitions, crc-checked", async () => {
    const producer = new Producer({ broker: broker.address });
    const sent: string[] = [];
    for (let i = 0; i < 300; i++) {
      const { partition, offset } = await producer.send("py-from-ts", { key: `k${i % 7}`, value: `v${i}` });
      sent.push(`${partition} ${offset} k${i % 7} v${i}`);
    }
    await producer.close();
    const consumed = await python(["consume", "py-from-ts", "300"]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trim().split("\n").sort()).toEqual(sent.sort());
  });

  test("joins a consumer group, consumes the share the broker assigns, commits it and leaves", async () => {
    const admin = new Admin({ broker: broker.address });
    await admin.createTopic("py-group", { partitions: 2 });
    const producer = new Producer({ broker: broker.address });
    for (let i = 0; i < 20; i++) await producer.send("py-group", { partition: i % 2, value: `g${i}` });
    await producer.close();
    const consumed = await python(["consume", "py-group", "20", "--group", "pyg"]);
    expect(consumed.stderr).toBe("");
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trim().split("\n").sort()).toEqual(Array.from({ length: 20 }, (_, i) => `${i % 2} ${Math.floor(i / 2)} - g${i}`).sort());
    expect((await admin.committedOffsets("pyg", [0, 1].map((partition) => ({ topic: "py-group", partition })))).map((entry) => entry.offset)).toEqual([10, 10]);
    expect((await admin.describeGroup("pyg")).members).toEqual([]); // it left
    await admin.close();
  });

  test("writes batches the TypeScript consumer decodes and verifies", async () => {
    const lines = Array.from({ length: 200 }, (_, i) => `from python ${i} ü`);
    expect((await python(["produce", "ts-from-py"], `${lines.join("\n")}\n`)).code).toBe(0);
    const consumer = new Consumer({ broker: broker.address, from: "earliest" }).assign([{ topic: "ts-from-py", partition: 0 }]);
    const received: string[] = [];
    for await (const message of consumer) {
      received.push(new TextDecoder().decode(message.value!));
      if (received.length === lines.length) break;
    }
    await consumer.close();
    expect(received).toEqual(lines);
  });
});
