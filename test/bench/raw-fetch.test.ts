/**
 * The raw fetch loop of `runnel bench consume --raw`: fetches in flight at predicted offsets must
 * still count every record exactly once — whatever the batch sizes make of the guesses — and
 * never count a duplicate byte. Against a real broker (in process, port 0, temp dir).
 */
import { expect, test } from "bun:test";
import { Connection } from "../../src/client/connection.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { countNew, predictOffset, rawFetchesInFlight, rawFetchLoop } from "../../src/bench/raw-fetch.ts";
import { ConsumerGroup, Meter, type WorkloadOptions } from "../../src/bench/workloads.ts";
import { startTestBroker } from "../server/helpers.ts";

function batchOf(count: number, valueBytes: number, baseOffset = 0): Uint8Array {
  const batch = encodeBatch(Array.from({ length: count }, (_, index) => ({ value: new Uint8Array(valueBytes).fill(index & 0xff) })), { nowMs: 1_700_000_000_000 });
  new DataView(batch.buffer, batch.byteOffset).setBigInt64(0, BigInt(baseOffset));
  return batch;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let position = 0;
  for (const part of parts) {
    out.set(part, position);
    position += part.length;
  }
  return out;
}

test("countNew skips the records below the expected offset and counts only the batches that held new ones", () => {
  const batches = [batchOf(10, 8, 0), batchOf(5, 8, 10), batchOf(20, 8, 15)];
  const records = concat(batches);
  expect(countNew(records, 0, records.length, 0)).toEqual({ records: 35, bytes: records.length, endOffset: 35, firstOffset: 0 });
  expect(countNew(records, 0, records.length, 12)).toEqual({ records: 23, bytes: batches[1]!.length + batches[2]!.length, endOffset: 35, firstOffset: 0 });
  expect(countNew(records, 0, records.length, 35)).toEqual({ records: 0, bytes: 0, endOffset: 35, firstOffset: 0 });
  // A torn last batch is not counted (whole batches only).
  expect(countNew(records, 0, records.length - 1, 0)).toEqual({ records: 15, bytes: batches[0]!.length + batches[1]!.length, endOffset: 15, firstOffset: 0 });
});

test("a predicted offset moves on by whole strides but never past the partition's last known nextOffset", () => {
  expect(predictOffset({ partition: 0, expected: 100, stride: 50, highWatermark: -1 }, 1)).toBe(100);
  expect(predictOffset({ partition: 0, expected: 100, stride: 50, highWatermark: 1000 }, 0)).toBe(100);
  expect(predictOffset({ partition: 0, expected: 100, stride: 50, highWatermark: 1000 }, 2)).toBe(200);
  expect(predictOffset({ partition: 0, expected: 100, stride: 50, highWatermark: 120 }, 1)).toBe(120);
});

test("each consumer keeps two fetches in flight, and one each once four or more share the process", () => {
  expect([1, 2, 3, 4, 8].map(rawFetchesInFlight)).toEqual([2, 2, 1, 1, 1]);
});

function options(port: number, topic: string, partitions: number, fetchBytes: number): WorkloadOptions {
  return {
    broker: `127.0.0.1:${port}`,
    topic,
    messages: null,
    durationS: null,
    sizeBytes: 0,
    partitions,
    producers: 0,
    consumers: 1,
    batchBytes: 0,
    lingerMs: 0,
    maxInFlight: 1,
    durability: "written",
    rate: null,
    seed: 1,
    raw: true,
    fetchBytes,
  };
}

/** Appends `batches` to each partition; returns the records and bytes stored per partition. */
async function fill(connection: Connection, topic: string, partitions: number, counts: number[], valueBytes: (index: number) => number): Promise<{ records: number; bytes: number }> {
  await connection.request("createTopic", { topic, partitions });
  let records = 0;
  let bytes = 0;
  for (let partition = 0; partition < partitions; partition++) {
    const batches = counts.map((count, index) => batchOf(count, valueBytes(index)));
    await connection.request("produce", { batches: batches.map((batch) => ({ topic, partition, batch })) });
    records += counts.reduce((sum, count) => sum + count, 0);
    bytes += batches.reduce((sum, batch) => sum + batch.length, 0);
  }
  return { records, bytes };
}

async function readAll(port: number, topic: string, partitions: number, fetchBytes: number): Promise<Meter> {
  const meter = new Meter();
  const group = new ConsumerGroup(() => false);
  meter.start();
  await rawFetchLoop(options(port, topic, partitions, fetchBytes), Array.from({ length: partitions }, (_, index) => index), group, meter);
  meter.stop();
  return meter;
}

test("uneven batches make the guesses miss both ways, and every record is still counted exactly once", async () => {
  await using broker = await startTestBroker();
  const connection = new Connection({ broker: `127.0.0.1:${broker.port}` });
  try {
    // Record counts and sizes that change from batch to batch: strides learned from one answer
    // overshoot (gaps) and undershoot (overlaps) the next.
    const counts = Array.from({ length: 120 }, (_, index) => 1 + ((index * 37) % 23) * (index % 5 === 0 ? 9 : 1));
    const stored = await fill(connection, "uneven", 2, counts, (index) => 16 + ((index * 53) % 7) * 40);
    const meter = await readAll(broker.port, "uneven", 2, 6 * 1024);
    expect(meter.completed).toBe(stored.records);
    expect(meter.bytes).toBe(stored.bytes);
  } finally {
    await connection.close();
  }
}, 20_000);

test("even batches are read whole with no byte fetched twice being counted, through one partition", async () => {
  await using broker = await startTestBroker();
  const connection = new Connection({ broker: `127.0.0.1:${broker.port}` });
  try {
    const stored = await fill(connection, "even", 1, Array.from({ length: 200 }, () => 25), () => 100);
    const requestsBefore = broker.broker.stats.requests;
    const meter = await readAll(broker.port, "even", 1, 16 * 1024);
    expect(meter.completed).toBe(stored.records);
    expect(meter.bytes).toBe(stored.bytes);
    // 200 batches of ~3 KiB in 16 KiB fetches: ~40 answers; exact guesses waste none, so the
    // loop asks at most a few more than that (hello, the last empty answer, one guess past the end).
    const fetchesNeeded = Math.ceil(stored.bytes / (16 * 1024 - 4 * 1024));
    expect(broker.broker.stats.requests - requestsBefore).toBeLessThanOrEqual(fetchesNeeded + 4);
  } finally {
    await connection.close();
  }
}, 20_000);
