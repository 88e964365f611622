/**
 * The producer's delivery timeout against a real broker that goes away for good: every record
 * settles within about deliveryTimeoutMs (plus a connect attempt), whether it was in flight,
 * waiting to be retried, waiting for a producer id, or waiting for buffer room; one that never
 * reached a connection says so (`details.sent === false`).
 */
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import { Producer, type SendResult } from "../../src/client/index.ts";
import type { RunnelError } from "../../src/errors.ts";
import { startRealBroker } from "./real-broker.ts";

const cleanups: Array<() => Promise<unknown> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Outcome = { ok: SendResult } | { error: RunnelError };

function outcome(promise: Promise<SendResult>): Promise<Outcome> {
  return promise.then((ok) => ({ ok }), (error: RunnelError) => ({ error }));
}

async function goneBroker(): Promise<{ producer: Producer; topic: string }> {
  const broker = await startRealBroker();
  cleanups.push(() => fs.rmSync(broker.dataDir, { recursive: true, force: true }));
  const producer = new Producer({ broker: broker.address, lingerMs: 1, deliveryTimeoutMs: 500, connectTimeoutMs: 200, retryBackoffMs: 20, bufferBytesMax: 64 * 1024 });
  cleanups.push(() => producer.close().catch(() => undefined));
  expect((await producer.send("gone", { value: "before" })).offset).toBe(0);
  await broker.kill();
  return { producer, topic: "gone" };
}

describe("Producer delivery timeout", () => {
  test("records sent after an earlier batch failed for good fail too, instead of waiting for a producer id forever", async () => {
    const { producer, topic } = await goneBroker();
    const first = await outcome(producer.send(topic, { value: "a" }));
    expect("error" in first && first.error.code).toBe("BROKER_UNAVAILABLE");
    // The producer now needs a new epoch it cannot get: the next records wait for it, until their deadline.
    const later = await Promise.all([outcome(producer.send(topic, { value: "b" })), outcome(producer.send(topic, { value: "c" }))]);
    for (const result of later) {
      expect("error" in result).toBe(true);
      if ("error" in result) {
        expect(result.error.details?.sent).toBe(false);
        expect(result.error.message).toContain("delivery timeout");
      }
    }
  }, 20_000);

  test("sends waiting for buffer room fail at their deadline, never sent; nothing is left behind", async () => {
    const { producer, topic } = await goneBroker();
    const value = "x".repeat(1024);
    // 64 KiB of buffer: most of these wait in the intake for room that never comes.
    const results = await Promise.all(Array.from({ length: 500 }, () => outcome(producer.send(topic, { value }))));
    expect(results.every((result) => "error" in result)).toBe(true);
    const neverSent = results.filter((result) => "error" in result && result.error.details?.sent === false).length;
    expect(neverSent).toBeGreaterThan(400);
    expect(producer.metrics.bufferedBytes).toBe(0);
    expect(producer.saturated).toBe(false);
  }, 20_000);
});
