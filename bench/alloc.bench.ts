/**
 * Allocations per request on the data path, counted, not timed (a figure that survives a noisy
 * machine): JS heap objects created per produce and per fetch, in the broker alone (its request
 * dispatch, as bench/metrics-overhead.bench.ts drives it) and in a whole round trip (Producer or
 * Consumer -> loopback socket -> an in-process broker -> answer -> client).
 *
 * How: after a full collection, `heapStats().objectTypeCounts` (bun:jsc) counts every cell
 * allocated since as live until the next collection runs, so the per-type growth over N requests
 * is what they allocated. A collection during the N requests shows as a type that shrank; such a
 * trial is thrown away and taken again (N is small so that is rare). The counting itself costs a
 * fixed number of objects, measured with an empty run and subtracted.
 *
 *   bun bench/alloc.bench.ts                      (full size, prints a table)
 *   measureAllocations({ requests: 200 })   (smoke size, test/bench/alloc-smoke.test.ts)
 */
import { heapStats } from "bun:jsc";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encode } from "@msgpack/msgpack";
import { Consumer } from "../src/client/consumer.ts";
import { encodeProduceFrame, encodeTopicName } from "../src/client/produce-frame.ts";
import { Producer } from "../src/client/producer.ts";
import { configSchema } from "../src/config.ts";
import { encodeBatch } from "../src/format/record-batch.ts";
import { silentLogger } from "../src/logger.ts";
import { createRequestDecoder } from "../src/protocol/messages.ts";
import { startBroker } from "../src/server/broker.ts";
import type { BrokerContext } from "../src/server/context.ts";
import { dispatch } from "../src/server/dispatch.ts";
import { Session } from "../src/security/session.ts";

export interface AllocationFigure {
  name: string;
  /** Heap objects allocated per request (median of the trials). */
  objectsPerRequest: number;
  /** The types that grew most, per request. */
  topTypes: Array<[string, number]>;
}

const TRIALS = 3;
const TRIAL_ATTEMPTS_MAX = 12;
const TOPIC = "alloc";

type Counts = Record<string, number>;

function typeCounts(): Counts {
  return heapStats().objectTypeCounts as Counts;
}

/** Per-type growth from `before` to `after`; null when a type shrank (a collection ran). */
function growth(before: Counts, after: Counts): Counts | null {
  const grown: Counts = {};
  for (const [type, count] of Object.entries(before)) if ((after[type] ?? 0) < count) return null;
  for (const [type, count] of Object.entries(after)) {
    const delta = count - (before[type] ?? 0);
    if (delta > 0) grown[type] = delta;
  }
  return grown;
}

function total(counts: Counts): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Objects `run` allocates per request over `requests` requests, counting overhead subtracted. */
async function measure(name: string, requests: number, run: (requests: number) => Promise<void> | void): Promise<AllocationFigure> {
  const perTrial: Counts[] = [];
  let overhead: Counts | null = null;
  for (let attempt = 0; attempt < TRIAL_ATTEMPTS_MAX && (perTrial.length < TRIALS || overhead === null); attempt++) {
    Bun.gc(true);
    const before = typeCounts();
    if (overhead === null) {
      overhead = growth(before, typeCounts());
      continue;
    }
    await run(requests);
    const grown = growth(before, typeCounts());
    if (grown !== null) perTrial.push(grown);
  }
  if (perTrial.length === 0 || overhead === null) throw new Error(`${name}: a collection ran during every trial; try fewer requests`);
  const totals = perTrial.map((counts) => Math.max(0, total(counts) - total(overhead!)) / requests);
  const middle = perTrial[totals.indexOf(median(totals))]!;
  const topTypes = Object.entries(middle)
    .map(([type, count]): [string, number] => [type, Math.max(0, count - (overhead![type] ?? 0)) / requests])
    .filter(([, perRequest]) => perRequest >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14);
  return { name, objectsPerRequest: median(totals), topTypes };
}

function produceBody(records: number): Uint8Array {
  const batch = encodeBatch(Array.from({ length: records }, (_, index) => ({ value: `value-${index}`.padEnd(100, ".") })));
  const chunks = encodeProduceFrame(1, "written", [{ topicName: encodeTopicName(TOPIC), partition: 0, bytes: batch, headroomBytes: 0 }]);
  const frame = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let position = 0;
  for (const chunk of chunks) {
    frame.set(chunk, position);
    position += chunk.length;
  }
  return frame.subarray(4);
}

function fetchBody(): Uint8Array {
  return encode({ id: 2, op: "fetch", maxWaitMs: 0, partitions: [{ topic: TOPIC, partition: 0, offset: 0, maxBytes: 1024 }] });
}

function dispatchRun(context: BrokerContext, body: Uint8Array): (requests: number) => void {
  const decode = createRequestDecoder(context.config.frameBytesMax);
  const session = new Session("native", "127.0.0.1");
  return (requests) => {
    for (let index = 0; index < requests; index++) {
      const reply = dispatch(context, decode, body, session);
      if (reply instanceof Promise) throw new Error("the data path's requests answer synchronously here");
    }
  };
}

/** One record per request, each acknowledged before the next is sent. */
function producerRun(producer: Producer, value: Uint8Array): (requests: number) => Promise<void> {
  return (requests) =>
    new Promise<void>((resolve, reject) => {
      let left = requests;
      const next = (): void => {
        producer.sendWithCallback(TOPIC, { value, partition: 0 }, onAck);
      };
      const onAck = (error: unknown): void => {
        if (error !== null) return reject(error);
        if (--left === 0) resolve();
        else next();
      };
      next();
    });
}

/** One fetch per nextBatch() (partitionMaxBytes fits one batch), from the start of the log. */
function consumerRun(port: number): (requests: number) => Promise<void> {
  return async (requests) => {
    const consumer = new Consumer({ broker: `127.0.0.1:${port}`, clientId: "alloc", partitionMaxBytes: 1, maxWaitMs: 0, reuseFetchBuffers: true });
    consumer.assign([{ topic: TOPIC, partition: 0, from: { offset: 0 } }]);
    await consumer.nextBatch(); // connected and warm: the count starts with the next fetch
    for (let index = 1; index < requests; index++) await consumer.nextBatch();
    await consumer.close();
  };
}

export async function measureAllocations(options: { requests: number }): Promise<AllocationFigure[]> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-alloc-"));
  const broker = await startBroker({ config: configSchema.parse({ port: 0, httpPort: 0, dataDir: workDir, logLevel: "silent", flushMs: -1 }), logger: silentLogger() });
  const producer = new Producer({ broker: `127.0.0.1:${broker.port}`, clientId: "alloc", lingerMs: 0 });
  try {
    await broker.context.log.createTopicAsync(TOPIC, { partitions: 1 });
    const requests = options.requests;
    const produce = dispatchRun(broker.context, produceBody(1));
    const fetch = dispatchRun(broker.context, fetchBody());
    const viaProducer = producerRun(producer, new Uint8Array(100));
    // Warm every path up (JIT, pools, connections) before counting.
    produce(requests);
    fetch(requests);
    await viaProducer(requests);
    const figures: AllocationFigure[] = [];
    figures.push(await measure("broker: produce request (dispatch, 1 record)", requests, produce));
    figures.push(await measure("broker: fetch request (dispatch, 1 batch)", requests, fetch));
    figures.push(await measure("round trip: Producer send -> ack (1 record)", requests, viaProducer));
    figures.push(await measure("round trip: Consumer fetch -> batch (incl. connect)", requests, consumerRun(broker.port)));
    return figures;
  } finally {
    await producer.close();
    await broker.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const requests = Number(process.argv[2] ?? 500);
  for (const figure of await measureAllocations({ requests })) {
    const types = figure.topTypes.map(([type, count]) => `${type} ${count.toFixed(2)}`).join(", ");
    console.log(`${figure.name.padEnd(52)} ${figure.objectsPerRequest.toFixed(1).padStart(7)} objects/request  (${types})`);
  }
}
