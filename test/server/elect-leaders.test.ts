/**
 * The native `electLeaders` op outside a cluster: a single node has no leaders to move, so it is
 * refused with INVALID_REQUEST and a message saying it needs an etcd cluster; its request limits
 * hold. The cluster behaviour is test/cluster/elect-leaders.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Connection } from "../../src/client/connection.ts";
import { startTestBroker } from "./helpers.ts";

describe("electLeaders on a single node", () => {
  test("is refused with INVALID_REQUEST naming cluster mode", async () => {
    await using broker = await startTestBroker();
    const connection = new Connection({ broker: `127.0.0.1:${broker.port}` });
    try {
      await expect(connection.request("electLeaders", {})).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("etcd cluster") });
    } finally {
      await connection.close();
    }
  });

  test("rejects a timeout out of bounds and an empty partition list before anything else", async () => {
    await using broker = await startTestBroker();
    const connection = new Connection({ broker: `127.0.0.1:${broker.port}` });
    try {
      await expect(connection.request("electLeaders", { timeoutMs: 5 })).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("timeoutMs") });
      await expect(connection.request("electLeaders", { topic: "t", partitions: [] })).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("partitions") });
    } finally {
      await connection.close();
    }
  });
});
