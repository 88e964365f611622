import { describe, expect, test } from "bun:test";
import { startTestBroker, TestClient } from "./helpers.ts";

describe("metadata autoCreate", () => {
  test("creates a missing named topic with the default partition count when the broker auto-creates", async () => {
    await using broker = await startTestBroker({ defaultPartitions: 3 });
    await using client = await TestClient.connect(broker.port);
    const plain = await client.request({ op: "metadata", topics: ["fresh"] });
    expect((plain.topics as Array<{ error?: { code: string } }>)[0]?.error?.code).toBe("UNKNOWN_TOPIC");
    const created = await client.request({ op: "metadata", topics: ["fresh"], autoCreate: true });
    expect(created.topics).toEqual([
      { name: "fresh", partitions: [0, 1, 2].map((partition) => ({ partition, logStartOffset: 0, nextOffset: 0 })) },
    ]);
  });

  test("leaves topics alone when the broker does not auto-create, and rejects bad names per topic", async () => {
    await using broker = await startTestBroker({ autoCreateTopics: false });
    await using client = await TestClient.connect(broker.port);
    const answer = await client.request({ op: "metadata", topics: ["fresh"], autoCreate: true });
    expect((answer.topics as Array<{ error?: { code: string } }>)[0]?.error?.code).toBe("UNKNOWN_TOPIC");
    const listed = await client.request({ op: "metadata" });
    expect(listed.topics).toEqual([]);
  });
});
