/**
 * `runnel consume` (and the other client commands) where a newcomer first trips: a broker that
 * is not there, and start positions past the end or counted back from it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { type RealBroker, ROOT, startRealBroker } from "../client/real-broker.ts";

const MAIN = path.join(ROOT, "src/main.ts");

let broker: RealBroker;

beforeAll(async () => {
  broker = await startRealBroker();
  expect((await runCli(["produce", "--topic", "three", "--broker", broker.address], "m0\nm1\nm2\n")).code).toBe(0);
});

afterAll(async () => {
  await broker.stop();
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

async function runCli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string; wallMs: number }> {
  const startedMs = Date.now();
  const child = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr, wallMs: Date.now() - startedMs };
}

/** A port nothing listens on: one the kernel just handed out and that was closed again. */
function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => undefined } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

describe("a broker that was never reached", () => {
  test("is an error for consume (even with --timeout-ms), produce and topics, stating the real time spent", async () => {
    const address = `127.0.0.1:${closedPort()}`;
    const runs = await Promise.all([
      runCli(["consume", "--topic", "t", "--timeout-ms", "1000", "--broker", address]),
      runCli(["produce", "--topic", "t", "--broker", address], "a\n"),
      runCli(["topics", "list", "--broker", address]),
    ]);
    for (const [index, command] of ["consume", "produce", "topics"].entries()) {
      const run = runs[index]!;
      expect(run.code).toBe(1);
      expect(run.stdout).toBe("");
      const match = new RegExp(`^runnel ${command}: cannot reach the Runnel broker at ${address.replaceAll(".", "\\.")} \\(ECONNREFUSED; \\d+ attempts over ([\\d.]+) s\\).*\\[BROKER_UNAVAILABLE\\]\\n$`).exec(run.stderr);
      expect(match).not.toBeNull();
      // The time stated is the time it kept trying: more than the idle timeout, within the run's own.
      const statedMs = Number(match![1]) * 1000;
      expect(statedMs).toBeGreaterThan(1000);
      expect(statedMs).toBeLessThanOrEqual(run.wallMs + 100);
    }
  }, 30_000);
});

describe("consume --from", () => {
  test("an offset past the end starts at the end and says so on stderr", async () => {
    const run = await runCli(["consume", "--topic", "three", "--from", "100", "--timeout-ms", "300", "--broker", broker.address]);
    expect(run).toMatchObject({ code: 0, stdout: "", stderr: "runnel consume: three/0 ends at offset 3; --from 100 is past it, starting at the end\n" });
  });

  test("-N starts N messages before the end of each partition, at most back to its start", async () => {
    const lastTwo = await runCli(["consume", "--topic", "three", "--from", "-2", "--timeout-ms", "300", "--broker", broker.address]);
    expect(lastTwo).toMatchObject({ code: 0, stdout: "m1\nm2\n", stderr: "" });
    const clamped = await runCli(["consume", "--topic", "three", "--from=-5", "--timeout-ms", "300", "--broker", broker.address]);
    expect(clamped).toMatchObject({ code: 0, stdout: "m0\nm1\nm2\n", stderr: "" });
  });

  test("a partition the topic does not have is an error naming how many it has", async () => {
    const run = await runCli(["consume", "--topic", "three", "--partition", "4", "--broker", broker.address]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("runnel consume: topic three has 1 partition (0..0); there is no partition 4 [UNKNOWN_PARTITION]\n");
  });
});
