/**
 * A consumer whose broker cannot be reached gives up after its retryTimeoutMs with an error that
 * says how long it kept retrying (the connection's own figures cover only its last attempt).
 */
import { describe, expect, test } from "bun:test";
import { Consumer } from "../../src/client/index.ts";
import type { RunnelError } from "../../src/errors.ts";

function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => undefined } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

describe("Consumer against a broker never reached", () => {
  test("next() fails with BROKER_UNAVAILABLE saying it retried for longer than one connect attempt", async () => {
    const consumer = new Consumer({ broker: `127.0.0.1:${closedPort()}`, connectTimeoutMs: 100, retryTimeoutMs: 400, retryBackoffMs: 20 }).assign([{ topic: "t", partition: 0 }]);
    try {
      const failure = await consumer.next().then(() => null, (error: RunnelError) => error);
      expect(failure?.code).toBe("BROKER_UNAVAILABLE");
      const retried = /retried for ([\d.]+) s, retryTimeoutMs 400\)$/.exec(failure?.message ?? "");
      expect(retried).not.toBeNull();
      expect(Number(retried![1])).toBeGreaterThanOrEqual(0.4);
    } finally {
      await consumer.close().catch(() => undefined);
    }
  });
});
