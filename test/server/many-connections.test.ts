import { describe, expect, test } from "bun:test";
import { decodeRecords, encodeBatch } from "../../src/format/record-batch.ts";
import { type Message, startTestBroker, TestClient } from "./helpers.ts";

const CONNECTIONS = 1_000;

describe("broker: many connections", () => {
  test(`${CONNECTIONS} concurrent connections each produce and fetch back their own message`, async () => {
    await using server = await startTestBroker({ connectionsMax: CONNECTIONS + 10 });
    {
      await using admin = await TestClient.connect(server.port);
      await admin.request({ op: "createTopic", topic: "crowd", partitions: 8 });
    }
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => TestClient.connect(server.port)));
    try {
      const results = await Promise.all(
        clients.map(async (client, index) => {
          const partition = index % 8;
          const produced = await client.request({ op: "produce", batches: [{ topic: "crowd", partition, batch: encodeBatch([{ value: `m${index}` }], { nowMs: index }) }] });
          const offset = ((produced.results as Message[])[0] as Message).baseOffset as number;
          const fetched = await client.request({ op: "fetch", partitions: [{ topic: "crowd", partition, offset }], maxBytes: 1 });
          const records = decodeRecords(fetched.records as Uint8Array);
          return new TextDecoder().decode(records[0]?.value ?? new Uint8Array());
        }),
      );
      expect(results).toEqual(Array.from({ length: CONNECTIONS }, (_, index) => `m${index}`));
      const stats = await (clients[0] as TestClient).request({ op: "stats" });
      expect(stats.connectionsOpen).toBe(CONNECTIONS);
      expect(stats.batchesAppended).toBe(CONNECTIONS);
    } finally {
      await Promise.all(clients.map((client) => client[Symbol.asyncDispose]()));
    }
  }, 20_000);
});
