/**
 * kcat (librdkafka 2.0.2, Debian's `kcat`), unmodified, against the Kafka listener: metadata,
 * produce and consume back, keyed produce on the murmur2 partition, every compression codec
 * stored whole and read back, and Kafka batches surviving a restart (the log's recovery scan
 * checks their CRC-32C).
 *
 * Needs `kcat` on the PATH (.ci/run installs it). Outside CI the test is skipped, loudly, when
 * it is missing; in CI (CI=true) it must run.
 */
import { runKcat } from "../../support/kcat.ts";
import { describe, expect, test } from "bun:test";
import { Consumer, Producer } from "../../../src/client/index.ts";
import { partitionForKey } from "../../../src/client/partitioner.ts";
import { readBatchHeader, scanBatches } from "../../../src/format/record-batch.ts";
import { RECOVERY_POINT_FILE } from "../../../src/log/recovery-point.ts";
import { startTestBroker, tempDir } from "../../server/helpers.ts";
import * as fs from "node:fs";

const KCAT = Bun.which("kcat");
if (KCAT === null) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat tests: kcat is not installed (apt-get install kcat)");
}

function kcat(port: number | null, args: string[], stdin?: string): ReturnType<typeof runKcat> {
  return runKcat(port, args, stdin === undefined ? {} : { stdin });
}

/** The compression codec bits of every batch stored in partition 0 of `topic`. */
function storedCodecs(broker: Awaited<ReturnType<typeof startTestBroker>>["broker"], topic: string): number[] {
  const partition = broker.context.log.partition(topic, 0);
  const slice = partition.read(partition.logStartOffset, 1 << 20);
  if (slice === null) return [];
  try {
    const bytes = partition.readBytes(slice);
    return [...scanBatches(bytes)].map((span) => {
      expect(span.header.magic).toBe(2);
      return readBatchHeader(bytes, span.position).attributes & 0x07;
    });
  } finally {
    slice.release();
  }
}

describe.skipIf(KCAT === null)("kcat against the Kafka listener", () => {
  test("kcat -L lists this broker as the controller at the advertised address, and the topics", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("listed", { partitions: 3 });
    const { code, stdout } = await kcat(test.broker.kafkaPort, ["-L"]);
    expect(code).toBe(0);
    expect(stdout).toContain(`broker 0 at 127.0.0.1:${test.broker.kafkaPort} (controller)`);
    expect(stdout).toContain('topic "listed" with 3 partitions');
  });

  test("lines produced with kcat are consumed back by kcat, in order", async () => {
    await using test = await startTestBroker();
    const lines = Array.from({ length: 50 }, (_, index) => `line ${index}`);
    expect((await kcat(test.broker.kafkaPort, ["-P", "-t", "lines"], `${lines.join("\n")}\n`)).code).toBe(0);
    const consumed = await kcat(test.broker.kafkaPort, ["-C", "-t", "lines", "-o", "beginning", "-e"]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trimEnd().split("\n")).toEqual(lines);
  });

  test("keyed messages land on the murmur2 partition, the same one the native client picks", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("keyed", { partitions: 4 });
    const keys = Array.from({ length: 20 }, (_, index) => `key-${index}`);
    const input = keys.map((key) => `${key}:value of ${key}`).join("\n");
    expect((await kcat(test.broker.kafkaPort, ["-P", "-t", "keyed", "-K", ":", "-X", "partitioner=murmur2_random"], `${input}\n`)).code).toBe(0);
    const consumed = await kcat(test.broker.kafkaPort, ["-C", "-t", "keyed", "-o", "beginning", "-e", "-f", "%k %p %s\\n"]);
    const seen = consumed.stdout.trimEnd().split("\n").map((line) => line.split(" "));
    expect(seen.length).toBe(keys.length);
    for (const [key, partition] of seen) expect(Number(partition)).toBe(partitionForKey(key ?? "", 4));
  });

  test("every codec (-z none, gzip, snappy, lz4, zstd) is stored as it came and consumed back", async () => {
    await using test = await startTestBroker();
    const codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    const expected: string[] = [];
    for (const codec of codecs) {
      const lines = [`${codec} one`, `${codec} two ${"x".repeat(200)}`];
      expected.push(...lines);
      // A long linger keeps both lines in one batch (librdkafka sends a lone small message uncompressed).
      const produced = await kcat(test.broker.kafkaPort, ["-P", "-t", "codecs", "-z", codec, "-X", "linger.ms=200"], `${lines.join("\n")}\n`);
      expect(produced.code).toBe(0);
    }
    expect(new Set(storedCodecs(test.broker, "codecs"))).toEqual(new Set([0, 1, 2, 3, 4]));
    const consumed = await kcat(test.broker.kafkaPort, ["-C", "-t", "codecs", "-o", "beginning", "-e"]);
    expect(consumed.stdout.trimEnd().split("\n")).toEqual(expected);
  });

  test("a native consumer reads what kcat produced uncompressed: keys, values, headers and offsets", async () => {
    await using test = await startTestBroker();
    const input = "k1:one\nk2:two\n";
    expect((await kcat(test.broker.kafkaPort, ["-P", "-t", "across", "-K", ":", "-H", "origin=kcat"], input)).code).toBe(0);
    const consumer = new Consumer({ broker: `127.0.0.1:${test.port}`, maxWaitMs: 100 }).assign([{ topic: "across", partition: 0 }]);
    const seen: string[] = [];
    try {
      for await (const message of consumer) {
        const decode = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes ?? new Uint8Array());
        seen.push(`${message.offset} ${decode(message.key)} ${decode(message.value)} ${decode(message.headers?.origin ?? null)}`);
        if (seen.length === 2) break;
      }
    } finally {
      await consumer.close();
    }
    expect(seen).toEqual(["0 k1 one kcat", "1 k2 two kcat"]);
  });

    test("kcat reads what a native producer wrote, converted to Kafka batches: keys, values, headers, timestamps, offsets", async () => {
    await using test = await startTestBroker();
    const producer = new Producer({ broker: `127.0.0.1:${test.port}`, lingerMs: 0 });
    try {
      for (let index = 0; index < 5; index++) await producer.send("native", { key: `k${index}`, value: `v${index}`, headers: { origin: "native" }, timestamp: 1_700_000_000_000 + index });
    } finally {
      await producer.close();
    }
    // a Kafka batch after the native ones: one slice, both formats
    expect((await kcat(test.broker.kafkaPort, ["-P", "-t", "native", "-K", ":"], "k5:v5\n")).code).toBe(0);
    const consumed = await kcat(test.broker.kafkaPort, ["-C", "-t", "native", "-o", "beginning", "-e", "-f", "%o %k %s %h %T\n"]);
    const lines = consumed.stdout.trimEnd().split("\n");
    expect(lines.slice(0, 5)).toEqual(Array.from({ length: 5 }, (_, index) => `${index} k${index} v${index} origin=native ${1_700_000_000_000 + index}`));
    expect(lines[5]).toStartWith("5 k5 v5  ");
  });

    test("an idempotent librdkafka producer gets its id from InitProducerId and its batches carry it", async () => {
    await using test = await startTestBroker();
    const lines = Array.from({ length: 20 }, (_, index) => `idempotent ${index}`);
    const produced = await kcat(test.broker.kafkaPort, ["-P", "-t", "idem", "-X", "enable.idempotence=true", "-X", "acks=all", "-z", "zstd"], `${lines.join("\n")}\n`);
    expect(produced.code).toBe(0);
    const partition = test.broker.context.log.partition("idem", 0);
    const slice = partition.read(0, 1 << 20);
    expect(slice).not.toBeNull();
    try {
      const bytes = partition.readBytes(slice as NonNullable<typeof slice>);
      const headers = [...scanBatches(bytes)].map((span) => span.header);
      expect(headers.every((header) => header.producerId >= 0 && test.broker.context.producerIds.isIssued(header.producerId))).toBe(true);
      expect(headers[0]?.baseSequence).toBe(0);
    } finally {
      slice?.release();
    }
    const consumed = await kcat(test.broker.kafkaPort, ["-C", "-t", "idem", "-o", "beginning", "-e"]);
    expect(consumed.stdout.trimEnd().split("\n")).toEqual(lines);
  });

    test("kcat starts from a timestamp (-o s@ms) and from the end minus N (-o -N) through ListOffsets", async () => {
    await using test = await startTestBroker();
    expect((await kcat(test.broker.kafkaPort, ["-P", "-t", "timed"], "early 1\nearly 2\n")).code).toBe(0);
    expect(test.broker.context.log.partition("timed", 0).nextOffset).toBe(2);
    const storedMaxMs = Date.now();
    await Bun.sleep(5); // the next batch's timestamps must be later than storedMaxMs
    expect((await kcat(test.broker.kafkaPort, ["-P", "-t", "timed"], "late 1\nlate 2\n")).code).toBe(0);
    const fromTime = await kcat(test.broker.kafkaPort, ["-C", "-t", "timed", "-o", `s@${storedMaxMs + 1}`, "-e"]);
    expect(fromTime.stdout).toBe("late 1\nlate 2\n");
    const lastOne = await kcat(test.broker.kafkaPort, ["-C", "-t", "timed", "-o", "-1", "-e"]);
    expect(lastOne.stdout).toBe("late 2\n");
  });

  test("kcat produces with acks 0, 1 and all, consumes from an offset, and a -G member commits and the next resumes there", async () => {
    await using test = await startTestBroker();
    const port = test.broker.kafkaPort;
    for (const [level, acks] of [["0", "0"], ["1", "1"], ["all", "all"]] as const) {
      const before = test.broker.context.log.hasTopic("acked") ? test.broker.context.log.partition("acked", 0).nextOffset : 0;
      expect((await kcat(port, ["-P", "-t", "acked", "-X", `acks=${acks}`], `acks=${level} 0\nacks=${level} 1\n`)).code).toBe(0);
      // acks=0 is not answered: the next level waits until the broker stored these.
      const deadline = Date.now() + 30_000;
      while (test.broker.context.log.partition("acked", 0).nextOffset < before + 2 && Date.now() < deadline) await Bun.sleep(10);
    }
    const fromOffset = await kcat(port, ["-C", "-t", "acked", "-o", "3", "-e"]);
    expect(fromOffset.stdout).toBe("acks=1 1\nacks=all 0\nacks=all 1\n");
    const member = ["-G", "kcatg", "acked", "-X", "auto.offset.reset=earliest", "-c", "4"];
    expect((await kcat(port, member)).stdout).toBe("acks=0 0\nacks=0 1\nacks=1 0\nacks=1 1\n");
    expect(test.broker.context.offsets.fetch("kcatg", "acked", 0)?.offset).toBe(4);
    expect((await kcat(port, [...member.slice(0, -1), "2"])).stdout).toBe("acks=all 0\nacks=all 1\n");
    expect(test.broker.context.offsets.fetch("kcatg", "acked", 0)?.offset).toBe(6);
  });

    test("Kafka batches survive a restart: recovery checks their CRC-32C and keeps them", async () => {
    const dataDir = tempDir();
    try {
      {
        await using first = await startTestBroker({ dataDir });
        expect((await kcat(first.broker.kafkaPort, ["-P", "-t", "kept", "-z", "lz4"], "a\nb\n")).code).toBe(0);
      }
      // Make the next start scan every batch: no clean-shutdown marker, no recovery points.
      for (const name of fs.readdirSync(dataDir, { recursive: true }) as string[]) {
        if (name.endsWith("clean-shutdown") || name.endsWith(RECOVERY_POINT_FILE)) fs.rmSync(`${dataDir}/${name}`);
      }
      await using second = await startTestBroker({ dataDir });
      expect(second.broker.recovery.clean).toBe(false);
      expect(second.broker.recovery.truncations).toEqual([]);
      const consumed = await kcat(second.broker.kafkaPort, ["-C", "-t", "kept", "-o", "beginning", "-e"]);
      expect(consumed.stdout).toBe("a\nb\n");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
