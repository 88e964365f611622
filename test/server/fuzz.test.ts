import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { type Message, startTestBroker, TestClient } from "./helpers.ts";
import { prng } from "../support/prng.ts";


const SEED = 20_240_601;
const CONNECTIONS = 32;
const FRAMES_PER_CONNECTION = 250;
const FINAL_ID = 4_294_967_295;

function validRequest(random: () => number, id: number): Message {
  const topic = random() < 0.7 ? "fz" : `fz${Math.floor(random() * 4)}`;
  const partition = Math.floor(random() * 3);
  const choices: Message[] = [
    { op: "hello", versions: [1] },
    { op: "metadata" },
    { op: "stats" },
    { op: "produce", durability: ["none", "written", "synced"][Math.floor(random() * 3)], batches: [{ topic, partition, batch: encodeBatch([{ value: "x".repeat(Math.floor(random() * 200)) }], { nowMs: 1 }) }] },
    { op: "fetch", partitions: [{ topic, partition, offset: Math.floor(random() * 5) }], maxWaitMs: Math.floor(random() * 30), maxBytes: 1 + Math.floor(random() * 100_000) },
    { op: "listOffsets", partitions: [{ topic, partition, at: random() < 0.5 ? "latest" : 1 }] },
    { op: "commitOffsets", group: "g", offsets: [{ topic, partition, offset: Math.floor(random() * 10) }] },
    { op: "fetchOffsets", group: "g" },
    { op: "createTopic", topic, partitions: 1 + Math.floor(random() * 3) },
    { op: "describeTopic", topic },
  ];
  return { id, ...(choices[Math.floor(random() * choices.length)] as Message) };
}

/**
 * A frame that is valid, mutated, truncated or junk — always correctly framed unless `misframe`,
 * which also allows wrong and over-limit lengths (these end the connection, so only some
 * connections use them, letting the others push thousands of frames through the message layer).
 */
function fuzzFrame(random: () => number, id: number, misframe: boolean): Uint8Array {
  const body = encode(validRequest(random, id));
  const roll = random();
  if (roll < 0.3) return encodeFrame(body);
  if (roll < 0.6) {
    const mutated = body.slice();
    const flips = 1 + Math.floor(random() * 4);
    for (let flip = 0; flip < flips; flip++) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
    return encodeFrame(mutated);
  }
  if (roll < 0.75) return encodeFrame(body.subarray(0, Math.floor(random() * body.length)));
  if (roll < 0.9 || !misframe) return encodeFrame(new Uint8Array(1 + Math.floor(random() * 300)).map(() => Math.floor(random() * 256)));
  if (roll < 0.98) {
    // Frame length shorter than the body: the rest is read as the next frame(s).
    const frame = encodeFrame(body);
    new DataView(frame.buffer).setUint32(0, Math.max(1, Math.floor(random() * body.length)));
    return frame;
  }
  return new Uint8Array([0xff, 0xff, 0xff, 0xff]); // over the limit: closes this connection
}

async function fuzzConnection(port: number, random: () => number, misframe: boolean): Promise<{ answers: number; finalAnswered: boolean }> {
  await using client = await TestClient.connect(port);
  const frames: Uint8Array[] = [];
  for (let index = 0; index < FRAMES_PER_CONNECTION; index++) frames.push(fuzzFrame(random, index, misframe));
  frames.push(encodeFrame(encode({ id: FINAL_ID, op: "stats" })));
  const stream = Buffer.concat(frames);
  // Random-sized writes, so frames straddle and share TCP segments.
  for (let position = 0; position < stream.length; ) {
    const size = 1 + Math.floor(random() * 3000);
    client.writeRaw(stream.subarray(position, position + size));
    position += size;
    if (random() < 0.1) await Bun.sleep(0);
  }
  // A well-framed stream must end with the answer to the final stats request; a misframed one
  // may have swallowed it or been closed for an over-limit length.
  for (;;) {
    let answer: Message;
    try {
      answer = await client.next(misframe ? 2_000 : 15_000);
    } catch (error) {
      if (misframe) return { answers: client.frames.length, finalAnswered: false };
      throw error;
    }
    if (answer.id === FINAL_ID) return { answers: client.frames.length, finalAnswered: true };
  }
}

describe("broker: fuzz", () => {
  test(`survives ${CONNECTIONS * FRAMES_PER_CONNECTION} random, truncated and mutated frames from ${CONNECTIONS} connections (seed ${SEED}), then serves a good client with memory back near its start`, async () => {
    await using server = await startTestBroker({ topicsMax: 20, partitionsPerTopicMax: 4, fetchWaitMsMax: 50, frameTimeoutMs: 500 });
    const random = prng(SEED);
    {
      // Warm up (JIT, caches) before the memory baseline.
      await using warm = await TestClient.connect(server.port);
      await warm.request({ op: "produce", batches: [{ topic: "fz", partition: 0, batch: encodeBatch([{ value: "w" }], { nowMs: 1 }) }] });
    }
    Bun.gc(true);
    const heapBeforeBytes = process.memoryUsage().heapUsed;
    const outcomes = await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, index) => fuzzConnection(server.port, prng(Math.floor(random() * 2 ** 32)), index % 4 === 0)),
    );
    const wellFramed = outcomes.filter((_, index) => index % 4 !== 0);
    expect(wellFramed.every((outcome) => outcome.finalAnswered)).toBe(true);
    expect(wellFramed.reduce((sum, outcome) => sum + outcome.answers, 0)).toBeGreaterThan(wellFramed.length * FRAMES_PER_CONNECTION * 0.5);

    await using good = await TestClient.connect(server.port);
    expect((await good.request({ op: "hello", versions: [1] })).version).toBe(1);
    const produced = await good.request({ op: "produce", batches: [{ topic: "after-fuzz", partition: 0, batch: encodeBatch([{ value: "ok" }], { nowMs: 1 }) }] });
    expect(produced.results).toEqual([{ topic: "after-fuzz", partition: 0, baseOffset: 0, lastOffset: 0 }]);
    const fetched = await good.request({ op: "fetch", partitions: [{ topic: "after-fuzz", partition: 0, offset: 0 }] });
    expect((fetched.partitions as Message[])[0]?.recordsBytes).toBeGreaterThan(0);
    const stats = await good.request({ op: "stats" });
    expect(stats.requests as number).toBeGreaterThan(CONNECTIONS * 10);
    expect(stats.connectionsOpen).toBe(1);

    Bun.gc(true);
    const heapGrowthBytes = process.memoryUsage().heapUsed - heapBeforeBytes;
    expect(heapGrowthBytes).toBeLessThan(16 * 1024 * 1024);
  }, 30_000);
});
