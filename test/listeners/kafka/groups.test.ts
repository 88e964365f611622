/**
 * Kafka classic consumer groups over the Kafka listener, request by request with a raw client
 * (raw-kafka.ts): KIP-394's member id handshake, join/sync/heartbeat/leave through the broker's
 * coordinator, commits fenced by generation, a rebalance when a second member joins, a native
 * group of the same name refused, and ListGroups/DescribeGroups/DeleteGroups.
 */
import { describe, expect, test } from "bun:test";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../../src/listeners/kafka/definitions.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { RawKafka } from "./raw-kafka.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function joinBody(groupId: string, memberId: string, metadata = "subscription"): KafkaStruct {
  return { groupId, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId, groupInstanceId: null, protocolType: "consumer", protocols: [{ name: "range", metadata: bytes(metadata) }] };
}

function syncBody(groupId: string, memberId: string, generationId: number, assignments: Array<{ memberId: string; assignment: Uint8Array }> = []): KafkaStruct {
  return { groupId, generationId, memberId, groupInstanceId: null, protocolType: "consumer", protocolName: "range", assignments };
}

function heartbeat(client: RawKafka, groupId: string, memberId: string, generationId: number): Promise<number> {
  return client.request(API_KEYS.heartbeat, 4, { groupId, generationId, memberId, groupInstanceId: null }).then((answer) => answer.errorCode as number);
}

function commitCode(client: RawKafka, groupId: string, memberId: string, generationId: number, committedOffset: number): Promise<number> {
  const body = { groupId, generationId, memberId, groupInstanceId: null, topics: [{ name: "t", partitions: [{ partitionIndex: 0, committedOffset, committedMetadata: "" }] }] };
  return client.request(API_KEYS.offsetCommit, 7, body).then((answer) => ((answer.topics as KafkaStruct[])[0]?.partitions as KafkaStruct[])[0]?.errorCode as number);
}

describe("Kafka listener: classic consumer groups", () => {
  test("a v5 join without a member id gets MEMBER_ID_REQUIRED and an id; the join naming it leads a group of one", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("t", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const first = await client.request(API_KEYS.joinGroup, 5, joinBody("g", ""));
    expect(first.errorCode).toBe(79);
    expect(first.memberId).not.toBe("");
    const joined = await client.request(API_KEYS.joinGroup, 5, joinBody("g", first.memberId as string));
    expect(joined.errorCode).toBe(0);
    expect(joined.generationId).toBe(1);
    expect(joined.protocolName).toBe("range");
    expect(joined.leader).toBe(joined.memberId);
    expect((joined.members as KafkaStruct[]).map((member) => [member.memberId, new TextDecoder().decode(member.metadata as Uint8Array)])).toEqual([[joined.memberId, "subscription"]]);
    const memberId = joined.memberId as string;
    const synced = await client.request(API_KEYS.syncGroup, 5, syncBody("g", memberId, 1, [{ memberId, assignment: bytes("all of t") }]));
    expect(synced.errorCode).toBe(0);
    expect(new TextDecoder().decode(synced.assignment as Uint8Array)).toBe("all of t");
    expect(await heartbeat(client, "g", memberId, 1)).toBe(0);
    expect(await commitCode(client, "g", memberId, 1, 5)).toBe(0);
    expect(test.broker.context.offsets.fetch("g", "t", 0)?.offset).toBe(5);
    expect(await commitCode(client, "g", memberId, 0, 6)).toBe(22);
    expect(await commitCode(client, "g", "stranger", 1, 6)).toBe(25);
    expect(await commitCode(client, "g", "", -1, 6)).toBe(25);
    expect(test.broker.context.offsets.fetch("g", "t", 0)?.offset).toBe(5);
    const left = await client.request(API_KEYS.leaveGroup, 4, { groupId: "g", members: [{ memberId, groupInstanceId: null }] });
    expect([left.errorCode, (left.members as KafkaStruct[])[0]?.errorCode]).toEqual([0, 0]);
    expect(await heartbeat(client, "g", memberId, 1)).toBe(25);
    expect(await commitCode(client, "g", memberId, 1, 6)).toBe(22);
  });

  test("a second member's join rebalances the group: the first hears REBALANCE_IN_PROGRESS, both join generation 2, the leader's assignment reaches the follower", async () => {
    await using test = await startTestBroker();
    await using one = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    await using two = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const first = await one.request(API_KEYS.joinGroup, 2, joinBody("pair", "", "one"));
    const oneId = first.memberId as string;
    expect((await one.request(API_KEYS.syncGroup, 2, syncBody("pair", oneId, 1, [{ memberId: oneId, assignment: bytes("a") }]))).errorCode).toBe(0);
    const secondJoin = two.request(API_KEYS.joinGroup, 2, joinBody("pair", "", "two"));
    expect(await heartbeat(one, "pair", oneId, 1)).toBe(27);
    const rejoined = await one.request(API_KEYS.joinGroup, 2, joinBody("pair", oneId, "one"));
    const second = await secondJoin;
    expect([rejoined.errorCode, second.errorCode, rejoined.generationId, second.generationId]).toEqual([0, 0, 2, 2]);
    expect(rejoined.leader).toBe(oneId);
    expect((rejoined.members as KafkaStruct[]).length).toBe(2);
    expect(second.members).toEqual([]);
    const twoId = second.memberId as string;
    const followerSync = two.request(API_KEYS.syncGroup, 2, syncBody("pair", twoId, 2));
    const leaderSync = await one.request(API_KEYS.syncGroup, 2, syncBody("pair", oneId, 2, [{ memberId: oneId, assignment: bytes("p0") }, { memberId: twoId, assignment: bytes("p1") }]));
    expect(new TextDecoder().decode(leaderSync.assignment as Uint8Array)).toBe("p0");
    expect(new TextDecoder().decode((await followerSync).assignment as Uint8Array)).toBe("p1");
    const described = await one.request(API_KEYS.describeGroups, 5, { groups: ["pair", "nobody"], includeAuthorizedOperations: false });
    const [pair, nobody] = described.groups as KafkaStruct[];
    expect([pair?.groupState, pair?.protocolType, pair?.protocolData, (pair?.members as KafkaStruct[]).length]).toEqual(["Stable", "consumer", "range", 2]);
    expect(nobody?.groupState).toBe("Dead");
    const listed = await one.request(API_KEYS.listGroups, 4, { statesFilter: [] });
    expect(listed.groups).toEqual([{ groupId: "pair", protocolType: "consumer", groupState: "Stable" }]);
    const deleted = await one.request(API_KEYS.deleteGroups, 2, { groupsNames: ["pair", "nobody"] });
    expect((deleted.results as KafkaStruct[]).map((result) => result.errorCode)).toEqual([68, 69]);
  });

  test("a join waiting for the group is answered COORDINATOR_NOT_AVAILABLE when the broker stops, rather than holding the stop up", async () => {
    // The stop waits up to 10 minutes for busy connections: held up by the join, this test would time out.
    const test = await startTestBroker({ shutdownTimeoutMs: 600_000 });
    await using one = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    await using two = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    await one.request(API_KEYS.joinGroup, 2, { ...joinBody("held", ""), rebalanceTimeoutMs: 300_000 });
    const waiting = two.request(API_KEYS.joinGroup, 2, joinBody("held", ""));
    await Bun.sleep(50);
    const stopped = test[Symbol.asyncDispose]();
    expect((await waiting).errorCode).toBe(15);
    await stopped;
  });

  test("a Kafka member cannot join a native group of the same name: INCONSISTENT_GROUP_PROTOCOL", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("t", { partitions: 1 });
    test.broker.context.groups.join({ group: "shared", topics: ["t"] });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const joined = await client.request(API_KEYS.joinGroup, 7, joinBody("shared", "x"));
    expect(joined.errorCode).toBe(23);
    expect(joined.generationId).toBe(-1);
  });

  test("a group left with only committed offsets is listed Empty and can be deleted", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("t", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    expect(await commitCode(client, "done", "", -1, 3)).toBe(0);
    const listed = await client.request(API_KEYS.listGroups, 0, {});
    expect(listed.groups).toEqual([{ groupId: "done", protocolType: "consumer" }]);
    const deleted = await client.request(API_KEYS.deleteGroups, 0, { groupsNames: ["done"] });
    expect((deleted.results as KafkaStruct[])[0]?.errorCode).toBe(0);
    expect(test.broker.context.offsets.fetch("done", "t", 0)).toBeNull();
  });
});
