/**
 * `runnel produce` when things go wrong, as a user meets it: a child process against a real
 * broker that goes away, comes back, stalls, or gets a line too long to send; interrupted with
 * SIGINT; fed CRLF input.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import type { Subprocess } from "bun";
import { type RealBroker, ROOT, startRealBroker, tempDir } from "../client/real-broker.ts";
import { until } from "../support/wait.ts";

const MAIN = path.join(ROOT, "src/main.ts");

let broker: RealBroker;

beforeAll(async () => {
  broker = await startRealBroker();
});

afterAll(async () => {
  await broker.stop();
  fs.rmSync(broker.dataDir, { recursive: true, force: true });
});

type Producing = Subprocess<"pipe", "pipe", "pipe">;

/** `runnel produce` with a stdin the test writes to. */
function startProduce(args: string[]): Producing {
  return Bun.spawn([process.execPath, MAIN, "produce", ...args], { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
}

function lines(from: number, count: number): string {
  return Array.from({ length: count }, (_, index) => `line-${from + index}\n`).join("");
}

async function runCli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  return await finish(child);
}

async function finish(child: { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array>; exited: Promise<number> }): Promise<{ code: number; stdout: string; stderr: string }> {
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

async function createTopic(address: string, topic: string): Promise<void> {
  expect((await runCli(["topics", "create", topic, "--broker", address])).code).toBe(0);
}

/** Waits until the topic holds at least `count` messages (consume blocks until it has them). */
async function waitForMessages(address: string, topic: string, count: number): Promise<string[]> {
  const consumed = await runCli(["consume", "--topic", topic, "--count", String(count), "--broker", address]);
  expect(consumed.code).toBe(0);
  return consumed.stdout.split("\n").slice(0, -1);
}

describe("runnel produce against a broker that goes away", () => {
  test("a broker gone for good: gives up after the delivery timeout, says what was acknowledged and never sent, exits 1", async () => {
    const own = await startRealBroker();
    try {
      await createTopic(own.address, "gone");
      const child = startProduce(["--topic", "gone", "--broker", own.address, "--delivery-timeout-ms", "1000"]);
      child.stdin.write(lines(0, 1000));
      await child.stdin.flush();
      await waitForMessages(own.address, "gone", 1000);
      await own.kill();
      child.stdin.write(lines(1000, 1000));
      await child.stdin.end();
      const { code, stdout, stderr } = await finish(child);
      expect(code).toBe(1);
      expect(stdout).toBe("");
      expect(stderr.split("\n")).toHaveLength(2); // one line and its newline
      const counts = /^runnel produce: 1,000 messages acknowledged, (?:([\d,]+) failed \(may or may not be stored\), )?([\d,]+) never sent\. The first failure: .*\[BROKER_UNAVAILABLE\]\n$/.exec(stderr);
      expect(counts).not.toBeNull();
      // Lines written before the producer saw the connection close failed with their fate unknown; the rest never left.
      const number = (text: string | undefined) => Number((text ?? "0").replaceAll(",", ""));
      expect(number(counts![1]) + number(counts![2])).toBe(1000);
      expect(stderr).toContain("cannot reach the Runnel broker");
    } finally {
      fs.rmSync(own.dataDir, { recursive: true, force: true });
    }
  }, 30_000);

  test("a broker back within the delivery timeout: every line stored once, exit 0", async () => {
    const dataDir = tempDir("runnel-cli-back-");
    let own = await startRealBroker({ dataDir });
    try {
      await createTopic(own.address, "back");
      const child = startProduce(["--topic", "back", "--broker", own.address]);
      child.stdin.write(lines(0, 1000));
      await child.stdin.flush();
      await waitForMessages(own.address, "back", 1000);
      await own.kill();
      child.stdin.write(lines(1000, 1000));
      await child.stdin.flush();
      own = await startRealBroker({ dataDir, port: own.port });
      await child.stdin.end();
      expect(await finish(child)).toMatchObject({ code: 0, stderr: "" });
      const stored = await runCli(["consume", "--topic", "back", "--timeout-ms", "1000", "--broker", own.address]);
      expect(stored.stdout.split("\n").slice(0, -1).sort()).toEqual(lines(0, 2000).split("\n").slice(0, -1).sort());
    } finally {
      await own.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 40_000);
});

/** An endless stdin that counts the bytes the reader pulled; `stop()` ends it at the next pull. */
function endlessInput(chunk: Uint8Array): { stream: ReadableStream<Uint8Array>; pulledBytes: () => number; stop: () => void } {
  let pulled = 0;
  let stopped = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (stopped) return controller.close();
      pulled += chunk.length;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  return { stream, pulledBytes: () => pulled, stop: () => (stopped = true) };
}

/** Resolves once `value()` has not changed for `quietMs` (the reader stopped pulling). */
async function settled(value: () => number, quietMs: number, timeoutMs: number): Promise<number> {
  let last = -1;
  let since = Date.now();
  await until(() => {
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  }, timeoutMs);
  return last;
}

describe("runnel produce keeps its memory bounded", () => {
  test("stdin is not read while the producer's buffer is full; all of it goes once the broker answers again", async () => {
    const line = new TextEncoder().encode(`${"x".repeat(1023)}\n`);
    const input = endlessInput(new Uint8Array(Array.from({ length: 64 }, () => [...line]).flat()));
    const child = Bun.spawn([process.execPath, MAIN, "produce", "--topic", "stalled", "--broker", broker.address], { cwd: ROOT, stdin: input.stream, stdout: "pipe", stderr: "pipe" });
    await until(() => input.pulledBytes() > 1024 * 1024, 15_000);
    broker.child.kill("SIGSTOP");
    let pulled: number;
    try {
      pulled = await settled(input.pulledBytes, 1_000, 20_000);
    } finally {
      broker.child.kill("SIGCONT");
    }
    // The producer buffers 32 MiB; the pipe and one chunk in hand add little.
    expect(pulled).toBeLessThan(48 * 1024 * 1024);
    await until(() => input.pulledBytes() > pulled, 15_000);
    input.stop();
    const { code, stderr } = await finish(child);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  }, 60_000);

  test("a line longer than the broker takes is refused while it is read, before the rest of it arrives", async () => {
    const input = endlessInput(new Uint8Array(64 * 1024).fill(0x79));
    const child = Bun.spawn([process.execPath, MAIN, "produce", "--topic", "endless", "--broker", broker.address], { cwd: ROOT, stdin: input.stream, stdout: "pipe", stderr: "pipe" });
    const { code, stderr } = await finish(child);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^runnel produce: line 1 is longer than [\d,]+ bytes, the most the broker takes in one message; it and the lines after it were not sent \(0 messages acknowledged\).*\[MESSAGE_TOO_LARGE\]\n$/);
    // The broker's default batch limit is 4 MiB: reading stopped soon after it.
    expect(input.pulledBytes()).toBeLessThan(8 * 1024 * 1024);
  }, 30_000);
});

describe("runnel produce input and exit", () => {
  test("--help says what ends a line, what a failure and Ctrl-C do, and names the delivery timeout", async () => {
    const help = await runCli(["produce", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("without its line ending, \\n or \\r\\n");
    expect(help.stdout).toContain("--delivery-timeout-ms MS");
    expect(help.stdout).toContain("acknowledged, failed (may or may not be stored) and never sent");
    expect(help.stdout).toContain("printf 'user-1:signed up\\nuser-2:paid\\n'");
  });

  test("CRLF is a line ending: the \\r is not part of the message", async () => {
    expect((await runCli(["produce", "--topic", "crlf", "--broker", broker.address], "one\r\ntwo\r\nthree\n")).code).toBe(0);
    expect(await waitForMessages(broker.address, "crlf", 3)).toEqual(["one", "two", "three"]);
  });

  test("SIGINT stops reading, and the final count is printed with the right plural", async () => {
    await createTopic(broker.address, "interrupted");
    const child = startProduce(["--topic", "interrupted", "--broker", broker.address]);
    child.stdin.write("only\n");
    await child.stdin.flush();
    await waitForMessages(broker.address, "interrupted", 1);
    child.kill("SIGINT");
    const { code, stderr } = await finish(child);
    expect(code).toBe(130);
    expect(stderr).toBe("runnel produce: stopped by SIGINT: 1 message acknowledged to interrupted\n");
  });

  test("typed in a terminal: no live progress across the typing; Ctrl-C prints the final count on a line of its own", async () => {
    await createTopic(broker.address, "typed");
    // script(1) gives the command a terminal for stdin and stderr; what we write is what a user types.
    const command = `'${process.execPath}' '${MAIN}' produce --topic typed --broker ${broker.address}`;
    const terminal = Bun.spawn(["script", "-qec", command, "/dev/null"], { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    terminal.stdin.write("one\r");
    await terminal.stdin.flush();
    await waitForMessages(broker.address, "typed", 1);
    terminal.stdin.write("tw\x03");
    await terminal.stdin.flush();
    const { code, stdout: screen } = await finish(terminal);
    expect(code).toBe(130);
    expect(screen).toContain("reading messages from stdin, one per line (Ctrl-D to end, Ctrl-C to stop)");
    expect(screen).not.toContain("\x1b[2K");
    expect(screen).toMatch(/\^C\r?\n(\r?\n)?runnel produce: stopped by SIGINT: 1 message acknowledged to typed\r?\n$/);
  });

});
