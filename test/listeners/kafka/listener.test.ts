/**
 * The Kafka listener, request by request, with a raw client (raw-kafka.ts): ApiVersions and the
 * unknown-version rule, Metadata, Produce (magic 2 stored whole, stamped; magic 1 refused; acks=0
 * silent; idempotence through the shared producer state), Fetch (stored bytes back, long poll),
 * ListOffsets, CreateTopics, DeleteTopics, FindCoordinator, InitProducerId, and the off switch.
 */
import { describe, expect, test } from "bun:test";
import { decodeKafkaRecords, encodeKafkaBatch } from "../../../src/format/kafka-batch.ts";
import { readBatchHeader } from "../../../src/format/record-batch.ts";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS, MESSAGES } from "../../../src/listeners/kafka/definitions.ts";
import { describeStartupFailure } from "../../../src/cli/startup-failure.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { decodeResponse, RawKafka } from "./raw-kafka.ts";

const text = new TextEncoder();
const NOW_MS = 1_700_000_000_000;

function batchOf(values: string[], producer?: { producerId: number; producerEpoch: number; baseSequence: number }): Uint8Array {
  return encodeKafkaBatch(values.map((value, index) => ({ key: null, value: text.encode(value), timestamp: NOW_MS + index })), producer);
}

function produceBody(topic: string, records: Uint8Array, acks = 1, partition = 0): KafkaStruct {
  return { transactionalId: null, acks, timeoutMs: 5_000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] };
}

function firstPartition(response: KafkaStruct, topicsField: string, partitionsField: string): KafkaStruct {
  const topics = response[topicsField] as KafkaStruct[];
  return (topics[0]?.[partitionsField] as KafkaStruct[])[0] as KafkaStruct;
}

function fetchBody(topic: string, offset: number, maxWaitMs = 0, minBytes = 0): KafkaStruct {
  return { replicaId: -1, maxWaitMs, minBytes, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }], forgottenTopicsData: [], rackId: "" };
}

describe("Kafka listener: ApiVersions and unknown requests", () => {
  test("ApiVersions v3 lists every API key served with its version range", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const answer = await client.request(API_KEYS.apiVersions, 3, { clientSoftwareName: "test", clientSoftwareVersion: "1" });
    expect(answer.errorCode).toBe(0);
    const ranges = (answer.apiKeys as KafkaStruct[]).map((key) => [key.apiKey, key.minVersion, key.maxVersion]);
    expect(ranges).toEqual([...MESSAGES].map(([apiKey, { request }]) => [apiKey, request.validVersions[0], request.validVersions[1]]));
  });

  test("ApiVersions of an unknown version is answered with a v0 body: error 35 and our ranges", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    // size 10, apiKey 18, version 99, correlation id 42, null client id
    client.write(Uint8Array.of(0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff));
    const answerFrame = await client.nextFrame();
    expect(answerFrame).not.toBeNull();
    const answer = decodeResponse(API_KEYS.apiVersions, 0, 42, answerFrame as Uint8Array);
    expect(answer.errorCode).toBe(35);
    expect((answer.apiKeys as KafkaStruct[]).length).toBe(MESSAGES.size);
  });

  test("an unknown API key closes the connection; the broker keeps serving", async () => {
    await using test = await startTestBroker();
    const port = test.broker.kafkaPort ?? 0;
    await using client = await RawKafka.connect(port);
    client.write(Uint8Array.of(0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff));
    expect(await client.closedWithin()).toBe(true);
    await using again = await RawKafka.connect(port);
    expect((await again.request(API_KEYS.apiVersions, 0, {})).errorCode).toBe(0);
  });

  test("a version we do not serve of another API (Metadata v13) closes the connection", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    client.write(Uint8Array.of(0, 0, 0, 10, 0, 3, 0, 13, 0, 0, 0, 1, 0xff, 0xff));
    expect(await client.closedWithin()).toBe(true);
  });
});

describe("Kafka listener: Metadata", () => {
  test("reports this node as broker and controller at the advertised host and port", async () => {
    await using test = await startTestBroker({ kafkaAdvertisedHost: "kafka.example", kafkaAdvertisedPort: 19092 });
    test.broker.context.log.createTopic("described", { partitions: 2 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (const version of [0, 1, 9, 12]) {
      const answer = await client.request(API_KEYS.metadata, version, { topics: version === 0 ? [] : null, allowAutoTopicCreation: false });
      expect(answer.brokers).toEqual([{ nodeId: 0, host: "kafka.example", port: 19092, ...(version >= 1 ? { rack: null } : {}) }]);
      if (version >= 1) expect(answer.controllerId).toBe(0);
      const topics = answer.topics as KafkaStruct[];
      expect(topics.map((topic) => [topic.name, (topic.partitions as KafkaStruct[]).map((partition) => [partition.partitionIndex, partition.leaderId])])).toEqual([["described", [[0, 0], [1, 0]]]]);
    }
  });

  test("a missing topic is created only when the request allows it", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const refused = await client.request(API_KEYS.metadata, 12, { topics: [{ topicId: new Uint8Array(16), name: "absent" }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    expect((refused.topics as KafkaStruct[])[0]?.errorCode).toBe(3);
    expect(test.broker.context.log.hasTopic("absent")).toBe(false);
    const created = await client.request(API_KEYS.metadata, 12, { topics: [{ topicId: new Uint8Array(16), name: "absent" }], allowAutoTopicCreation: true, includeTopicAuthorizedOperations: false });
    expect((created.topics as KafkaStruct[])[0]?.errorCode).toBe(0);
    expect(test.broker.context.log.hasTopic("absent")).toBe(true);
  });
});

describe("Kafka listener: Produce and Fetch", () => {
  test("a magic 2 batch is stored whole with its base offset and leader epoch stamped, and fetched back as stored", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const first = await client.request(API_KEYS.produce, 9, produceBody("t", batchOf(["a", "b"])));
    expect(firstPartition(first, "responses", "partitionResponses")).toMatchObject({ errorCode: 0, baseOffset: 0 });
    const second = await client.request(API_KEYS.produce, 3, produceBody("t", batchOf(["c"])));
    expect(firstPartition(second, "responses", "partitionResponses")).toMatchObject({ errorCode: 0, baseOffset: 2 });
    for (const version of [4, 11, 12]) {
      const fetched = firstPartition(await client.request(API_KEYS.fetch, version, fetchBody("t", 0)), "responses", "partitions");
      expect(fetched.highWatermark).toBe(3);
      const records = fetched.records as Uint8Array;
      const header = readBatchHeader(records);
      expect([header.baseOffset, header.leaderEpoch]).toEqual([0, 0]);
      const values = decodeKafkaRecords(records).map((record) => [record.offset, new TextDecoder().decode(record.value ?? new Uint8Array())]);
      expect(values).toEqual([[0, "a"], [1, "b"]]);
    }
  });

  test("a batch whose CRC-32C does not match is refused as CORRUPT_MESSAGE and nothing is stored", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const batch = batchOf(["x"]);
    batch[batch.length - 2] = (batch[batch.length - 2] ?? 0) ^ 0xff;
    const answer = firstPartition(await client.request(API_KEYS.produce, 8, produceBody("t", batch)), "responses", "partitionResponses");
    expect(answer.errorCode).toBe(2);
    expect(test.broker.context.log.partition("t", 0).nextOffset).toBe(0);
  });

  test("a magic 1 message set is refused with UNSUPPORTED_FOR_MESSAGE_FORMAT and a message saying why", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const legacy = batchOf(["x"]);
    legacy[16] = 1;
    const answer = firstPartition(await client.request(API_KEYS.produce, 8, produceBody("t", legacy)), "responses", "partitionResponses");
    expect(answer.errorCode).toBe(43);
    expect(answer.errorMessage).toContain("magic 0 or 1");
  });

  test("acks=0 gets no response at all: the next answer on the connection is the next request's", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    client.send(API_KEYS.produce, 7, produceBody("quiet", batchOf(["x"]), 0));
    const answer = await client.request(API_KEYS.apiVersions, 0, {});
    expect(answer.errorCode).toBe(0);
    expect(test.broker.context.log.partition("quiet", 0).nextOffset).toBe(1);
  });

  test("an acks value other than 0, 1 or -1 is refused with INVALID_REQUIRED_ACKS and nothing is stored", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("acks", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const answer = firstPartition(await client.request(API_KEYS.produce, 9, produceBody("acks", batchOf(["x"]), 2)), "responses", "partitionResponses");
    expect(answer.errorCode).toBe(21);
    expect(test.broker.context.log.partition("acks", 0).nextOffset).toBe(0);
  });

  test("a long-polling fetch is answered when a produce arrives", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("wait", { partitions: 1 });
    await using consumer = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    await using producer = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const pending = consumer.request(API_KEYS.fetch, 12, fetchBody("wait", 0, 20_000, 1));
    await producer.request(API_KEYS.produce, 9, produceBody("wait", batchOf(["woken"])));
    const fetched = firstPartition(await pending, "responses", "partitions");
    expect(decodeKafkaRecords(fetched.records as Uint8Array).map((record) => new TextDecoder().decode(record.value ?? new Uint8Array()))).toEqual(["woken"]);
  });

  test("a fetch past the end answers OFFSET_OUT_OF_RANGE; an unknown topic UNKNOWN_TOPIC_OR_PARTITION", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("short", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    expect(firstPartition(await client.request(API_KEYS.fetch, 12, fetchBody("short", 5)), "responses", "partitions").errorCode).toBe(1);
    expect(firstPartition(await client.request(API_KEYS.fetch, 12, fetchBody("nowhere", 0)), "responses", "partitions").errorCode).toBe(3);
  });

  test("idempotent batches share the native producer state: a retry gets its original offset, a gap is refused", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const identity = await client.request(API_KEYS.initProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    expect(identity.errorCode).toBe(0);
    const producer = { producerId: identity.producerId as number, producerEpoch: identity.producerEpoch as number };
    const send = async (batch: Uint8Array) => firstPartition(await client.request(API_KEYS.produce, 9, produceBody("idem", batch, -1)), "responses", "partitionResponses");
    expect(await send(batchOf(["a", "b"], { ...producer, baseSequence: 0 }))).toMatchObject({ errorCode: 0, baseOffset: 0 });
    expect(await send(batchOf(["c"], { ...producer, baseSequence: 2 }))).toMatchObject({ errorCode: 0, baseOffset: 2 });
    expect(await send(batchOf(["c"], { ...producer, baseSequence: 2 }))).toMatchObject({ errorCode: 0, baseOffset: 2 });
    expect((await send(batchOf(["e"], { ...producer, baseSequence: 9 }))).errorCode).toBe(45);
    expect((await send(batchOf(["f"], { producerId: 1_000_000, producerEpoch: 0, baseSequence: 0 }))).errorCode).toBe(59);
    expect(test.broker.context.log.partition("idem", 0).nextOffset).toBe(3);
  });
});

describe("Kafka listener: ListOffsets, topics, coordinator", () => {
  test("ListOffsets answers earliest, latest and a timestamp at v1 and v7", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    await client.request(API_KEYS.produce, 9, produceBody("times", batchOf(["a", "b"])));
    await client.request(API_KEYS.produce, 9, produceBody("times", encodeKafkaBatch([{ value: text.encode("late"), timestamp: NOW_MS + 10_000 }])));
    for (const version of [1, 7]) {
      const ask = async (timestamp: number) => firstPartition(await client.request(API_KEYS.listOffsets, version, { replicaId: -1, isolationLevel: 0, topics: [{ name: "times", partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }] }), "topics", "partitions");
      expect((await ask(-2)).offset).toBe(0);
      expect((await ask(-1)).offset).toBe(3);
      expect((await ask(NOW_MS + 5_000)).offset).toBe(2);
      expect((await ask(NOW_MS + 60_000)).offset).toBe(-1);
    }
  });

  test("CreateTopics creates, refuses duplicates, replication above 1 and unknown configs; validateOnly creates nothing", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const topic = (name: string, extra: Partial<KafkaStruct> = {}) => ({ name, numPartitions: 3, replicationFactor: 1, assignments: [], configs: [], ...extra });
    const answer = await client.request(API_KEYS.createTopics, 7, {
      topics: [topic("made", { configs: [{ name: "retention.ms", value: "60000" }] }), topic("copies", { replicationFactor: 3 }), topic("odd", { configs: [{ name: "cleanup.policy", value: "compact" }] })],
      timeoutMs: 5_000,
      validateOnly: false,
    });
    expect((answer.topics as KafkaStruct[]).map((entry) => [entry.name, entry.errorCode])).toEqual([["made", 0], ["copies", 38], ["odd", 40]]);
    expect(test.broker.context.log.describeTopic("made").partitions.length).toBe(3);
    expect(test.broker.context.log.describeTopic("made").config["retention.ms"]).toBe(60_000);
    const again = await client.request(API_KEYS.createTopics, 0, { topics: [topic("made")], timeoutMs: 5_000 });
    expect((again.topics as KafkaStruct[])[0]?.errorCode).toBe(36);
    const dry = await client.request(API_KEYS.createTopics, 4, { topics: [topic("dry")], timeoutMs: 5_000, validateOnly: true });
    expect((dry.topics as KafkaStruct[])[0]?.errorCode).toBe(0);
    expect(test.broker.context.log.hasTopic("dry")).toBe(false);
  });

  test("DeleteTopics deletes by name at v0 and v6; a missing topic gets UNKNOWN_TOPIC_OR_PARTITION", async () => {
    await using test = await startTestBroker();
    for (const name of ["old", "new"]) test.broker.context.log.createTopic(name, { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const v0 = await client.request(API_KEYS.deleteTopics, 0, { topicNames: ["old", "ghost"], timeoutMs: 5_000 });
    expect((v0.responses as KafkaStruct[]).map((entry) => [entry.name, entry.errorCode])).toEqual([["old", 0], ["ghost", 3]]);
    const v6 = await client.request(API_KEYS.deleteTopics, 6, { topics: [{ name: "new", topicId: new Uint8Array(16) }], timeoutMs: 5_000 });
    expect((v6.responses as KafkaStruct[])[0]?.errorCode).toBe(0);
    expect(test.broker.context.log.listTopics()).toEqual([]);
  });

  test("FindCoordinator names this broker for groups, at v0 and v4", async () => {
    await using test = await startTestBroker();
    const port = test.broker.kafkaPort ?? 0;
    await using client = await RawKafka.connect(port);
    expect(await client.request(API_KEYS.findCoordinator, 0, { key: "g" })).toMatchObject({ errorCode: 0, nodeId: 0, host: "127.0.0.1", port });
    const v4 = await client.request(API_KEYS.findCoordinator, 4, { keyType: 0, coordinatorKeys: ["g1", "g2"] });
    expect((v4.coordinators as KafkaStruct[]).map((entry) => [entry.key, entry.nodeId, entry.port, entry.errorCode])).toEqual([["g1", 0, port, 0], ["g2", 0, port, 0]]);
  });
});

describe("Kafka listener: DescribeConfigs", () => {
  test("describes a topic's settings under Kafka's names, marking which differ from the broker defaults", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("configured", { partitions: 1, config: { "retention.ms": 60_000 } });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (const version of [0, 4]) {
      const answer = await client.request(API_KEYS.describeConfigs, version, { resources: [{ resourceType: 2, resourceName: "configured", configurationKeys: null }, { resourceType: 2, resourceName: "ghost", configurationKeys: null }], includeSynonyms: false, includeDocumentation: false });
      const [found, missing] = answer.results as KafkaStruct[];
      const retention = (found?.configs as KafkaStruct[]).find((entry) => entry.name === "retention.ms");
      expect(retention).toMatchObject({ value: "60000", ...(version === 0 ? { isDefault: false } : { configSource: 1 }) });
      expect((found?.configs as KafkaStruct[]).map((entry) => entry.name).sort()).toEqual(["flush.messages", "flush.ms", "retention.bytes", "retention.ms", "segment.bytes", "segment.ms"]);
      expect(missing?.errorCode).toBe(3);
    }
  });
});

describe("Kafka listener: OffsetCommit and OffsetFetch (outside group membership)", () => {
  test("offsets committed over Kafka are the native store's, and native commits are fetched over Kafka", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("tracked", { partitions: 2 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const commit = (version: number, partitionIndex: number, committedOffset: number) =>
      client.request(API_KEYS.offsetCommit, version, { groupId: "g", generationId: -1, memberId: "", groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: "tracked", partitions: [{ partitionIndex, committedOffset, committedLeaderEpoch: -1, committedMetadata: null }] }] });
    expect(firstPartition(await commit(2, 0, 42), "topics", "partitions").errorCode).toBe(0);
    expect(firstPartition(await commit(8, 1, 7), "topics", "partitions").errorCode).toBe(0);
    expect(test.broker.context.offsets.fetch("g", "tracked", 0)).toEqual({ offset: 42, metadata: "" });
    await test.broker.context.offsets.commit("g", [{ topic: "tracked", partition: 1, offset: 9, metadata: "native" }]);
    for (const version of [1, 7]) {
      const fetched = await client.request(API_KEYS.offsetFetch, version, { groupId: "g", topics: [{ name: "tracked", partitionIndexes: [0, 1] }], requireStable: false });
      const partitions = (fetched.topics as KafkaStruct[])[0]?.partitions as KafkaStruct[];
      expect(partitions.map((entry) => [entry.partitionIndex, entry.committedOffset, entry.metadata])).toEqual([[0, 42, ""], [1, 9, "native"]]);
    }
    const everything = await client.request(API_KEYS.offsetFetch, 7, { groupId: "g", topics: null, requireStable: false });
    expect((everything.topics as KafkaStruct[]).map((topic) => [topic.name, (topic.partitions as KafkaStruct[]).length])).toEqual([["tracked", 2]]);
  });

  test("a commit from a generation of a group without members, or to a missing partition, is refused per partition", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("tracked", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const commit = (generationId: number, partitionIndex: number) =>
      client.request(API_KEYS.offsetCommit, 7, { groupId: "g", generationId, memberId: "m", groupInstanceId: null, topics: [{ name: "tracked", partitions: [{ partitionIndex, committedOffset: 1, committedMetadata: "" }] }] });
    expect(firstPartition(await commit(3, 0), "topics", "partitions").errorCode).toBe(22);
    expect(firstPartition(await commit(-1, 5), "topics", "partitions").errorCode).toBe(3);
    expect(test.broker.context.offsets.fetch("g", "tracked", 0)).toBeNull();
  });
});

describe("Kafka listener: configuration", () => {
  test("with port 0 the Kafka listener takes a free port too, not 9092", async () => {
    await using test = await startTestBroker();
    expect(test.broker.kafkaPort).toBeGreaterThan(0);
    expect(test.broker.kafkaPort).not.toBe(9092);
    expect(test.broker.kafkaPort).not.toBe(test.port);
  });

  test("a Kafka port in use is named as the Kafka listener's, with the way to turn it off", () => {
    const error = Object.assign(new Error("Failed to listen at 127.0.0.1"), { code: "EADDRINUSE", syscall: "listen", port: 9092 });
    const line = describeStartupFailure(error, { host: "127.0.0.1", port: 9600, dataDir: "/d", kafkaHost: "127.0.0.1", kafkaPort: 9092 });
    expect(line).toBe("cannot listen for Kafka clients on 127.0.0.1:9092: the port is in use; stop the process that holds it (ss -ltnp shows it), choose another --kafka-port, or turn the Kafka listener off with --kafka-port -1 [EADDRINUSE]");
  });

  test("kafkaPort -1 turns the listener off", async () => {
    await using test = await startTestBroker({ kafkaPort: -1 });
    expect(test.broker.kafkaPort).toBeNull();
  });
});

describe("Kafka listener: pipelining", () => {
  test("300 requests written at once, past requestsInFlightMax, are all answered in order", async () => {
    await using test = await startTestBroker({ requestsInFlightMax: 4 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const frames: Uint8Array[] = [];
    for (let index = 1; index <= 300; index++) {
      // size 10, ApiVersions v0, correlation id = index, null client id
      const frame = Uint8Array.of(0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 0, 0xff, 0xff);
      new DataView(frame.buffer).setInt32(8, index);
      frames.push(frame);
    }
    client.write(Buffer.concat(frames));
    const seen: number[] = [];
    for (let index = 1; index <= 300; index++) {
      const frame = await client.nextFrame();
      if (frame === null) break;
      seen.push(new DataView(frame.buffer, frame.byteOffset).getInt32(0));
    }
    expect(seen).toEqual(Array.from({ length: 300 }, (_, index) => index + 1));
  });
});

describe("Kafka listener: metrics", () => {
  test("requests count per Kafka API under listener 'kafka', and produce and fetch count topic traffic", async () => {
    await using test = await startTestBroker();
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    await client.request(API_KEYS.produce, 9, produceBody("measured", batchOf(["a", "b", "c"])));
    await client.request(API_KEYS.fetch, 12, fetchBody("measured", 0));
    const metrics = test.broker.context.metrics;
    expect(metrics).not.toBeNull();
    expect(metrics?.kafka.byOperation.get("produce")?.requests).toBe(1);
    expect(metrics?.kafka.byOperation.get("fetch")?.requests).toBe(1);
    expect(metrics?.native.byOperation.get("produce")).toBeUndefined();
    const traffic = metrics?.traffic.byTopic.get("measured");
    expect(traffic?.messagesIn).toBe(3);
    expect(traffic?.bytesIn).toBeGreaterThan(0);
    expect(traffic?.bytesOut).toBe(traffic?.bytesIn);
  });
});
