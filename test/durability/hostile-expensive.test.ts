/**
 * Hostile fuzz with valid but expensive requests (issue 16), against the broker as a child
 * process whose RSS is read from /proc/<pid>/status. Six attacker loops pick, from a seeded PRNG,
 * ACTIONS requests in all among:
 *
 * - metadata naming 10,000 topics (the wire limit);
 * - a fetch of all 64 partitions of a topic, each partition's maxBytes and the total at the
 *   frame limit;
 * - 2,000 pipelined requests written at once, the answers read only afterwards;
 * - a produce carrying the largest batch allowed (batchBytesMax, 4 MiB by default);
 * - a nearly complete 16 MiB frame that then stalls (until the run ends);
 * - a fetch of ~15 MiB from a reader that never reads.
 *
 * Meanwhile a well-behaved client sends one request every 20 ms. Asserted: the broker stays up
 * and answers that client throughout and afterwards; broker RSS stays under its level before +
 * BUDGET_BYTES + RSS_MARGIN_BYTES; once the attackers are gone, the budget is empty and RSS comes
 * back near its level before. Stall figures are printed, not asserted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HostileConnection, nearlyCompleteFrame, Prober, sampleRss } from "../../bench/partial-frames.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { type Message, TestClient } from "../server/helpers.ts";
import { prng } from "../support/prng.ts";
import { type BrokerProcess, rssBytes, spawnBroker, waitFor } from "./broker-process.ts";

const MiB = 1024 * 1024;
const SEED = 16_016;
const ATTACKERS = 6;
const ACTIONS = 36;
const FRAME_BYTES = 16 * MiB;
const BUDGET_BYTES = 128 * MiB;
const RSS_MARGIN_BYTES = 256 * MiB;
const SETTLED_MARGIN_BYTES = 64 * MiB;
const PARTITIONS = 64;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-hostile-expensive-"));
let broker: BrokerProcess;
let admin: TestClient;

beforeAll(async () => {
  broker = await spawnBroker(dataDir, 0, ["--buffered-bytes-max", String(BUDGET_BYTES), "--log-level", "info"]);
  admin = await TestClient.connect(broker.port);
});
afterAll(async () => {
  await admin?.[Symbol.asyncDispose]();
  await broker?.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** What the attackers still hold open when their loops end (stalled frames, silent readers). */
const leftOpen: Array<{ close(): void }> = [];

async function hugeMetadata(port: number): Promise<void> {
  await using client = await TestClient.connect(port);
  const topics = Array.from({ length: 10_000 }, (_, index) => `missing-${index}`);
  const answer = await client.request({ op: "metadata", topics }, 30_000);
  expect(answer.error).toBeUndefined();
}

async function wideFetch(port: number): Promise<void> {
  await using client = await TestClient.connect(port);
  const maxBytes = FRAME_BYTES - 64 * 1024;
  const partitions = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: "wide", partition, offset: 0, maxBytes }));
  const answer = await client.request({ op: "fetch", partitions, maxBytes }, 30_000);
  expect(answer.error).toBeUndefined();
}

async function pipelined(port: number): Promise<void> {
  await using client = await TestClient.connect(port);
  const frames = Array.from({ length: 2_000 }, (_, index) => encodeFrame(encode({ id: index + 1, op: index % 2 === 0 ? "stats" : "metadata", topics: index % 2 === 0 ? undefined : ["wide"] })));
  client.writeRaw(Buffer.concat(frames));
  await client.frame(1_999, 30_000);
}

async function biggestProduce(port: number, random: () => number): Promise<void> {
  await using client = await TestClient.connect(port);
  const value = new Uint8Array(4 * MiB - 4 * 1024).fill(Math.floor(random() * 256));
  const answer = await client.request({ op: "produce", durability: "written", batches: [{ topic: "bulk", partition: 0, batch: encodeBatch([{ value }]) }] }, 30_000);
  expect((answer.results as Message[])[0]!.error).toBeUndefined();
}

async function stalledFrame(port: number): Promise<void> {
  leftOpen.push(await HostileConnection.open(port, nearlyCompleteFrame(FRAME_BYTES)));
}

async function silentReader(port: number): Promise<void> {
  const socket: Socket<undefined> = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data: () => {} } });
  socket.write(encodeFrame(encode({ id: 1, op: "fetch", partitions: [{ topic: "bulk", partition: 0, offset: 0, maxBytes: 15 * MiB }], maxBytes: 15 * MiB })));
  socket.pause();
  leftOpen.push({ close: () => socket.terminate() });
}

const KINDS = ["metadata 10,000 topics", "fetch 64 partitions at the limit", "2,000 pipelined", "produce the largest batch", "stalled 16 MiB frame", "reader that never reads"] as const;

async function runAction(kind: (typeof KINDS)[number], port: number, random: () => number): Promise<void> {
  switch (kind) {
    case "metadata 10,000 topics":
      return hugeMetadata(port);
    case "fetch 64 partitions at the limit":
      return wideFetch(port);
    case "2,000 pipelined":
      return pipelined(port);
    case "produce the largest batch":
      return biggestProduce(port, random);
    case "stalled 16 MiB frame":
      return stalledFrame(port);
    case "reader that never reads":
      return silentReader(port);
  }
}

describe("Hostile fuzz: valid but expensive requests", () => {
  test(`${ACTIONS} expensive requests from ${ATTACKERS} attackers (seed ${SEED}): the broker answers a well-behaved client throughout and RSS stays under budget + margin`, async () => {
    await admin.request({ op: "createTopic", topic: "wide", partitions: PARTITIONS });
    await admin.request({ op: "createTopic", topic: "bulk", partitions: 1 });
    const chunk = encodeBatch([{ value: new Uint8Array(192 * 1024).fill(5) }]);
    for (let first = 0; first < PARTITIONS; first += 16) {
      const batches = Array.from({ length: 16 }, (_, index) => ({ topic: "wide", partition: first + index, batch: chunk }));
      const answer = await admin.request({ op: "produce", durability: "written", batches });
      expect((answer.results as Message[]).every((result) => result.error === undefined)).toBe(true);
    }
    const prober = await Prober.open(broker.port);
    for (let index = 0; index < 20; index++) await prober.request({ op: "stats" });
    const rssBeforeBytes = rssBytes(broker.process.pid)!;
    const rss = sampleRss(broker.process.pid);
    prober.start();
    const random = prng(SEED);
    const counts = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: ATTACKERS }, async () => {
        const own = prng(Math.floor(random() * 2 ** 32));
        while (next < ACTIONS) {
          next++;
          const kind = KINDS[Math.floor(own() * KINDS.length)]!;
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
          await runAction(kind, broker.port, own);
        }
      }),
    );
    await prober.stop();
    const peakRssBytes = rss.stop();
    const during = { answers: prober.answers, failures: prober.failures, longestWaitMs: prober.longestWaitMs };
    const stats = await admin.request({ op: "stats" });
    for (const connection of leftOpen.splice(0)) connection.close();
    let settledRss = rssBytes(broker.process.pid)!;
    let after: Message = {};
    await waitFor(async () => {
      settledRss = rssBytes(broker.process.pid)!;
      after = await admin.request({ op: "stats" });
      return Number(after.bufferedBytes) === 0 && Number(after.connectionsOpen) <= 2 && settledRss < rssBeforeBytes + SETTLED_MARGIN_BYTES;
    }, 15_000, "the attackers' connections to close and memory to come back").catch((error: unknown) => {
      throw new Error(`${String(error)}; RSS ${settledRss} (before ${rssBeforeBytes}), stats ${JSON.stringify(after)}`);
    });
    prober.close();
    console.log(
      `expensive fuzz: ${[...counts].map(([kind, count]) => `${count} x ${kind}`).join(", ")}; ` +
        `well-behaved client: ${during.answers} answers, ${during.failures} failures, longest wait ${during.longestWaitMs.toFixed(1)} ms; ` +
        `broker RSS ${(rssBeforeBytes / MiB).toFixed(0)} MiB -> peak ${(peakRssBytes / MiB).toFixed(0)} MiB (bound +${(BUDGET_BYTES + RSS_MARGIN_BYTES) / MiB} MiB), ` +
        `buffered peak ${(Number(stats.bufferedBytesPeak) / MiB).toFixed(0)} MiB of ${BUDGET_BYTES / MiB}; after: ${(settledRss / MiB).toFixed(0)} MiB`,
    );
    expect(broker.process.exitCode).toBeNull();
    expect(during.failures).toBe(0);
    expect(during.answers).toBeGreaterThan(0);
    expect(peakRssBytes).toBeLessThan(rssBeforeBytes + BUDGET_BYTES + RSS_MARGIN_BYTES);
    expect(Number(stats.bufferedBytesPeak)).toBeLessThanOrEqual(BUDGET_BYTES * 1.125 + 16 * MiB);
    expect((await admin.request({ op: "metadata", topics: ["wide"] })).error).toBeUndefined();
  }, 90_000);
});
