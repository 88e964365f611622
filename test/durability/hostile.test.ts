/**
 * Slow and hostile clients against the broker as a child process, whose memory is read from
 * /proc/<pid>/status (VmRSS):
 *
 * - a consumer that stops reading while ~1 GiB of fetches (64 pipelined fetches of up to
 *   15 MiB over a 64 MiB topic) is owed on its connection: broker RSS stays within
 *   RSS_GROWTH_MAX of its level before, and another client's produce + fetch round trips
 *   complete meanwhile (their latencies are reported, not asserted);
 * - slowloris: 500 connections each send half a frame and stall; all are closed by the frame
 *   timeout, and the broker serves another client throughout;
 * - a producer flooding synced produce requests without reading answers: once the answers it
 *   does not read fill its socket and `requestsInFlightMax` requests wait, the broker pauses
 *   its reads (backpressure) and RSS stays within the same bound. (With a disk slower than the
 *   flood the same bound holds sooner: requests waiting for their fdatasync count in flight.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { type Message, TestClient } from "../server/helpers.ts";
import { type BrokerProcess, rssBytes, spawnBroker, waitFor } from "./broker-process.ts";

const MiB = 1024 * 1024;
/** The bound this file states: broker RSS may grow at most this much under each attack. */
const RSS_GROWTH_MAX = 128 * MiB;
const FRAME_TIMEOUT_MS = 500;
/** Produce requests the flooder sends at most (~1.2 KiB each): far more than the broker holds. */
const FLOOD_REQUESTS_MAX = 300_000;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-hostile-"));
let broker: BrokerProcess;
let client: TestClient;

beforeAll(async () => {
  broker = await spawnBroker(dataDir, 0, ["--frame-timeout-ms", String(FRAME_TIMEOUT_MS), "--log-level", "info"]);
  client = await TestClient.connect(broker.port);
});
afterAll(async () => {
  await client?.[Symbol.asyncDispose]();
  await broker?.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function frame(body: Record<string, unknown>): Uint8Array {
  const encoded = encode(body);
  const bytes = new Uint8Array(4 + encoded.length);
  new DataView(bytes.buffer).setUint32(0, encoded.length);
  bytes.set(encoded, 4);
  return bytes;
}

/** A raw connection that can stop reading and write whole frames as the socket takes them. */
class RawSocket {
  received = 0;
  closed = false;
  private socket!: Socket<undefined>;
  private drainWaiters: Array<() => void> = [];

  static async open(port: number, options: { reading: boolean }): Promise<RawSocket> {
    const raw = new RawSocket();
    raw.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_socket, chunk) => void (raw.received += chunk.length),
        drain: () => raw.wakeWriters(),
        close: () => {
          raw.closed = true;
          raw.wakeWriters();
        },
        error: () => {
          raw.closed = true;
        },
      },
    });
    if (!options.reading) raw.socket.pause();
    return raw;
  }

  /** Resolves once every byte was taken by the kernel (or the socket closed). */
  async writeAll(bytes: Uint8Array): Promise<boolean> {
    let written = 0;
    while (written < bytes.length) {
      if (this.closed) return false;
      const taken = this.socket.write(bytes.subarray(written));
      if (taken < 0) return false;
      written += taken;
      if (written < bytes.length) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
    return true;
  }

  /** Writes without waiting: true when the whole chunk was taken. */
  tryWrite(bytes: Uint8Array): number {
    return this.socket.write(bytes);
  }

  /** Closes at once (RST when unread bytes remain), as a dying client would. */
  close(): void {
    this.socket.terminate();
  }

  private wakeWriters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }
}

async function brokerStats(): Promise<Message> {
  return (await client.request({ op: "stats" })) as Message;
}

/** One produce and one fetch on the well-behaved client; returns the round trip in ms. */
async function roundTrip(topic: string, index: number): Promise<number> {
  const startedMs = performance.now();
  const produced = await client.request({ op: "produce", durability: "written", batches: [{ topic, partition: 0, batch: encodeBatch([{ value: `probe${index}` }]) }] });
  const result = (produced.results as Message[])[0]!;
  if (result.error !== undefined) throw new Error(`probe produce failed: ${JSON.stringify(result.error)}`);
  const fetched = await client.request({ op: "fetch", partitions: [{ topic, partition: 0, offset: result.baseOffset as number }] });
  if ((fetched.records as Uint8Array).length === 0) throw new Error("probe fetch returned nothing");
  return performance.now() - startedMs;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

function rssMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

describe("Slow and hostile clients", () => {
  test("a consumer that stops reading ~1 GiB of fetches keeps broker RSS bounded while others are served", async () => {
    await client.request({ op: "createTopic", topic: "big", partitions: 1 });
    await client.request({ op: "createTopic", topic: "probe", partitions: 1 });
    const value = new Uint8Array(MiB - 1024).fill(7);
    for (let index = 0; index < 64; index++) {
      const produced = await client.request({ op: "produce", durability: "written", batches: [{ topic: "big", partition: 0, batch: encodeBatch([{ value }]) }] });
      expect((produced.results as Message[])[0]!.error).toBeUndefined();
    }
    const baseline = rssBytes(broker.process.pid)!;
    const stalled = await RawSocket.open(broker.port, { reading: false });
    const fetchesOwedBytes = 64 * 15 * MiB;
    for (let id = 1; id <= 64; id++) {
      await stalled.writeAll(frame({ id, op: "fetch", partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 15 * MiB }], maxBytes: 15 * MiB }));
    }
    await waitFor(async () => Number((await brokerStats()).bytesSentSendfile) + Number((await brokerStats()).bytesSentCopy) > MiB, 10_000, "the broker to start sending the stalled fetches");
    let peak = baseline;
    const latencies: number[] = [];
    for (let index = 0; index < 100; index++) {
      latencies.push(await roundTrip("probe", index));
      peak = Math.max(peak, rssBytes(broker.process.pid)!);
    }
    const stats = await brokerStats();
    console.log(
      `slow consumer: ${rssMiB(fetchesOwedBytes)} of fetches owed, ${rssMiB(Number(stats.bytesSentSendfile) + Number(stats.bytesSentCopy))} sent before it stalled; ` +
        `broker RSS ${rssMiB(baseline)} -> peak ${rssMiB(peak)} (bound: +${rssMiB(RSS_GROWTH_MAX)}); ` +
        `other client's produce+fetch round trip p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms, max ${Math.max(...latencies).toFixed(2)} ms`,
    );
    expect(latencies.length).toBe(100);
    expect(peak - baseline).toBeLessThan(RSS_GROWTH_MAX);
    stalled.close();
    await waitFor(async () => Number((await brokerStats()).connectionsOpen) === 1, 10_000, "the stalled consumer's connection to close");
  }, 30_000);

  test("500 slowloris connections holding half a frame are timed out while others are served", async () => {
    const half = new Uint8Array(4 + 50);
    new DataView(half.buffer).setUint32(0, 100);
    const sockets: RawSocket[] = [];
    for (let index = 0; index < 500; index++) {
      const socket = await RawSocket.open(broker.port, { reading: true });
      expect(socket.tryWrite(half)).toBe(half.length);
      sockets.push(socket);
    }
    const openStats = await brokerStats();
    expect(Number(openStats.connectionsOpen)).toBeGreaterThanOrEqual(500);
    const latencies: number[] = [];
    for (let index = 0; index < 20; index++) latencies.push(await roundTrip("probe", 1000 + index));
    const startedMs = performance.now();
    await waitFor(() => sockets.every((socket) => socket.closed), 10_000, "every slowloris connection to be closed");
    const closedAfterMs = performance.now() - startedMs;
    expect(Number((await brokerStats()).connectionsOpen)).toBe(1);
    latencies.push(await roundTrip("probe", 2000));
    console.log(`slowloris: 500 half-frame connections closed by the ${FRAME_TIMEOUT_MS} ms frame timeout (all gone ${Math.round(closedAfterMs)} ms after the last was opened and probed); probe round trips meanwhile p50 ${percentile(latencies, 0.5).toFixed(2)} ms, max ${Math.max(...latencies).toFixed(2)} ms`);
  }, 30_000);

  test("a producer flooding synced produce requests meets paused reads, not unbounded memory", async () => {
    await client.request({ op: "createTopic", topic: "flood", partitions: 1 });
    const baseline = rssBytes(broker.process.pid)!;
    const flooder = await RawSocket.open(broker.port, { reading: false });
    const batch = encodeBatch([{ value: new Uint8Array(1024).fill(1) }]);
    let sent = 0;
    let writing = true;
    const writer = (async () => {
      while (writing && sent < FLOOD_REQUESTS_MAX) {
        const frames = Array.from({ length: 100 }, (_, index) => frame({ id: sent + index + 1, op: "produce", durability: "synced", batches: [{ topic: "flood", partition: 0, batch }] }));
        if (!(await flooder.writeAll(Buffer.concat(frames)))) return;
        sent += frames.length;
      }
    })();
    let peak = baseline;
    let paused = false;
    // The flooder writes as fast as the socket takes bytes; the broker must pause reading it.
    await waitFor(async () => {
      peak = Math.max(peak, rssBytes(broker.process.pid)!);
      paused = Number((await brokerStats()).connectionsPaused) > 0;
      return paused || sent >= FLOOD_REQUESTS_MAX;
    }, 30_000, "the broker to pause the flooder's reads");
    expect(paused).toBe(true);
    for (let sample = 0; sample < 20; sample++) {
      await roundTrip("probe", 3000 + sample);
      peak = Math.max(peak, rssBytes(broker.process.pid)!);
    }
    const stats = await brokerStats();
    console.log(`produce flood: ${sent} synced 1 KiB produce requests written before the broker paused reading (connectionsPaused ${String(stats.connectionsPaused)}); broker RSS ${rssMiB(baseline)} -> peak ${rssMiB(peak)} (bound: +${rssMiB(RSS_GROWTH_MAX)})`);
    expect(peak - baseline).toBeLessThan(RSS_GROWTH_MAX);
    writing = false;
    flooder.close();
    await writer;
  }, 60_000);

  test("a paused connection whose peer vanished (RST) is closed and its queued answers freed", async () => {
    await client.request({ op: "createTopic", topic: "vanish", partitions: 1 });
    const flooder = await RawSocket.open(broker.port, { reading: false });
    const batch = encodeBatch([{ value: new Uint8Array(1024).fill(2) }]);
    let sent = 0;
    await waitFor(async () => {
      const frames = Array.from({ length: 200 }, (_, index) => frame({ id: sent + index + 1, op: "produce", durability: "synced", batches: [{ topic: "vanish", partition: 0, batch }] }));
      flooder.tryWrite(Buffer.concat(frames));
      sent += frames.length;
      return Number((await brokerStats()).connectionsPaused) > 0;
    }, 30_000, "the broker to pause the flooder's reads");
    flooder.close();
    await waitFor(async () => {
      const stats = await brokerStats();
      // Only the stats client is left: this flooder and the previous test's (also a vanished
      // paused peer, closed without waiting) are both gone.
      return Number(stats.connectionsOpen) === 1 && Number(stats.connectionsPaused) === 0;
    }, 15_000, "the vanished peers' paused connections to be closed");
    expect(await roundTrip("probe", 5000)).toBeGreaterThan(0);
  }, 60_000);
});
