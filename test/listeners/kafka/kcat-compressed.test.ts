/**
 * Native consumers read compressed Kafka batches: kcat (librdkafka 2.0.2) produces with each
 * codec (-z gzip, snappy, lz4, zstd), the broker stores the batches whole, and both the client
 * library's Consumer and `runnel consume` print the exact keys, values and headers.
 *
 * Needs `kcat` on the PATH (.ci/run installs it); skipped loudly outside CI when missing.
 */
import { describe, expect, test } from "bun:test";
import * as path from "node:path";
import { Consumer } from "../../../src/client/index.ts";
import { readBatchHeader, scanBatches } from "../../../src/format/record-batch.ts";
import { startTestBroker } from "../../server/helpers.ts";

const KCAT = Bun.which("kcat");
if (KCAT === null) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat compression tests: kcat is not installed (apt-get install kcat)");
}
const MAIN = path.join(import.meta.dir, "../../../src/main.ts");
const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;
const CODEC_BITS: Record<(typeof CODECS)[number], number> = { gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

async function run(command: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(command, { stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** 40 keyed lines, compressible, several sharing one batch (linger) so the codec is really used. */
function linesFor(codec: string): string[] {
  return Array.from({ length: 40 }, (_, index) => `k${index}:${codec} value ${index} ${"abc".repeat(index)}`);
}

async function produceWithKcat(kafkaPort: number, topic: string, codec: string): Promise<void> {
  const produced = await run([KCAT ?? "kcat", "-b", `127.0.0.1:${kafkaPort}`, "-P", "-t", topic, "-z", codec, "-K", ":", "-H", `codec=${codec}`, "-X", "linger.ms=100"], `${linesFor(codec).join("\n")}\n`);
  expect(produced.code).toBe(0);
}

describe.skipIf(KCAT === null)("native consumers read kcat's compressed batches", () => {
  test("the client library's Consumer reads every codec's keys, values and headers exactly", async () => {
    await using test = await startTestBroker();
    for (const codec of CODECS) await produceWithKcat(test.broker.kafkaPort ?? 0, `z-${codec}`, codec);
    for (const codec of CODECS) {
      const partition = test.broker.context.log.partition(`z-${codec}`, 0);
      const slice = partition.read(0, 1 << 20);
      const bytes = partition.readBytes(slice as NonNullable<typeof slice>);
      slice?.release();
      const codecs = [...scanBatches(bytes)].map((span) => readBatchHeader(bytes, span.position).attributes & 0x07);
      expect(codecs).toContain(CODEC_BITS[codec]);
      const consumer = new Consumer({ broker: `127.0.0.1:${test.port}`, maxWaitMs: 100 }).assign([{ topic: `z-${codec}`, partition: 0 }]);
      const seen: string[] = [];
      const decode = (value: Uint8Array | null | undefined) => new TextDecoder().decode(value ?? new Uint8Array());
      try {
        for await (const message of consumer) {
          seen.push(`${decode(message.key)}:${decode(message.value)} ${decode(message.headers?.codec)} ${message.offset}`);
          if (seen.length === 40) break;
        }
      } finally {
        await consumer.close();
      }
      expect(seen).toEqual(linesFor(codec).map((line, index) => `${line} ${codec} ${index}`));
    }
  }, 60_000);

  test("runnel consume prints every codec's messages, keys and headers included", async () => {
    await using test = await startTestBroker();
    for (const codec of CODECS) await produceWithKcat(test.broker.kafkaPort ?? 0, `cli-${codec}`, codec);
    for (const codec of CODECS) {
      const consumed = await run([process.execPath, MAIN, "consume", "--topic", `cli-${codec}`, "--broker", `127.0.0.1:${test.port}`, "-n", "40", "--format", "json"]);
      expect(consumed.code).toBe(0);
      const rows = consumed.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { key: string; value: string; headers: Record<string, string> });
      expect(rows.map((row) => `${row.key}:${row.value}`)).toEqual(linesFor(codec));
      expect(rows.every((row) => row.headers.codec === codec)).toBe(true);
    }
  }, 60_000);
});
