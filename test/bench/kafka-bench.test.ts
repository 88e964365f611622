/**
 * `runnel bench kafka` at a smoke size (behaviour only, never timings): every path runs against
 * a real broker's two listeners and moves every message — native produce and raw fetch, the raw
 * in-process Kafka producer and fetcher over our codec, kafkajs, kcat — and each Kafka row is
 * set against its native baseline. The full size is a benchmark (docs/kafka.md, "Measured").
 */
import { describe, expect, test } from "bun:test";
import { formatKafkaRows, runKafkaBench } from "../../src/bench/kafka-workloads.ts";
import { startTestBroker } from "../server/helpers.ts";

describe("runnel bench kafka", () => {
  test("each path moves every message at a tiny size, and the Kafka rows carry a ratio to native, round by round", async () => {
    await using test = await startTestBroker();
    const kcat = Bun.which("kcat") !== null;
    const rows = await runKafkaBench({
      broker: `127.0.0.1:${test.port}`,
      kafkaBroker: `127.0.0.1:${test.broker.kafkaPort}`,
      sizesBytes: [100],
      messages: 2_000,
      kafkajsMessages: 300,
      kcatLines: 500,
      batchBytes: 16 * 1024,
      fetchBytes: 64 * 1024,
      seed: 1,
      rounds: 2,
    });
    const byPath = new Map(rows.map((row) => [row.path, row]));
    expect(byPath.get("native produce (client library)")?.messages).toBe(2_000);
    expect(byPath.get("kafka produce, raw (in-process, our codec)")?.messages).toBe(2_000);
    expect(byPath.get("native raw fetch (sendfile)")?.messages).toBe(2_000);
    expect(byPath.get("kafka raw fetch of kafka-produced data (sendfile)")?.messages).toBe(2_000);
    expect(byPath.get("kafka produce, kafkajs 2.2.4")?.messages).toBe(300);
    for (const path of ["kafka produce, raw (in-process, our codec)", "kafka raw fetch of kafka-produced data (sendfile)", "kafka produce, kafkajs 2.2.4"]) {
      expect(byPath.get(path)?.ratioToNative).toBeGreaterThan(0);
    }
    // Two rounds: each raw Kafka row gives its ratio to native in each round, and its range.
    for (const path of ["kafka produce, raw (in-process, our codec)", "kafka raw fetch of kafka-produced data (sendfile)"]) {
      const measured = byPath.get(path);
      expect(measured?.roundRatios).toHaveLength(2);
      expect(measured?.megabytesPerSecondRange[0]).toBeLessThanOrEqual(measured?.megabytesPerSecondRange[1] ?? 0);
    }
    if (kcat) {
      expect(byPath.get("kcat -P (librdkafka, lines from a file)")?.messages).toBe(500);
      expect(byPath.get("kcat -C -e (librdkafka, printed to a pipe)")?.messages).toBe(500);
    }
    // Each round's topics (and kafkajs's and kcat's) are deleted after use.
    expect(test.broker.context.log.listTopics().filter((name) => name.startsWith("bench-"))).toEqual([]);
    const table = formatKafkaRows(rows);
    expect(table.split("\n")[0]).toContain("vs native");
    expect(table).toContain("kafka raw fetch of kafka-produced data");
  }, 60_000);
});
