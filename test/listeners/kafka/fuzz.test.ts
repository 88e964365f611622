/**
 * Hostile Kafka frames never crash the broker nor hold its memory: seeded random frames — junk,
 * valid requests cut short or with flipped bytes, declared sizes over the frame limit or
 * "negative", unknown API keys and versions, absurd array and string lengths — each on its own
 * connection. Throughout, the Kafka listener still answers ApiVersions and the native listener
 * still answers hello; at the end every buffered byte is released. Bounded: a fixed number of
 * connections in rounds, stopping by itself.
 */
import { describe, expect, test } from "bun:test";
import { encodeKafkaBatch } from "../../../src/format/kafka-batch.ts";
import { encodeMessage, isFlexible, KafkaWriter, type KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS, MESSAGES } from "../../../src/listeners/kafka/definitions.ts";
import { startTestBroker, TestClient } from "../../server/helpers.ts";
import { prng } from "../../support/prng.ts";
import { until } from "../../support/wait.ts";
import { RawKafka } from "./raw-kafka.ts";

const ROUNDS = 40;
const CONNECTIONS_PER_ROUND = 24;

/** A valid request frame (size prefix included). */
function requestFrame(apiKey: number, version: number, body: KafkaStruct): Uint8Array {
  const pair = MESSAGES.get(apiKey);
  if (pair === undefined) throw new Error("no definition");
  const writer = new KafkaWriter();
  writer.int32(0);
  writer.int16(apiKey);
  writer.int16(version);
  writer.int32(7);
  writer.int16(-1);
  if (isFlexible(pair.request, version)) writer.uvarint(0);
  encodeMessage(pair.request, version, body, writer);
  const bytes = writer.finishBytes();
  new DataView(bytes.buffer).setInt32(0, bytes.length - 4);
  return bytes;
}

const VALID: Uint8Array[] = [
  requestFrame(API_KEYS.apiVersions, 3, { clientSoftwareName: "fuzz", clientSoftwareVersion: "1" }),
  requestFrame(API_KEYS.metadata, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false }),
  requestFrame(API_KEYS.metadata, 1, { topics: [{ name: "fuzz" }] }),
  requestFrame(API_KEYS.produce, 9, { transactionalId: null, acks: 1, timeoutMs: 1000, topicData: [{ name: "fuzz", partitionData: [{ index: 0, records: encodeKafkaBatch([{ value: new Uint8Array(40), timestamp: 1 }]) }] }] }),
  requestFrame(API_KEYS.fetch, 12, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [{ topic: "fuzz", partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }], forgottenTopicsData: [], rackId: "" }),
  requestFrame(API_KEYS.createTopics, 7, { topics: [{ name: "fuzz-made", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: true }),
  requestFrame(API_KEYS.listOffsets, 7, { replicaId: -1, isolationLevel: 0, topics: [{ name: "fuzz", partitions: [{ partitionIndex: 0, timestamp: -1 }] }] }),
  requestFrame(API_KEYS.joinGroup, 2, { groupId: "fuzz-group", sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 1_000, memberId: "", protocolType: "consumer", protocols: [{ name: "range", metadata: new Uint8Array(8) }] }),
  requestFrame(API_KEYS.heartbeat, 4, { groupId: "fuzz-group", generationId: 1, memberId: "nobody", groupInstanceId: null }),
  requestFrame(API_KEYS.describeGroups, 5, { groups: ["fuzz-group"], includeAuthorizedOperations: false }),
];

function hostileFrame(random: () => number, frameBytesMax: number): Uint8Array {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const int = (max: number) => Math.floor(random() * max);
  const valid = pick(VALID);
  switch (int(7)) {
    case 0: // random bytes, any size prefix
      return Uint8Array.from({ length: 4 + int(64) }, () => int(256));
    case 1: // a valid request cut short (the connection then closes)
      return valid.subarray(0, int(valid.length));
    case 2: {
      // a valid request with flipped bytes after the size prefix
      const copy = valid.slice();
      for (let flips = 1 + int(4); flips > 0; flips--) {
        const at = 4 + int(copy.length - 4);
        copy[at] = (copy[at] ?? 0) ^ (1 + int(255));
      }
      return copy;
    }
    case 3: {
      // a declared size over the limit, or "negative"
      const frame = new Uint8Array(16);
      new DataView(frame.buffer).setUint32(0, pick([frameBytesMax + 1, 0xffffffff, 0x80000000]));
      return frame;
    }
    case 4: // an unknown API key or a version out of range
      return Uint8Array.of(0, 0, 0, 10, ...pick([[0x7f, 0xff], [0, 99], [0xff, 0xff]]), ...pick([[0, 0], [0x7f, 0xff], [0xff, 0xfe]]), 0, 0, 0, 1, 0xff, 0xff);
    case 5: {
      // a valid header, then a body declaring an absurd array or string length
      const absurd = pick([0x7fffffff, 0x7ffffff0, -2, -0x7fffffff]);
      const frame = Uint8Array.of(0, 0, 0, 18, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0);
      new DataView(frame.buffer).setInt32(14, absurd);
      return frame;
    }
    default: // a header promising a large body that never comes
      return Uint8Array.of(0, int(0x10), int(256), int(256), 0, 18, 0, 0);
  }
}

describe("Kafka listener fuzz", () => {
  test("hostile frames never crash the broker, the native listener keeps answering, and memory is given back", async () => {
    await using test = await startTestBroker({ frameBytesMax: 2 * 1024 * 1024, batchBytesMax: 1024 * 1024 });
    const kafkaPort = test.broker.kafkaPort ?? 0;
    const random = prng(11);
    await using native = await TestClient.connect(test.port);
    for (let round = 0; round < ROUNDS; round++) {
      const clients = await Promise.all(Array.from({ length: CONNECTIONS_PER_ROUND }, () => RawKafka.connect(kafkaPort)));
      for (const client of clients) client.write(hostileFrame(random, 2 * 1024 * 1024));
      await Bun.sleep(1);
      for (const client of clients) await client[Symbol.asyncDispose]();
      await using probe = await RawKafka.connect(kafkaPort);
      expect((await probe.request(API_KEYS.apiVersions, 3, { clientSoftwareName: "probe", clientSoftwareVersion: "1" })).errorCode).toBe(0);
      expect((await native.request({ op: "hello", versions: [1] })).version).toBe(1);
    }
    await until(() => test.broker.context.memory.usedBytes === 0, 10_000);
    expect(test.broker.context.memory.usedBytes).toBe(0);
  });
});

describe("Kafka listener timeouts", () => {
  test("a connection that holds a partial frame past frameTimeoutMs is closed", async () => {
    await using test = await startTestBroker({ frameTimeoutMs: 100 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    client.write(Uint8Array.of(0, 0, 1, 0, 0, 18));
    expect(await client.closedWithin(5_000)).toBe(true);
  });
});
