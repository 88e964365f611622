/**
 * @module test/client/producer-memory
 * The producer's memory under a saturating load. Batch buffers: reused rather than allocated
 * per batch (one answer settles many batches at once and the send loop takes as many again),
 * kept idle only in the part of bufferBytesMax that unacknowledged bytes leave unused, and let
 * go down to the resting count once the load is light. Requests: at most 1 MiB of batches each
 * (the broker holds a whole request in memory until it is appended).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Producer } from "../../src/client/producer.ts";
import { startTestBroker, type TestBroker } from "../server/helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** The documented resting count of idle buffers with the adaptive bound (client/producer.ts, "Memory"). */
const RESTING_BUFFERS_MAX = 16;
let server: TestBroker;

beforeAll(async () => {
  server = await startTestBroker();
  await server.broker.context.log.createTopicAsync("buffers", { partitions: 4 });
});

afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

/** The largest `bufferedBytes + idleBufferBytes` seen, less the resting buffers' share, over `count` records (1 KiB by default) sent as fast as the buffer lets. */
async function saturate(producer: Producer, count: number, value: Uint8Array = new Uint8Array(KiB)): Promise<number> {
  let heldMax = 0;
  const onAck = (error: Error | null): void => {
    if (error !== null) throw error;
    const metrics = producer.metrics;
    const bufferBytes = metrics.idleBuffers === 0 ? 0 : metrics.idleBufferBytes / metrics.idleBuffers;
    heldMax = Math.max(heldMax, metrics.bufferedBytes + metrics.idleBufferBytes - RESTING_BUFFERS_MAX * bufferBytes);
  };
  for (let index = 0; index < count; index++) {
    if (producer.saturated) await producer.ready();
    producer.sendWithCallback("buffers", { value }, onAck);
  }
  await producer.flush();
  return heldMax;
}

test("a saturating producer reuses its batch buffers instead of allocating batches afresh", async () => {
  const producer = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 1, bufferBytesMax: 8 * MiB });
  try {
    // The first run grows the bound and fills the pool; the second is the steady state.
    await saturate(producer, 50_000);
    const before = producer.metrics;
    await saturate(producer, 100_000);
    const after = producer.metrics;
    const batches = after.batchesSent - before.batchesSent;
    const allocated = after.batchBuffersAllocated - before.batchBuffersAllocated;
    // ~100 MB in batches of up to 256 KiB: hundreds of batches, and each answer settles several
    // at once. Every one gets its buffer back from the pool (only keeping 16 idle, one batch in
    // five used to allocate a new one).
    expect(batches).toBeGreaterThan(300);
    expect(allocated).toBeLessThan(batches / 20);
  } finally {
    await producer.close();
  }
});

test("idle buffers stay within the unused part of bufferBytesMax, and light load lets the surplus go", async () => {
  const bufferBytesMax = 8 * MiB;
  const producer = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 1, bufferBytesMax });
  try {
    const heldMax = await saturate(producer, 60_000);
    expect(heldMax).toBeLessThanOrEqual(bufferBytesMax + KiB);
    // Everything is answered: the pool holds what the busy producer kept, more than at rest.
    expect(producer.metrics.bufferedBytes).toBe(0);
    expect(producer.metrics.idleBuffers).toBeGreaterThan(RESTING_BUFFERS_MAX);
    // Light load: a batch leaving by linger far short of the bound lets the surplus go (that
    // batch started in an idle buffer and brings it back when answered: the + 1).
    await producer.send("buffers", { value: "one at a time" });
    expect(producer.metrics.idleBuffers).toBeLessThanOrEqual(RESTING_BUFFERS_MAX + 1);
  } finally {
    await producer.close();
  }
});

test("a produce request carries at most 1 MiB of batches, and a larger batch goes alone", async () => {
  // 256 KiB batches, 4 partitions, 5 in flight each: up to 20 batches are ready at once; one
  // request used to carry them all (5 MiB), now at most four fit in 1 MiB.
  const packed = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 1, batchBytes: 256 * KiB });
  try {
    await saturate(packed, 40_000);
    const { batchesSent, requestsSent } = packed.metrics;
    expect(batchesSent).toBeGreaterThan(100);
    expect(batchesSent / requestsSent).toBeLessThanOrEqual(4);
    // ...and some requests do carry several (they are packed, not sent one batch each).
    expect(batchesSent).toBeGreaterThan(requestsSent);
  } finally {
    await packed.close();
  }
  const large = new Producer({ broker: `127.0.0.1:${server.port}`, lingerMs: 1, batchBytes: 2 * MiB });
  try {
    await saturate(large, 80, new Uint8Array(512 * KiB));
    const { batchesSent, requestsSent } = large.metrics;
    expect(batchesSent).toBeGreaterThanOrEqual(20);
    expect(requestsSent).toBe(batchesSent);
  } finally {
    await large.close();
  }
});
