/**
 * What metrics cost the data path: the broker's request dispatch of a produce (decode, append
 * to the page cache, encode the answer) into one in-process broker, through its own context
 * (metrics on, the default) and through a copy of it with `metrics: null` (what `httpPort -1`
 * gives: no counters at all), interleaved round by round so machine noise hits both alike and
 * both append to the same partition. Reports the median time per request of each and their
 * ratio, for a 1-record batch (the worst case: the most requests per byte) and a 40-record batch.
 *
 *   bun bench/metrics-overhead.bench.ts            (full size)
 *   measureMetricsOverhead({ requests: 500 })      (smoke size, test/bench/metrics-overhead.test.ts)
 */
import { Session } from "../src/security/session.ts";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encodeProduceFrame, encodeTopicName } from "../src/client/produce-frame.ts";
import { configSchema } from "../src/config.ts";
import { encodeBatch } from "../src/format/record-batch.ts";
import { silentLogger } from "../src/logger.ts";
import { createRequestDecoder } from "../src/protocol/messages.ts";
import { startBroker } from "../src/server/broker.ts";
import type { BrokerContext } from "../src/server/context.ts";
import { dispatch } from "../src/server/dispatch.ts";

export interface OverheadFigures {
  records: number;
  onNsPerRequest: number;
  offNsPerRequest: number;
  /** on / off: 1.02 means metrics make a request 2% slower. */
  ratio: number;
  /** Produce requests the metrics registry counted (the "on" side only). */
  countedRequests: number;
}

function produceBody(records: number): Uint8Array {
  const batch = encodeBatch(Array.from({ length: records }, (_, index) => ({ value: `value-${index}`.padEnd(100, ".") })));
  const chunks = encodeProduceFrame(1, "written", [{ topicName: encodeTopicName("overhead"), partition: 0, bytes: batch, headroomBytes: 0 }]);
  const frame = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let position = 0;
  for (const chunk of chunks) {
    frame.set(chunk, position);
    position += chunk.length;
  }
  return frame.subarray(4); // the body, without the length prefix
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** ns per request of `requests` dispatches of `body`. */
function timeRound(context: BrokerContext, body: Uint8Array, requests: number): number {
  const decode = createRequestDecoder(context.config.frameBytesMax);
  const session = new Session("native", "127.0.0.1");
  const startedNs = Bun.nanoseconds();
  for (let index = 0; index < requests; index++) {
    const reply = dispatch(context, decode, body, session);
    if (reply instanceof Promise || reply.kind !== "frame") throw new Error("a written produce answers synchronously");
  }
  return (Bun.nanoseconds() - startedNs) / requests;
}

export async function measureMetricsOverhead(options: { requests: number; rounds?: number; recordCounts?: number[] }): Promise<OverheadFigures[]> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-metrics-overhead-"));
  const broker = await startBroker({ config: configSchema.parse({ port: 0, dataDir: workDir, logLevel: "silent", flushMs: -1 }), logger: silentLogger() });
  const on = broker.context;
  if (on.metrics === null) throw new Error("metrics are on by default");
  const off: BrokerContext = { ...on, metrics: null };
  try {
    // Created first: a produce that must create its topic answers asynchronously (off the loop).
    await on.log.createTopicAsync("overhead", { partitions: 1 });
    const figures: OverheadFigures[] = [];
    for (const records of options.recordCounts ?? [1, 40]) {
      const body = produceBody(records);
      timeRound(on, body, options.requests); // warm both up before measuring
      timeRound(off, body, options.requests);
      const onRounds: number[] = [];
      const offRounds: number[] = [];
      for (let round = 0; round < (options.rounds ?? 5); round++) {
        // Alternate which goes first, so neither always runs on a warmer cache.
        if (round % 2 === 0) {
          onRounds.push(timeRound(on, body, options.requests));
          offRounds.push(timeRound(off, body, options.requests));
        } else {
          offRounds.push(timeRound(off, body, options.requests));
          onRounds.push(timeRound(on, body, options.requests));
        }
      }
      const onNs = median(onRounds);
      const offNs = median(offRounds);
      const counted = on.metrics.native.byOperation.get("produce")?.requests ?? 0;
      figures.push({ records, onNsPerRequest: onNs, offNsPerRequest: offNs, ratio: onNs / offNs, countedRequests: counted });
    }
    return figures;
  } finally {
    await broker.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const figures = await measureMetricsOverhead({ requests: 10_000, rounds: 41 });
  for (const figure of figures) {
    console.log(
      `produce of ${String(figure.records).padStart(2)} record(s): metrics on ${figure.onNsPerRequest.toFixed(0)} ns/request, off ${figure.offNsPerRequest.toFixed(0)} ns/request, on/off ${figure.ratio.toFixed(3)}`,
    );
  }
}
