/**
 * The Kafka codec against every message definition we serve: for each message and each version,
 * a value built from the definition survives encode then decode (once with values, once with
 * nulls where the version allows them), every truncated prefix of its bytes is refused, and
 * absurd or negative lengths are refused with INVALID_REQUEST. Fixed bytes: librdkafka 2.0.2's
 * ApiVersions v3 request (captured from kcat) and our ApiVersions v0 answer; the group APIs'
 * requests (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch) as three real
 * clients sent them — kafka-python 2.0.2 (old versions), librdkafka 2.0.2 through confluent-kafka
 * (a static member, group.instance.id "i1") and @platformatic/kafka 2.12.1 (flexible versions) —
 * captured with a TCP recorder between the client and the broker.
 */
import { describe, expect, test } from "bun:test";
import { RunnelError } from "../../../src/errors.ts";
import { decodeMessage, encodeMessage, type KafkaStruct, type KafkaValue, KafkaWriter } from "../../../src/listeners/kafka/codec.ts";
import {
  apiVersionsRequest,
  type FieldDef,
  heartbeatRequest,
  inVersions,
  joinGroupRequest,
  joinGroupResponse,
  leaveGroupRequest,
  MESSAGES,
  type MessageDef,
  metadataRequest,
  offsetCommitRequest,
  offsetFetchRequest,
  produceRequest,
  syncGroupRequest,
  versions,
} from "../../../src/listeners/kafka/definitions.ts";
import { encodeResponseFrame } from "../../../src/listeners/kafka/dispatch.ts";
import { apiVersionsBody } from "../../../src/listeners/kafka/handlers/api-versions.ts";

function sampleOf(field: FieldDef, version: number, nulls: boolean, depth: number): KafkaValue {
  const nullable = inVersions(field.nullableVersions, version);
  if (nulls && nullable) return null;
  switch (field.type) {
    case "int8":
      return -7;
    case "int16":
      return -300;
    case "int32":
      return 70_000 + depth;
    case "int64":
      return 2 ** 40 + 5;
    case "float64":
      return 1.5;
    case "bool":
      return true;
    case "uuid":
      return Uint8Array.from({ length: 16 }, (_, index) => index + 1);
    case "string":
      return `${field.name}-é`;
    case "bytes":
    case "records":
      return Uint8Array.of(1, 2, 3, depth);
    case "[]int32":
      return [1, -2, 3];
    case "[]int64":
      return [2 ** 45, -1];
    case "[]string":
      return ["a", "bé"];
    case "struct":
      return sampleStruct(field.fields ?? [], version, nulls, depth + 1);
    case "[]struct":
      return [sampleStruct(field.fields ?? [], version, nulls, depth + 1), sampleStruct(field.fields ?? [], version, nulls, depth + 2)];
  }
}

function sampleStruct(fields: readonly FieldDef[], version: number, nulls: boolean, depth: number): KafkaStruct {
  const value: KafkaStruct = {};
  for (const field of fields) if (inVersions(field.versions, version)) value[field.name] = sampleOf(field, version, nulls, depth);
  return value;
}

function servedVersions(message: MessageDef): number[] {
  const out: number[] = [];
  for (let version = message.validVersions[0]; version <= message.validVersions[1]; version++) out.push(version);
  return out;
}

function expectInvalid(run: () => unknown): void {
  let caught: unknown = null;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(RunnelError);
  expect((caught as RunnelError).code).toBe("INVALID_REQUEST");
}

const allMessages = [...MESSAGES.values()].flatMap(({ request, response }) => [request, response]);

describe("Kafka codec: every message, every served version", () => {
  for (const message of allMessages) {
    test(`${message.name} round-trips at versions ${message.validVersions.join("-")}, with values and with nulls`, () => {
      for (const version of servedVersions(message)) {
        for (const nulls of [false, true]) {
          const value = sampleStruct(message.fields, version, nulls, 0);
          const bytes = encodeMessage(message, version, value).finishBytes();
          expect(decodeMessage(message, version, bytes)).toEqual(value);
        }
      }
    });

    test(`${message.name} refuses every truncated prefix of its bytes`, () => {
      for (const version of servedVersions(message)) {
        const bytes = encodeMessage(message, version, sampleStruct(message.fields, version, false, 0)).finishBytes();
        for (let length = 0; length < bytes.length; length++) expectInvalid(() => decodeMessage(message, version, bytes.subarray(0, length)));
      }
    });

    test(`${message.name} refuses trailing bytes after the body`, () => {
      const version = message.validVersions[1];
      const bytes = encodeMessage(message, version, sampleStruct(message.fields, version, false, 0)).finishBytes();
      expectInvalid(() => decodeMessage(message, version, Uint8Array.of(...bytes, 0)));
    });
  }
});

describe("Kafka codec: lengths are checked before anything is allocated", () => {
  test("an array count far beyond the bytes left is refused (classic int32 count)", () => {
    expectInvalid(() => decodeMessage(metadataRequest, 1, Uint8Array.of(0x7f, 0xff, 0xff, 0xff)));
  });

  test("a compact array count far beyond the bytes left is refused (flexible uvarint count)", () => {
    // Metadata v9: topics as uvarint count+1 = 0x0fffffff
    expectInvalid(() => decodeMessage(metadataRequest, 9, Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 0, 0, 0)));
  });

  test("a negative array count other than -1 is refused", () => {
    expectInvalid(() => decodeMessage(metadataRequest, 1, Uint8Array.of(0xff, 0xff, 0xff, 0xfb)));
  });

  test("a null array where the version does not allow one is refused", () => {
    expectInvalid(() => decodeMessage(metadataRequest, 0, Uint8Array.of(0xff, 0xff, 0xff, 0xff)));
  });

  test("a string length beyond the bytes left is refused", () => {
    // Metadata v1: one topic whose name declares 30000 bytes
    expectInvalid(() => decodeMessage(metadataRequest, 1, Uint8Array.of(0, 0, 0, 1, 0x75, 0x30, 0x61)));
  });

  test("a records length of 2 GiB - 1 in a few bytes is refused", () => {
    const head = encodeMessage(produceRequest, 3, { transactionalId: null, acks: 1, timeoutMs: 1000, topicData: [{ name: "t", partitionData: [{ index: 0, records: Uint8Array.of(1) }] }] }).finishBytes();
    const forged = head.slice();
    new DataView(forged.buffer).setInt32(forged.length - 5, 0x7fffffff);
    expectInvalid(() => decodeMessage(produceRequest, 3, forged));
  });

  test("a varint longer than five bytes is refused", () => {
    expectInvalid(() => decodeMessage(metadataRequest, 9, Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)));
  });

  test("a string that is not UTF-8 is refused", () => {
    expectInvalid(() => decodeMessage(metadataRequest, 1, Uint8Array.of(0, 0, 0, 1, 0, 2, 0xc3, 0x28)));
  });
});

describe("Kafka codec: fixed bytes", () => {
  test("decodes librdkafka 2.0.2's ApiVersions v3 request body (captured from kcat -L)", () => {
    // frame: size 36, apiKey 18, version 3, correlation 1, clientId "rdkafka", no header tags, then the body:
    const frame = Buffer.from("000000240012000300000001000772646b61666b61000b6c696272646b61666b6106322e302e3200", "hex");
    const body = new Uint8Array(frame).subarray(4 + 2 + 2 + 4 + 2 + 7 + 1);
    expect(decodeMessage(apiVersionsRequest, 3, body)).toEqual({ clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.0.2" });
  });

  test("decodes and re-encodes librdkafka 2.0.2's Metadata v4 request byte for byte (captured from kcat -L -t cap)", () => {
    // frame: size 27, apiKey 3, version 4, correlation 2, clientId "rdkafka", then the body
    const frame = new Uint8Array(Buffer.from("0000001b0003000400000002000772646b61666b6100000001000363617001", "hex"));
    const body = frame.subarray(4 + 2 + 2 + 4 + 2 + 7);
    const decoded = decodeMessage(metadataRequest, 4, body);
    expect(decoded).toEqual({ topics: [{ name: "cap" }], allowAutoTopicCreation: true });
    expect(encodeMessage(metadataRequest, 4, decoded).finishBytes()).toEqual(body);
  });

  test("decodes and re-encodes librdkafka 2.0.2's JoinGroup v5 request byte for byte (captured from kcat -G capg cap)", () => {
    // frame: size 114, apiKey 11, version 5, correlation 2, clientId "rdkafka", then the body
    const frame = new Uint8Array(Buffer.from("00000072000b000500000002000772646b61666b610004636170670000afc8000493e00000ffff0008636f6e73756d657200000002000572616e67650000001300010000000100036361700000000000000000000a726f756e64726f62696e0000001300010000000100036361700000000000000000", "hex"));
    const body = frame.subarray(4 + 2 + 2 + 4 + 2 + 7);
    const decoded = decodeMessage(joinGroupRequest, 5, body);
    expect([decoded.groupId, decoded.sessionTimeoutMs, decoded.rebalanceTimeoutMs, decoded.memberId, decoded.groupInstanceId, decoded.protocolType]).toEqual(["capg", 45_000, 300_000, "", null, "consumer"]);
    expect((decoded.protocols as KafkaStruct[]).map((protocol) => protocol.name)).toEqual(["range", "roundrobin"]);
    expect(encodeMessage(joinGroupRequest, 5, decoded).finishBytes()).toEqual(body);
  });

  test("decodes and re-encodes librdkafka 2.0.2's SyncGroup v3 request (the leader's assignment) byte for byte", () => {
    const frame = new Uint8Array(Buffer.from("00000088000e000300000005000772646b61666b6100046361706700000001002431613035636535652d633366622d343163302d383435662d613734356662343037663232ffff00000001002431613035636535652d633366622d343163302d383435662d613734356662343037663232000000170000000000010003636170000000010000000000000000", "hex"));
    const body = frame.subarray(4 + 2 + 2 + 4 + 2 + 7);
    const decoded = decodeMessage(syncGroupRequest, 3, body);
    const memberId = "1a05ce5e-c3fb-41c0-845f-a745fb407f22";
    expect([decoded.groupId, decoded.generationId, decoded.memberId, decoded.groupInstanceId]).toEqual(["capg", 1, memberId, null]);
    expect((decoded.assignments as KafkaStruct[]).map((entry) => [entry.memberId, (entry.assignment as Uint8Array).length])).toEqual([[memberId, 23]]);
    expect(encodeMessage(syncGroupRequest, 3, decoded).finishBytes()).toEqual(body);
  });

  /** One captured request frame: who sent it, the definition, and what its body must decode to. */
  interface Captured {
    client: string;
    message: MessageDef;
    hex: string;
    expected: KafkaStruct;
  }

  // The member ids our broker handed out in the captured sessions.
  const PYTHON_MEMBER = "3668433e-c503-4795-9a10-eb495f4aacf6";
  const LIBRDKAFKA_MEMBER = "9c76b06d-b9ac-49ef-9469-04c90742b931";
  const PLATFORMATIC_MEMBER = "3407fc7f-4b82-4972-8041-55ad726d3dd5";
  const CAPTURED: Captured[] = [
    {
      client: "kafka-python 2.0.2",
      message: joinGroupRequest,
      hex: "00000076000b00020000000100126b61666b612d707974686f6e2d322e302e32000970796d656d6265727300001770000493e000000008636f6e73756d657200000002000572616e67650000000e0000000000010002707900000000000a726f756e64726f62696e0000000e0000000000010002707900000000",
      expected: { groupId: "pymembers", sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 300_000, memberId: "", protocolType: "consumer" },
    },
    {
      client: "kafka-python 2.0.2",
      message: syncGroupRequest,
      hex: "00000095000e00010000000200126b61666b612d707974686f6e2d322e302e32000970796d656d6265727300000001002433363638343333652d633530332d343739352d396131302d65623439356634616163663600000001002433363638343333652d633530332d343739352d396131302d6562343935663461616366360000001600000000000100027079000000010000000000000000",
      expected: { groupId: "pymembers", generationId: 1, memberId: PYTHON_MEMBER },
    },
    {
      client: "kafka-python 2.0.2",
      message: offsetCommitRequest,
      hex: "00000073000800020000000400126b61666b612d707974686f6e2d322e302e32000970796d656d6265727300000001002433363638343333652d633530332d343739352d396131302d656234393566346161636636ffffffffffffffff0000000100027079000000010000000000000000000000050000",
      expected: { groupId: "pymembers", generationId: 1, memberId: PYTHON_MEMBER, retentionTimeMs: -1, topics: [{ name: "py", partitions: [{ partitionIndex: 0, committedOffset: 5, committedMetadata: "" }] }] },
    },
    {
      client: "kafka-python 2.0.2",
      message: offsetFetchRequest,
      hex: "00000037000900010000000300126b61666b612d707974686f6e2d322e302e32000970796d656d6265727300000001000270790000000100000000",
      expected: { groupId: "pymembers", topics: [{ name: "py", partitionIndexes: [0] }] },
    },
    {
      client: "kafka-python 2.0.2",
      message: leaveGroupRequest,
      hex: "0000004d000d00010000000500126b61666b612d707974686f6e2d322e302e32000970796d656d62657273002433363638343333652d633530332d343739352d396131302d656234393566346161636636",
      expected: { groupId: "pymembers", memberId: PYTHON_MEMBER },
    },
    {
      client: "librdkafka 2.0.2 (static member)",
      message: joinGroupRequest,
      hex: "0000006f000b0005000000020002636b00046361706700001770000493e00000000269310008636f6e73756d657200000002000572616e67650000001300010000000100036361700000000000000000000a726f756e64726f62696e0000001300010000000100036361700000000000000000",
      expected: { groupId: "capg", sessionTimeoutMs: 6_000, memberId: "", groupInstanceId: "i1", protocolType: "consumer" },
    },
    {
      client: "librdkafka 2.0.2 (static member)",
      message: heartbeatRequest,
      hex: "00000040000c0003000000050002636b00046361706700000001002439633736623036642d623961632d343965662d393436392d30346339303734326239333100026931",
      expected: { groupId: "capg", generationId: 1, memberId: LIBRDKAFKA_MEMBER, groupInstanceId: "i1" },
    },
    {
      client: "librdkafka 2.0.2 (static member)",
      message: offsetCommitRequest,
      hex: "0000005f00080007000000080002636b00046361706700000001002439633736623036642d623961632d343965662d393436392d3034633930373432623933310002693100000001000363617000000001000000000000000000000001ffffffff0000",
      expected: { groupId: "capg", generationId: 1, memberId: LIBRDKAFKA_MEMBER, groupInstanceId: "i1", topics: [{ name: "cap", partitions: [{ partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: "" }] }] },
    },
    {
      client: "librdkafka 2.0.2 (static member)",
      message: offsetFetchRequest,
      hex: "0000001f00090007000000060002636b00056361706702046361700200000000000100",
      expected: { groupId: "capg", topics: [{ name: "cap", partitionIndexes: [0] }], requireStable: true },
    },
    {
      client: "@platformatic/kafka 2.12.1",
      message: joinGroupRequest,
      hex: "00000048000b0007000000040003706c740005636170670000177000018e70010009636f6e73756d6572020b726f756e64726f62696e140001000000010003636170ffffffff000000000000",
      expected: { groupId: "capg", sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 6_000 * 17, memberId: "", groupInstanceId: null, protocolType: "consumer" },
    },
    {
      client: "@platformatic/kafka 2.12.1",
      message: syncGroupRequest,
      hex: "00000091000e0005000000060003706c74000563617067000000012533343037666337662d346238322d343937322d383034312d3535616437323664336464350009636f6e73756d65720b726f756e64726f62696e022533343037666337662d346238322d343937322d383034312d3535616437323664336464351800000000000100036361700000000100000000ffffffff0000",
      expected: { groupId: "capg", generationId: 1, memberId: PLATFORMATIC_MEMBER, groupInstanceId: null, protocolType: "consumer", protocolName: "roundrobin" },
    },
    {
      client: "@platformatic/kafka 2.12.1",
      message: heartbeatRequest,
      hex: "0000003e000c00040000000a0003706c74000563617067000000012533343037666337662d346238322d343937322d383034312d3535616437323664336464350000",
      expected: { groupId: "capg", generationId: 1, memberId: PLATFORMATIC_MEMBER, groupInstanceId: null },
    },
    {
      client: "@platformatic/kafka 2.12.1",
      message: offsetCommitRequest,
      hex: "0000005700080008000000090003706c74000563617067000000012533343037666337662d346238322d343937322d383034312d353561643732366433646435000204636170020000000000000000000000010000000000000000",
      expected: { groupId: "capg", generationId: 1, memberId: PLATFORMATIC_MEMBER, groupInstanceId: null, topics: [{ name: "cap", partitions: [{ partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: 0, committedMetadata: null }] }] },
    },
    {
      client: "@platformatic/kafka 2.12.1",
      message: offsetFetchRequest,
      hex: "0000002000090007000000080003706c7400056361706702046361700200000000000000",
      expected: { groupId: "capg", topics: [{ name: "cap", partitionIndexes: [0] }], requireStable: false },
    },
    {
      client: "@platformatic/kafka 2.12.1",
      message: leaveGroupRequest,
      hex: "0000003c000d0004000000100003706c74000563617067022533343037666337662d346238322d343937322d383034312d353561643732366433646435000000",
      expected: { groupId: "capg", members: [{ memberId: PLATFORMATIC_MEMBER, groupInstanceId: null }] },
    },
  ];

  /** The version and body of a request frame: size, apiKey, version, correlation id, client id, header tags (flexible). */
  function bodyOf(frame: Uint8Array, message: MessageDef): { version: number; body: Uint8Array } {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    expect(view.getInt32(0)).toBe(frame.length - 4);
    expect(view.getInt16(4)).toBe(message.apiKey);
    const version = view.getInt16(6);
    const clientIdBytes = view.getInt16(12);
    const flexible = message.flexible !== null && version >= message.flexible;
    return { version, body: frame.subarray(14 + clientIdBytes + (flexible ? 1 : 0)) };
  }

  for (const captured of CAPTURED) {
    const version = new DataView(Buffer.from(captured.hex.slice(12, 16), "hex").buffer).getInt16(0);
    test(`decodes and re-encodes ${captured.client}'s ${captured.message.name} v${version} byte for byte`, () => {
      const frame = new Uint8Array(Buffer.from(captured.hex, "hex"));
      const { body } = bodyOf(frame, captured.message);
      const decoded = decodeMessage(captured.message, version, body);
      expect(decoded).toMatchObject(captured.expected);
      expect(encodeMessage(captured.message, version, decoded).finishBytes()).toEqual(body);
    });
  }

  test("encodes an ApiVersions v0 answer with error 35 byte for byte", () => {
    const body = apiVersionsBody(35);
    const frame = encodeResponseFrame(18, 0, 7, body);
    const keys = body.apiKeys as KafkaStruct[];
    const expected = new KafkaWriter();
    expected.int32(4 + 2 + 4 + keys.length * 6);
    expected.int32(7);
    expected.int16(35);
    expected.int32(keys.length);
    for (const key of keys) {
      expected.int16(key.apiKey as number);
      expected.int16(key.minVersion as number);
      expected.int16(key.maxVersion as number);
    }
    expect(frame.parts).toEqual([expected.finishBytes()]);
    expect(Buffer.from(frame.parts[0] as Uint8Array).subarray(0, 16).toString("hex")).toBe(`000000${(4 + 2 + 4 + keys.length * 6).toString(16)}000000070023000000${keys.length.toString(16).padStart(2, "0")}0000`);
  });

  test("flexible versions write compact strings and an empty tagged section", () => {
    const bytes = encodeMessage(apiVersionsRequest, 3, { clientSoftwareName: "ab", clientSoftwareVersion: "" }).finishBytes();
    expect([...bytes]).toEqual([3, 0x61, 0x62, 1, 0]);
  });

  test("a null where the version has no null is refused when encoding (JoinGroup's protocolName is nullable from v7 only)", () => {
    const body = { errorCode: 79, generationId: -1, protocolName: null, leader: "", memberId: "m", members: [] };
    expect(() => encodeMessage(joinGroupResponse, 5, body)).toThrow("protocolName is null, which version 5 does not allow");
    expect(encodeMessage(joinGroupResponse, 7, body).finishBytes().length).toBeGreaterThan(0);
  });
});

describe("Kafka definitions", () => {
  test("version notation reads as Kafka writes it", () => {
    expect(versions("3+")).toEqual([3, Number.POSITIVE_INFINITY]);
    expect(versions("0-4")).toEqual([0, 4]);
    expect(versions("0")).toEqual([0, 0]);
    expect(inVersions(versions("none"), 0)).toBe(false);
  });

  test("request and response of each API key serve the same versions and flexible versions", () => {
    for (const [apiKey, { request, response }] of MESSAGES) {
      expect(request.apiKey).toBe(apiKey);
      expect(response.apiKey).toBe(apiKey);
      expect(response.validVersions).toEqual(request.validVersions);
      expect(response.flexible).toBe(request.flexible);
    }
  });

  test("the served ranges are the ones issue 11 asks for", () => {
    const ranges = Object.fromEntries([...MESSAGES.values()].map(({ request }) => [request.name, request.validVersions.join("-")]));
    expect(ranges).toEqual({
      ProduceRequest: "0-9",
      FetchRequest: "4-12",
      ListOffsetsRequest: "1-7",
      MetadataRequest: "0-12",
      OffsetCommitRequest: "1-8",
      OffsetFetchRequest: "1-7",
      FindCoordinatorRequest: "0-4",
      JoinGroupRequest: "0-7",
      HeartbeatRequest: "0-4",
      LeaveGroupRequest: "0-4",
      SyncGroupRequest: "0-5",
      DescribeGroupsRequest: "0-5",
      ListGroupsRequest: "0-4",
      ApiVersionsRequest: "0-4",
      CreateTopicsRequest: "0-7",
      DeleteTopicsRequest: "0-6",
      InitProducerIdRequest: "0-4",
      DescribeConfigsRequest: "0-4",
      DeleteGroupsRequest: "0-2",
      OffsetForLeaderEpochRequest: "0-4",
      AlterConfigsRequest: "0-2",
      CreatePartitionsRequest: "0-3",
      IncrementalAlterConfigsRequest: "0-1",
      // Issue 14: preferred-leader election (listeners/kafka/handlers/elect-leaders.ts).
      ElectLeadersRequest: "0-2",
      // Issue 12: Kafka's ACL APIs (listeners/kafka/handlers/acls.ts).
      DescribeAclsRequest: "0-1",
      CreateAclsRequest: "0-1",
      DeleteAclsRequest: "0-1",
      SaslHandshakeRequest: "0-1",
      SaslAuthenticateRequest: "0-2",
      // Issue 14: partition reassignment (listeners/kafka/handlers/partition-reassignments.ts).
      AlterPartitionReassignmentsRequest: "0-0",
      ListPartitionReassignmentsRequest: "0-0",
    });
  });
});
