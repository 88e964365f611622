/**
 * A single node and the cluster-era group ops (docs/protocol.md, findCoordinator): the node names
 * itself as every group's coordinator, and the internal `__consumer_offsets` topic name is kept
 * from clients (it is the cluster's, docs/cluster.md "Consumer groups").
 */
import { describe, expect, test } from "bun:test";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { startTestBroker, TestClient } from "./helpers.ts";

describe("a single node", () => {
  test("names itself, at its own address, as the coordinator of any group", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    const answer = await client.request({ op: "findCoordinator", group: "billing" });
    expect(answer).toMatchObject({ host: "127.0.0.1", port: server.port });
    expect(answer.error).toBeUndefined();
  });

  test("refuses to create, write to or delete __consumer_offsets, saying the name is the broker's", async () => {
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    const created = await client.request({ op: "createTopic", topic: "__consumer_offsets", partitions: 1 });
    expect(created.error).toMatchObject({ code: "INVALID_TOPIC_NAME" });
    expect(String((created.error as { message: string }).message)).toContain("internal topic");
    const produced = await client.request({ op: "produce", durability: "written", batches: [{ topic: "__consumer_offsets", partition: 0, batch: encodeBatch([{ value: "x" }]) }] });
    expect((produced.results as Array<{ error?: { code: string } }>)[0]?.error?.code).toBe("INVALID_TOPIC_NAME");
    const deleted = await client.request({ op: "deleteTopic", topic: "__consumer_offsets" });
    expect(deleted.error).toMatchObject({ code: "INVALID_TOPIC_NAME" });
    expect(server.broker.context.log.hasTopic("__consumer_offsets")).toBe(false);
  });
});
