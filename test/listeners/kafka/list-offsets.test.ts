/**
 * ListOffsets by time, exact to the record (broker/time-lookup.ts): the first record whose
 * timestamp is at or after the one asked, with its own timestamp, inside uncompressed, compressed
 * and native batches; -3 (v7) the first record with the largest timestamp; a compressed batch that
 * would inflate past the bound falls back to its base offset with timestamp -1.
 */
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { offsetForTime, offsetOfMaxTimestamp } from "../../../src/broker/time-lookup.ts";
import { crc32c } from "../../../src/format/crc32c.ts";
import { encodeKafkaBatch } from "../../../src/format/kafka-batch.ts";
import { BATCH_HEADER_BYTES, CRC_START, encodeBatch, FIELD } from "../../../src/format/record-batch.ts";
import type { Partition } from "../../../src/log/api.ts";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../../src/listeners/kafka/errors.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { RawKafka } from "./raw-kafka.ts";

const value = new Uint8Array([7]);

/** A gzip-compressed Kafka batch of records with these timestamps. */
function gzipBatch(timestamps: number[]): Uint8Array {
  const plain = encodeKafkaBatch(timestamps.map((timestamp) => ({ value, timestamp })));
  const compressed = gzipSync(plain.subarray(BATCH_HEADER_BYTES));
  const batch = new Uint8Array(BATCH_HEADER_BYTES + compressed.length);
  batch.set(plain.subarray(0, BATCH_HEADER_BYTES));
  batch.set(compressed, BATCH_HEADER_BYTES);
  const view = new DataView(batch.buffer);
  view.setInt32(FIELD.batchLength, batch.length - 12);
  view.setInt16(FIELD.attributes, 1);
  view.setUint32(FIELD.crc, crc32c(batch.subarray(CRC_START)));
  return batch;
}

/**
 * offsets 0-2: Kafka batch, timestamps 100 200 300; 3-4: Kafka batch 150 400 (out of order);
 * 5-6: gzip Kafka batch 500 600; 7-8: native batch 700 800.
 */
function writeTimedLog(partition: Partition): void {
  partition.append(encodeKafkaBatch([100, 200, 300].map((timestamp) => ({ value, timestamp }))));
  partition.append(encodeKafkaBatch([150, 400].map((timestamp) => ({ value, timestamp }))));
  partition.append(gzipBatch([500, 600]));
  partition.append(encodeBatch([{ value: "a", timestamp: 700 }, { value: "b", timestamp: 800 }]));
}

async function listOffsets(client: RawKafka, version: number, timestamps: number[]): Promise<Array<[number, number, number]>> {
  const answer = await client.request(API_KEYS.listOffsets, version, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: "timed", partitions: timestamps.map((timestamp) => ({ partitionIndex: 0, currentLeaderEpoch: -1, timestamp })) }],
  });
  const partitions = (answer.topics as Array<{ partitions: KafkaStruct[] }>)[0]?.partitions ?? [];
  return partitions.map((partition) => [partition.errorCode as number, partition.offset as number, partition.timestamp as number]);
}

describe("ListOffsets by timestamp", () => {
  test("answers the exact first record at or after the time, with its timestamp, in every batch kind", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("timed", { partitions: 1 });
    writeTimedLog(test.broker.context.log.partition("timed", 0));
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (const version of [1, 4, 7]) {
      const answers = await listOffsets(client, version, [0, 150, 201, 301, 550, 750, 801]);
      expect(answers).toEqual([
        [0, 0, 100],
        [0, 1, 200], // the first batch reaches 150 (max 300); its first record at or after 150 is 200
        [0, 2, 300],
        [0, 4, 400], // 150 at offset 3 is older: skipped
        [0, 6, 600], // inside the gzip batch
        [0, 8, 800], // inside the native batch
        [0, -1, -1],
      ]);
    }
  });

  test("-3 (v7) is the first record with the largest timestamp; before v7 it is INVALID_REQUEST; an empty log is -1", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("timed", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    expect(await listOffsets(client, 7, [-3])).toEqual([[0, -1, -1]]);
    const partition = test.broker.context.log.partition("timed", 0);
    writeTimedLog(partition);
    partition.append(encodeKafkaBatch([800, 20].map((timestamp) => ({ value, timestamp }))));
    expect(await listOffsets(client, 7, [-3, -2, -1])).toEqual([[0, 8, 800], [0, 0, -1], [0, 11, -1]]);
    expect(await listOffsets(client, 6, [-3])).toEqual([[KAFKA_ERROR.INVALID_REQUEST, -1, -1]]);
  });

  test("a current leader epoch other than ours is refused (v4+): newer UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("timed", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const answer = await client.request(API_KEYS.listOffsets, 5, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: "timed", partitions: [1, -7, 0].map((currentLeaderEpoch) => ({ partitionIndex: 0, currentLeaderEpoch, timestamp: -1 })) }],
    });
    const partitions = (answer.topics as Array<{ partitions: KafkaStruct[] }>)[0]?.partitions ?? [];
    expect(partitions.map((partition) => partition.errorCode)).toEqual([KAFKA_ERROR.UNKNOWN_LEADER_EPOCH, KAFKA_ERROR.FENCED_LEADER_EPOCH, 0]);
  });

  test("a compressed batch that would inflate past the bound answers its base offset with timestamp -1", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("timed", { partitions: 1 });
    const partition = test.broker.context.log.partition("timed", 0);
    writeTimedLog(partition);
    expect(offsetForTime(partition, 550)).toEqual({ offset: 6, timestampMs: 600 });
    expect(offsetForTime(partition, 550, 16)).toEqual({ offset: 5, timestampMs: -1 });
    expect(offsetOfMaxTimestamp(partition)).toEqual({ offset: 8, timestampMs: 800 });
  });
});
