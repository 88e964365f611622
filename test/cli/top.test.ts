/**
 * `runnel top` against a real broker's HTTP listener: `--once` prints the busiest topics with
 * their rates and the groups most behind with their lag; the live view redraws until SIGINT and
 * then exits 0; an unreachable listener is one line and exit 1.
 */
import { expect, test } from "bun:test";
import * as path from "node:path";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { startTestBroker } from "../server/helpers.ts";

const ROOT = path.resolve(import.meta.dir, "../..");

function spawnTop(args: string[]) {
  return Bun.spawn([process.execPath, path.join(ROOT, "src/main.ts"), "top", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
}

test("top --once shows a topic's throughput while a producer runs, and a group's lag", async () => {
  await using running = await startTestBroker();
  const http = running.broker.http!;
  const address = `127.0.0.1:${running.port}`;
  const producer = new Producer({ broker: address, lingerMs: 0 });
  let producing = true;
  try {
    for (let index = 0; index < 10; index++) await producer.send("clicks", { value: `c${index}` });
    const consumer = new Consumer({ broker: address, groupId: "analytics" }).assign([{ topic: "clicks", partition: 0 }]);
    await consumer.commit([{ topic: "clicks", partition: 0, offset: 3 }]);
    await consumer.close();
    running.broker.context.log.createTopic("idle", { partitions: 1 });
    const background = (async () => {
      while (producing) await producer.send("clicks", { value: "more" });
    })();
    const top = spawnTop(["--once", "--http", `${http.host}:${http.port}`, "--interval-ms", "500"]);
    const [out, err, code] = await Promise.all([new Response(top.stdout).text(), new Response(top.stderr).text(), top.exited]);
    producing = false;
    await background;
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const lines = out.split("\n");
    expect(lines[0]).toContain("topics 2  groups 1");
    const header = lines.findIndex((line) => line.startsWith("TOPIC"));
    // the busy topic first, with a non-zero rate; the idle one after it at 0
    expect(lines[header + 1]).toMatch(/^clicks\s+[1-9]/);
    expect(lines[header + 2]).toMatch(/^idle\s+0\s/);
    const group = lines.find((line) => line.startsWith("analytics"));
    expect(group).toBeDefined();
    expect(Number(group!.split(/\s+/)[1]!.replace("k", "e3"))).toBeGreaterThan(6);
  } finally {
    producing = false;
    await producer.close();
  }
});

test("the live view redraws until SIGINT, then exits 0", async () => {
  await using running = await startTestBroker();
  const http = running.broker.http!;
  const top = spawnTop(["--http", `${http.host}:${http.port}`, "--interval-ms", "100"]);
  const reader = top.stdout.getReader();
  let seen = "";
  while (!seen.includes("TOPIC")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  expect(seen).toContain("TOPIC");
  top.kill("SIGINT");
  expect(await top.exited).toBe(0);
});

test("an unreachable HTTP listener is one line and exit 1", async () => {
  await using running = await startTestBroker({ httpPort: -1 });
  const top = spawnTop(["--once", "--http", `127.0.0.1:${running.port}`]); // the native port does not speak HTTP
  const [err, code] = await Promise.all([new Response(top.stderr).text(), top.exited]);
  expect(code).toBe(1);
  expect(err.trim().split("\n")).toHaveLength(1);
  expect(err).toStartWith("runnel top: ");
});
