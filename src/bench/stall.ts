/**
 * @module bench/stall
 * How long a well-behaved client waits while another connection sends valid but expensive
 * requests (issue 16). The probe sends one small request every 20 ms (a `metadata` of one
 * topic) and records each answer's latency; a scenario runs its hostile requests on another
 * connection meanwhile and checks what they got. Used by test/server/availability-create.test.ts
 * (assertions on the outcome, stalls printed) and bench/stall.ts (figures against a baseline).
 *
 * Scenarios (defaults: the broker's default configuration):
 *   metadataAutoCreate   one `metadata {autoCreate: true}` naming 10,000 missing topics
 *   createWideTopic      one `createTopic` of 1,000 partitions
 *   produceNewTopics     20 pipelined produces of 100 batches, each batch to a new topic
 */
import { decode, encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import { encodeBatch } from "../format/record-batch.ts";
import { encodeFrame, FrameDecoder } from "../protocol/frame.ts";

export type Answer = Record<string, unknown> & { id: number };

/** A minimal pipelining client: frames out, answers matched by id. */
export class RawClient {
  private readonly decoder = new FrameDecoder(64 << 20);
  private readonly waiting = new Map<number, (answer: Answer) => void>();
  private readonly pending: Uint8Array[] = [];
  private nextId = 1;

  private constructor(private socket: Socket<undefined> | null) {}

  static async connect(host: string, port: number): Promise<RawClient> {
    const client = new RawClient(null);
    client.socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => client.onData(chunk),
        drain: () => client.flush(),
      },
    });
    return client;
  }

  request(request: Record<string, unknown>): Promise<Answer> {
    const id = this.nextId++;
    const answer = new Promise<Answer>((resolve) => this.waiting.set(id, resolve));
    this.pending.push(encodeFrame(encode({ ...request, id })));
    this.flush();
    return answer;
  }

  close(): void {
    this.socket?.end();
  }

  private flush(): void {
    while (this.pending.length > 0 && this.socket !== null) {
      const head = this.pending[0] as Uint8Array;
      const written = this.socket.write(head);
      if (written <= 0) return;
      if (written < head.length) {
        this.pending[0] = head.subarray(written);
        return;
      }
      this.pending.shift();
    }
  }

  private onData(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    for (let body = this.decoder.next(); body !== null; body = this.decoder.next()) {
      const answer = decode(body) as Answer;
      const resolve = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      resolve?.(answer);
    }
  }
}

export interface ProbeFigures {
  requests: number;
  /** The longest wait for one answer (ms). */
  maxMs: number;
  p99Ms: number;
}

/** Sends `metadata [topic]` every `everyMs` until stopped; one request at a time. */
export class StallProbe {
  private readonly latenciesMs: number[] = [];
  /** The first answers include the connection's and the JIT's warm-up: not counted. */
  private warmupLeft = 5;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly client: RawClient,
    topic: string,
    everyMs = 20,
  ) {
    this.loop = this.run(topic, everyMs);
  }

  private async run(topic: string, everyMs: number): Promise<void> {
    while (!this.stopped) {
      const startedMs = performance.now();
      await this.client.request({ op: "metadata", topics: [topic] });
      const tookMs = performance.now() - startedMs;
      if (this.warmupLeft > 0) this.warmupLeft--;
      else this.latenciesMs.push(tookMs);
      if (tookMs < everyMs) await Bun.sleep(everyMs - tookMs);
    }
  }

  async stop(): Promise<ProbeFigures> {
    this.stopped = true;
    await this.loop;
    const sorted = [...this.latenciesMs].sort((a, b) => a - b);
    const at = (fraction: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
    return { requests: sorted.length, maxMs: sorted[sorted.length - 1] ?? 0, p99Ms: at(0.99) };
  }
}

type ErrorEntry = { error?: { code: string; details?: Record<string, unknown> } };

/** What a scenario's hostile requests got. */
export interface ScenarioOutcome {
  /** Topics the broker says it created (their answers carried partitions). */
  created: string[];
  /** Refusals by error code. */
  refused: Record<string, number>;
  /** Refusals whose code was not one a creation cap documents. */
  unexpected: string[];
}

/** Codes a refused create may carry under the documented caps. */
export const CAP_CODES = new Set(["LIMIT_EXCEEDED", "THROTTLED"]);

function tally(outcome: ScenarioOutcome, name: string, entry: ErrorEntry): void {
  if (entry.error === undefined) {
    outcome.created.push(name);
    return;
  }
  outcome.refused[entry.error.code] = (outcome.refused[entry.error.code] ?? 0) + 1;
  if (!CAP_CODES.has(entry.error.code)) outcome.unexpected.push(`${name}: ${JSON.stringify(entry.error)}`);
  if (entry.error.code === "THROTTLED" && typeof entry.error.details?.retryAfterMs !== "number") outcome.unexpected.push(`${name}: THROTTLED without retryAfterMs`);
}

function emptyOutcome(): ScenarioOutcome {
  return { created: [], refused: {}, unexpected: [] };
}

export async function metadataAutoCreate(client: RawClient, count = 10_000, prefix = "m"): Promise<ScenarioOutcome> {
  const names = Array.from({ length: count }, (_, index) => `${prefix}${index}`);
  const answer = await client.request({ op: "metadata", autoCreate: true, topics: names });
  const outcome = emptyOutcome();
  for (const entry of answer.topics as Array<ErrorEntry & { name: string }>) tally(outcome, entry.name, entry);
  return outcome;
}

export async function createWideTopic(client: RawClient, partitions = 1_000, topic = "wide"): Promise<ScenarioOutcome> {
  const answer = await client.request({ op: "createTopic", topic, partitions });
  const outcome = emptyOutcome();
  tally(outcome, topic, answer as ErrorEntry);
  return outcome;
}

/** `count` new topics, `perRequest` of them per produce (one batch each), requests pipelined. */
export async function produceNewTopics(client: RawClient, count = 2_000, prefix = "p", perRequest = 100): Promise<ScenarioOutcome> {
  const batch = encodeBatch([{ value: "hello" }], { nowMs: 1_700_000_000_000 });
  const answers: Array<Promise<{ topics: string[]; answer: Answer }>> = [];
  for (let first = 0; first < count; first += perRequest) {
    const topics = Array.from({ length: Math.min(perRequest, count - first) }, (_, index) => `${prefix}${first + index}`);
    const request = { op: "produce", durability: "written", batches: topics.map((topic) => ({ topic, partition: 0, batch })) };
    answers.push(client.request(request).then((answer) => ({ topics, answer })));
  }
  const outcome = emptyOutcome();
  for (const { topics, answer } of await Promise.all(answers)) {
    const results = answer.results as ErrorEntry[] | undefined;
    topics.forEach((topic, index) => tally(outcome, topic, results?.[index] ?? (answer as ErrorEntry)));
  }
  return outcome;
}

export const SCENARIOS = { metadataAutoCreate, createWideTopic, produceNewTopics } as const;
export type ScenarioName = keyof typeof SCENARIOS;

/** Runs a scenario (in this process) on its own connection. */
export function inProcess(scenario: (client: RawClient) => Promise<ScenarioOutcome>): (host: string, port: number) => Promise<ScenarioOutcome> {
  return async (host, port) => {
    const client = await RawClient.connect(host, port);
    try {
      return await scenario(client);
    } finally {
      client.close();
    }
  };
}

/**
 * Runs one scenario while a probe measures another connection; returns both. The scenario may
 * run in another process (bench/stall.ts does: encoding 10,000 names and decoding the answer
 * would otherwise stall the probe's own event loop and be counted against the broker).
 */
export async function measureStall(host: string, port: number, probeTopic: string, scenario: (host: string, port: number) => Promise<ScenarioOutcome>, afterMs = 60): Promise<{ probe: ProbeFigures; outcome: ScenarioOutcome; scenarioMs: number }> {
  const probeClient = await RawClient.connect(host, port);
  try {
    const probe = new StallProbe(probeClient, probeTopic);
    await Bun.sleep(150);
    const startedMs = performance.now();
    const outcome = await scenario(host, port);
    const scenarioMs = performance.now() - startedMs;
    // The probe goes on for `afterMs`: work the load leaves behind (flushes) counts too.
    await Bun.sleep(afterMs);
    return { probe: await probe.stop(), outcome, scenarioMs };
  } finally {
    probeClient.close();
  }
}

/** The probe alone (no hostile load) for `durationMs`: the baseline. */
export async function measureBaseline(host: string, port: number, probeTopic: string, durationMs: number): Promise<ProbeFigures> {
  const client = await RawClient.connect(host, port);
  try {
    const probe = new StallProbe(client, probeTopic);
    await Bun.sleep(durationMs);
    return await probe.stop();
  } finally {
    client.close();
  }
}
