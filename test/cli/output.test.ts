import { afterEach, describe, expect, test } from "bun:test";
import { UsageError } from "../../src/cli/args.ts";
import { Progress, reportFailure } from "../../src/cli/output.ts";
import { RunnelError } from "../../src/errors.ts";

const originalWrite = process.stderr.write.bind(process.stderr);
let captured = "";

function captureStderr(): void {
  captured = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    captured += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    return true;
  }) as typeof process.stderr.write;
}

afterEach(() => {
  process.stderr.write = originalWrite;
});

describe("reportFailure", () => {
  test("a usage mistake is one line pointing at --help, exit 2", () => {
    captureStderr();
    expect(reportFailure("consume", new UsageError("--count must be a whole number"))).toBe(2);
    expect(captured).toBe("runnel consume: --count must be a whole number. Try 'runnel consume --help'.\n");
  });

  test("a RunnelError is one line with its code and, where known, what to try, exit 1", () => {
    captureStderr();
    expect(reportFailure("topics", new RunnelError("TOPIC_EXISTS", "topic 'a'\nalready exists"))).toBe(1);
    expect(captured).toBe("runnel topics: topic 'a' already exists (pick another name, or delete it first with 'runnel topics delete') [TOPIC_EXISTS]\n");
  });
});

describe("Progress", () => {
  test("on a terminal it redraws a live count and rate, then a summary line", async () => {
    captureStderr();
    const progress = new Progress("message", true);
    progress.add(1234);
    const deadline = Date.now() + 5_000;
    while (!captured.includes("1,234 messages") && Date.now() < deadline) await Bun.sleep(10);
    expect(captured).toMatch(/\r\x1b\[2K1,234 messages {2}[\d,]+\/s/);
    progress.stop("1,234 messages sent");
    expect(captured).toMatch(/1,234 messages sent in \d+\.\d\d s\n$/);
  });

  test("a count of one is said in the singular", async () => {
    captureStderr();
    const progress = new Progress("message", true);
    progress.add(1);
    const deadline = Date.now() + 5_000;
    while (!captured.includes("1 message") && Date.now() < deadline) await Bun.sleep(10);
    expect(captured).toMatch(/\r\x1b\[2K1 message {2}[\d,]+\/s/);
    progress.stop();
  });

  test("off a terminal it writes nothing", () => {
    captureStderr();
    const progress = new Progress("message", false);
    progress.add(5);
    progress.stop("done");
    expect(captured).toBe("");
    expect(progress.total).toBe(5);
  });
});
