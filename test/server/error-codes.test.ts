/**
 * @module test/server/error-codes
 * docs/protocol.md, section 6, against a real broker: every error code the broker answers to a
 * request is triggered by one (a row each), every other code is named with the test that covers
 * it, and each input rule of section 6.1 gives the same code from every operation that takes the
 * input — on the fast and the generic decoding path alike.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import * as fs from "node:fs";
import * as path from "node:path";
import { ERROR_CODES, type ErrorCode } from "../../src/errors.ts";
import { encodeBatch, type ProducerFields } from "../../src/format/record-batch.ts";
import { type Message, startTestBroker, TestClient, type TestBroker } from "./helpers.ts";

const ROOT = path.resolve(import.meta.dir, "../..");
const NOW_MS = 1_700_000_000_000;
const BATCH_BYTES_MAX = 1024;

const batchOf = (value: string, producer?: ProducerFields) => encodeBatch([{ value }], producer === undefined ? { nowMs: NOW_MS } : { nowMs: NOW_MS, producer });

function corrupted(batch: Uint8Array): Uint8Array {
  const copy = batch.slice();
  copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0xff;
  return copy;
}

/** Every error code in an answer: the request's own, and each entry's (results, partitions, topics). */
function codesOf(answer: Message): string[] {
  const codes: string[] = [];
  const own = answer.error as Message | undefined;
  if (own !== undefined) codes.push(own.code as string);
  for (const key of ["results", "partitions", "topics"]) {
    const entries = answer[key];
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as Message[]) {
      const error = entry.error as Message | undefined;
      if (error !== undefined) codes.push(error.code as string);
    }
  }
  return codes;
}

let server: TestBroker;
let client: TestClient;

beforeAll(async () => {
  server = await startTestBroker({ batchBytesMax: BATCH_BYTES_MAX });
  client = await TestClient.connect(server.port);
  await client.request({ op: "createTopic", topic: "known", partitions: 1 });
});

afterAll(async () => {
  await client[Symbol.asyncDispose]();
  await server[Symbol.asyncDispose]();
});

async function newProducer(): Promise<{ producerId: number; producerEpoch: number }> {
  return (await client.request({ op: "initProducer" })) as { producerId: number; producerEpoch: number };
}

const idempotent = (producerId: number, producerEpoch: number, baseSequence: number): ProducerFields => ({ producerId, producerEpoch, baseSequence });

/** A request that the broker answers with `code`; `before` runs first (on the same connection). */
interface Row {
  code: ErrorCode;
  request: () => Promise<Message>;
  before?: () => Promise<void>;
}

const rows: Row[] = [
  { code: "INVALID_REQUEST", request: async () => ({ op: "fetch", partitions: "all of them" }) },
  { code: "UNSUPPORTED_VERSION", request: async () => ({ op: "hello", versions: [99] }) },
  { code: "UNKNOWN_OPERATION", request: async () => ({ op: "teleport" }) },
  { code: "UNKNOWN_TOPIC", request: async () => ({ op: "describeTopic", topic: "ghost" }) },
  { code: "UNKNOWN_PARTITION", request: async () => ({ op: "fetch", partitions: [{ topic: "known", partition: 1, offset: 0 }] }) },
  { code: "TOPIC_EXISTS", request: async () => ({ op: "createTopic", topic: "known", partitions: 1 }) },
  { code: "INVALID_TOPIC_NAME", request: async () => ({ op: "createTopic", topic: "bad/name", partitions: 1 }) },
  { code: "INVALID_PARTITIONS", request: async () => ({ op: "createTopic", topic: "too-many", partitions: 1001 }) },
  { code: "INVALID_CONFIG", request: async () => ({ op: "createTopic", topic: "configured", partitions: 1, config: { "retention.ms": "7 days" } }) },
  { code: "CORRUPT_BATCH", request: async () => ({ op: "produce", batches: [{ topic: "known", partition: 0, batch: corrupted(batchOf("x")) }] }) },
  { code: "MESSAGE_TOO_LARGE", request: async () => ({ op: "produce", batches: [{ topic: "known", partition: 0, batch: batchOf("x".repeat(2 * BATCH_BYTES_MAX)) }] }) },
  { code: "OFFSET_OUT_OF_RANGE", request: async () => ({ op: "fetch", partitions: [{ topic: "known", partition: 0, offset: 1_000_000 }] }) },
  {
    code: "OUT_OF_ORDER_SEQUENCE",
    request: async () => {
      const { producerId, producerEpoch } = await newProducer();
      await client.request({ op: "produce", batches: [{ topic: "known", partition: 0, batch: batchOf("first", idempotent(producerId, producerEpoch, 0)) }] });
      return { op: "produce", batches: [{ topic: "known", partition: 0, batch: batchOf("gap", idempotent(producerId, producerEpoch, 5)) }] };
    },
  },
  {
    code: "INVALID_PRODUCER_EPOCH",
    request: async () => {
      const { producerId, producerEpoch } = await newProducer();
      const bumped = (await client.request({ op: "initProducer", producerId, producerEpoch })) as { producerEpoch: number };
      await client.request({ op: "produce", batches: [{ topic: "known", partition: 0, batch: batchOf("new", idempotent(producerId, bumped.producerEpoch, 0)) }] });
      return { op: "produce", batches: [{ topic: "known", partition: 0, batch: batchOf("fenced", idempotent(producerId, producerEpoch, 1)) }] };
    },
  },
  { code: "UNKNOWN_PRODUCER_ID", request: async () => ({ op: "produce", batches: [{ topic: "known", partition: 0, batch: batchOf("x", idempotent(10 ** 12, 0, 0)) }] }) },
  { code: "UNKNOWN_MEMBER", request: async () => ({ op: "heartbeat", group: "g-unknown", memberId: "ghost", memberEpoch: 0, owned: [] }) },
  {
    code: "COMMIT_FENCED",
    request: async () => {
      await client.request({ op: "joinGroup", group: "g-fenced", topics: ["known"] }); // owns partition 0
      const other = await client.request({ op: "joinGroup", group: "g-fenced", topics: ["known"] });
      return { op: "commitOffsets", group: "g-fenced", memberId: other.memberId, generation: other.generation, offsets: [{ topic: "known", partition: 0, offset: 0 }] };
    },
  },
  {
    code: "INCONSISTENT_GROUP_PROTOCOL",
    request: async () => {
      await client.request({ op: "joinGroup", group: "g-sticky", topics: ["known"] });
      return { op: "joinGroup", group: "g-sticky", topics: ["known"], assignor: "range" };
    },
  },
  {
    code: "GROUP_NOT_EMPTY",
    request: async () => {
      await client.request({ op: "joinGroup", group: "g-busy", topics: ["known"] });
      return { op: "deleteGroup", group: "g-busy" };
    },
  },
];

/** Codes a request cannot trigger on a healthy broker, each with the tests that cover it. */
const coveredElsewhere: Partial<Record<ErrorCode, { why: string; tests: string[] }>> = {
  STORAGE_FULL: { why: "needs a full disk", tests: ["test/durability/disk-full.test.ts", "test/log/storage-faults.test.ts"] },
  STORAGE_ERROR: { why: "needs an I/O error", tests: ["test/log/storage-faults.test.ts", "test/durability/disk-full.test.ts"] },
  PARTITION_FAILED: { why: "needs an earlier I/O error", tests: ["test/log/storage-faults.test.ts"] },
  TOO_MANY_CONNECTIONS: { why: "a connection past connectionsMax, answered before it can send", tests: ["test/server/limits.test.ts"] },
  TIMEOUT: { why: "a partial frame held past frameTimeoutMs", tests: ["test/server/limits.test.ts"] },
  SHUTTING_DOWN: { why: "a request that races the broker's stop", tests: ["test/log/log-manager.test.ts", "test/broker/offset-store.test.ts"] },
  BROKER_UNAVAILABLE: { why: "client side only", tests: ["test/client/connection.test.ts", "test/client/integration.test.ts"] },
  CLIENT_CLOSED: { why: "client side only", tests: ["test/client/producer.test.ts", "test/client/connection.test.ts"] },
  THROTTLED: { why: "creates past partitionCreatesPerSecond, on a broker configured for it", tests: ["test/server/availability-create.test.ts"] },
  INTERNAL: { why: "a bug in the broker; the client maps it", tests: ["test/client/wire.test.ts"] },
  REBALANCE_IN_PROGRESS: { why: "Kafka classic groups, served by the coming Kafka listener", tests: ["test/broker/classic-groups.test.ts"] },
  ILLEGAL_GENERATION: { why: "Kafka classic groups, served by the coming Kafka listener", tests: ["test/broker/classic-groups.test.ts"] },
  AUTHENTICATION_REQUIRED: { why: "a broker with authentication scram", tests: ["test/security/native-auth.test.ts"] },
  AUTHENTICATION_FAILED: { why: "a broker with authentication scram and users", tests: ["test/security/native-auth.test.ts"] },
  AUTHENTICATION_THROTTLED: { why: "an address past authFailuresBurst", tests: ["test/security/native-auth.test.ts"] },
  UNKNOWN_USER: { why: "deleteUser by a super-user, on a broker with users", tests: ["test/security/native-auth.test.ts"] },
  AUTHORIZATION_FAILED: { why: "user ops by a non-super-user (and the ACL authorizer)", tests: ["test/security/native-auth.test.ts"] },
  NOT_LEADER: { why: "cluster mode: a produce or replica fetch to a non-leader", tests: ["test/cluster/replication.test.ts"] },
  FENCED_LEADER_EPOCH: { why: "cluster mode: a replica fetch with an old leader epoch", tests: ["test/cluster/replication.test.ts"] },
  NOT_ENOUGH_REPLICAS: { why: "cluster mode: a replicated produce with the ISR below minInsyncReplicas", tests: ["test/cluster/replication.test.ts"] },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { why: "cluster mode: the ISR shrank under a waiting replicated produce", tests: ["test/cluster/replication.test.ts"] },
  CLUSTER_UNAVAILABLE: { why: "cluster mode, with etcd unreachable", tests: ["test/cluster/etcd-gateway.test.ts", "test/cluster/cluster-config.test.ts"] },
  BROKER_ID_IN_USE: { why: "cluster mode, a second broker with a live id", tests: ["test/cluster/etcd-cluster-view.test.ts", "test/cluster/cluster-brokers.test.ts"] },
  FENCED_INSTANCE_ID: { why: "Kafka classic groups' static membership, served by the Kafka listener only", tests: ["test/broker/classic-groups.test.ts"] },
  NOT_COORDINATOR: { why: "cluster mode: a group request to a broker that is not the group's coordinator", tests: ["test/cluster/cluster-groups.test.ts"] },
  COORDINATOR_LOAD_IN_PROGRESS: { why: "cluster mode: a new coordinator loading its __consumer_offsets partition", tests: ["test/cluster/cluster-groups.test.ts"] },
  COORDINATOR_NOT_AVAILABLE: { why: "cluster mode: the group's __consumer_offsets partition without a leader (or the topic being created)", tests: ["test/cluster/cluster-groups.test.ts"] },
  INVALID_REPLICA_ASSIGNMENT: { why: "cluster mode: a partition reassignment to an invalid replica list", tests: ["test/cluster/reassignment-requests.test.ts", "test/cluster/reassignment.test.ts"] },
};

/** Codes the broker never sends (reserved in the doc). */
const reserved: ErrorCode[] = ["TOO_MANY_REQUESTS", "NOT_SUPPORTED"];

describe("docs/protocol.md error table: one request per code the broker answers", () => {
  for (const row of rows) {
    test(`${row.code} is the answer to its triggering request`, async () => {
      const answer = await client.request(await row.request());
      expect(codesOf(answer)).toEqual([row.code]);
    });
  }

  test("LIMIT_EXCEEDED is the answer to a topic past topicsMax", async () => {
    await using small = await startTestBroker({ topicsMax: 1 });
    await using smallClient = await TestClient.connect(small.port);
    await smallClient.request({ op: "createTopic", topic: "only", partitions: 1 });
    expect(codesOf(await smallClient.request({ op: "createTopic", topic: "second", partitions: 1 }))).toEqual(["LIMIT_EXCEEDED"]);
  });

  test("AUTHORIZATION_FAILED is the answer to a request no ACL entry allows (authorizer acl)", async () => {
    await using guarded = await startTestBroker({ authorizer: "acl" });
    await using guardedClient = await TestClient.connect(guarded.port);
    expect(codesOf(await guardedClient.request({ op: "createTopic", topic: "anything", partitions: 1 }))).toEqual(["AUTHORIZATION_FAILED"]);
  });

  test("every other code is reserved or named with the tests that trigger it", () => {
    const triggeredHere = new Set<string>([...rows.map((row) => row.code), "LIMIT_EXCEEDED", "AUTHORIZATION_FAILED"]);
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      if (triggeredHere.has(code) || reserved.includes(code)) continue;
      const covered = coveredElsewhere[code];
      expect(covered, `${code} is neither triggered here nor listed as covered elsewhere`).toBeDefined();
      for (const file of covered?.tests ?? []) expect(fs.readFileSync(path.join(ROOT, file), "utf8")).toContain(`"${code}"`);
    }
  });
});

/** Requests naming `topic` in every operation that takes a topic name. */
function requestsNaming(topic: string, partition = 0): Array<[string, Message]> {
  const batch = batchOf("x");
  return [
    ["produce", { op: "produce", batches: [{ topic, partition, batch }] }],
    ["produce (generic path)", { op: "produce", batches: [{ topic, partition, batch }], pad: "unknown keys take the generic path" }],
    ["fetch", { op: "fetch", partitions: [{ topic, partition, offset: 0 }] }],
    ["fetch (generic path)", { op: "fetch", partitions: [{ topic, partition, offset: 0 }], pad: 1 }],
    ["listOffsets", { op: "listOffsets", partitions: [{ topic, partition, at: "latest" }] }],
    ["commitOffsets", { op: "commitOffsets", group: "g", offsets: [{ topic, partition, offset: 0 }] }],
  ];
}

function requestsNamingOnly(topic: string): Array<[string, Message]> {
  return [
    ["metadata", { op: "metadata", topics: [topic] }],
    ["metadata autoCreate", { op: "metadata", topics: [topic], autoCreate: true }],
    ["createTopic", { op: "createTopic", topic, partitions: 1 }],
    ["deleteTopic", { op: "deleteTopic", topic }],
    ["describeTopic", { op: "describeTopic", topic }],
    ["createPartitions", { op: "createPartitions", topic, partitions: 2 }],
    ["alterTopicConfig", { op: "alterTopicConfig", topic, config: { "retention.ms": 1000 } }],
    ["fetchOffsets", { op: "fetchOffsets", group: "g", partitions: [{ topic, partition: 0 }] }],
    ["joinGroup", { op: "joinGroup", group: "g", topics: [topic] }],
    ["heartbeat", { op: "heartbeat", group: "g", memberId: "m", memberEpoch: 0, owned: [{ topic, partitions: [0] }] }],
  ];
}

async function expectEveryAnswer(requests: Array<[string, Message]>, code: string): Promise<void> {
  for (const [what, request] of requests) {
    expect({ what, codes: codesOf(await client.request(request)) }).toEqual({ what, codes: [code] });
  }
}

describe("docs/protocol.md 6.1: one rule per input, the same code from every operation", () => {
  const invalidNames = ["", "x".repeat(250), "has space", "bad/name", ".", "..", "ünïcödé"];

  test("an invalid topic name is INVALID_TOPIC_NAME wherever a topic is named, empty and 250 characters alike", async () => {
    for (const name of invalidNames) await expectEveryAnswer([...requestsNaming(name), ...requestsNamingOnly(name)], "INVALID_TOPIC_NAME");
  });

  test("a valid name of no topic is UNKNOWN_TOPIC for every operation that reads or changes a topic", async () => {
    const reading = requestsNaming("absent").filter(([what]) => !what.startsWith("produce"));
    const changing = requestsNamingOnly("absent").filter(([what]) => ["metadata", "deleteTopic", "describeTopic", "createPartitions", "alterTopicConfig"].includes(what));
    await expectEveryAnswer([...reading, ...changing], "UNKNOWN_TOPIC");
  });

  test("a partition the topic does not have is UNKNOWN_PARTITION, however large; a negative one is INVALID_REQUEST", async () => {
    for (const partition of [1, 9_999, 10_000, 2 ** 40]) await expectEveryAnswer(requestsNaming("known", partition), "UNKNOWN_PARTITION");
    await expectEveryAnswer(requestsNaming("known", -1), "INVALID_REQUEST");
  });

  test("a partition count outside 1..partitionsPerTopicMax is INVALID_PARTITIONS for createTopic and createPartitions", async () => {
    for (const partitions of [0, -1, 1001, 10_001, 2 ** 40]) {
      await expectEveryAnswer(
        [
          ["createTopic", { op: "createTopic", topic: "counted", partitions }],
          ["createPartitions", { op: "createPartitions", topic: "known", partitions }],
        ],
        "INVALID_PARTITIONS",
      );
    }
    expect(codesOf(await client.request({ op: "createTopic", topic: "counted", partitions: "two" }))).toEqual(["INVALID_REQUEST"]);
  });

  test("a config value unknown, of the wrong type or out of bounds is INVALID_CONFIG for createTopic and alterTopicConfig", async () => {
    const configs = [{ "retention.ms": "7 days" }, { "retention.ms": true }, { "segment.bytes": [1] }, { "segment.bytes": 1 }, { "no.such.option": 1 }, { "": 1 }];
    for (const config of configs) {
      await expectEveryAnswer(
        [
          ["createTopic", { op: "createTopic", topic: "configured", partitions: 1, config }],
          ["alterTopicConfig", { op: "alterTopicConfig", topic: "known", config }],
        ],
        "INVALID_CONFIG",
      );
    }
    expect(codesOf(await client.request({ op: "createTopic", topic: "configured", partitions: 1, config: "retention.ms=1" }))).toEqual(["INVALID_REQUEST"]);
  });

  test("a produce to a missing topic with an invalid name is INVALID_TOPIC_NAME also when auto-creation is off", async () => {
    await using strict = await startTestBroker({ autoCreateTopics: false });
    await using strictClient = await TestClient.connect(strict.port);
    const produce = (topic: string) => strictClient.request({ op: "produce", batches: [{ topic, partition: 0, batch: batchOf("x") }] });
    expect(codesOf(await produce("bad/name"))).toEqual(["INVALID_TOPIC_NAME"]);
    expect(codesOf(await produce("absent"))).toEqual(["UNKNOWN_TOPIC"]);
  });
});

describe("docs/protocol.md section 3: batch timestamps", () => {
  const batchAt = (timestampMs: number) => encodeBatch([{ value: "x", timestamp: timestampMs }], { nowMs: NOW_MS });
  const produceAt = (timestampMs: number) => client.request({ op: "produce", batches: [{ topic: "known", partition: 0, batch: batchAt(timestampMs) }] });

  test("a timestamp of -1 or 2^53 is CORRUPT_BATCH and nothing is stored; 0 and 2^53-1 are taken", async () => {
    const before = ((await client.request({ op: "listOffsets", partitions: [{ topic: "known", partition: 0, at: "latest" }] })).partitions as Message[])[0]?.offset as number;
    for (const timestampMs of [-1, -NOW_MS, 2 ** 53, 2 ** 60]) expect(codesOf(await produceAt(timestampMs))).toEqual(["CORRUPT_BATCH"]);
    const after = ((await client.request({ op: "listOffsets", partitions: [{ topic: "known", partition: 0, at: "latest" }] })).partitions as Message[])[0]?.offset as number;
    expect(after).toBe(before);
    for (const timestampMs of [0, 2 ** 53 - 1]) expect(codesOf(await produceAt(timestampMs))).toEqual([]);
  });
});

describe("docs/protocol.md section 1: error answers carry the id whenever it is readable", () => {
  test("a float or an ext value elsewhere in the request, before the id or after it: the answer carries the id", async () => {
    const floatAfter = { id: 41, op: "fetch", partitions: [{ topic: "known", partition: 0, offset: 0 }], maxWaitMs: 1.5 };
    client.writeRaw(frameOf(floatAfter));
    expect(await client.next()).toMatchObject({ id: 41, error: { code: "INVALID_REQUEST", message: expect.stringContaining("float") } });
    // The float comes before the id: the id is still found.
    client.writeRaw(frameOf({ weight: 0.5, nested: [{ deep: 2.5 }], op: "stats", id: 42 }));
    expect(await client.next()).toMatchObject({ id: 42, error: { code: "INVALID_REQUEST" } });
    // An ext value (refused by the protocol) before the id.
    client.writeRaw(rawFrame([0x82, 0xa1, 0x78, 0xd4, 0x01, 0x07, 0xa2, 0x69, 0x64, 0x2b]));
    expect(await client.next()).toMatchObject({ id: 43, error: { code: "INVALID_REQUEST" } });
  });

  test("an id that is itself a float, negative or missing gives id null", async () => {
    for (const body of [{ id: 7.5, op: "stats" }, { id: -1, op: "stats", x: 0.5 }, { op: "stats", x: 0.5 }]) {
      client.writeRaw(frameOf(body));
      expect(await client.next()).toMatchObject({ id: null, error: { code: "INVALID_REQUEST" } });
    }
  });
});

function rawFrame(body: number[]): Uint8Array {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}

/** A frame of `body` as @msgpack/msgpack encodes it: whole numbers as ints, fractions as float64 (the test client's `send` would add an id). */
function frameOf(body: Record<string, unknown>): Uint8Array {
  return rawFrame([...encode(body)]);
}
