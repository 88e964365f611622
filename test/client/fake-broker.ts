/**
 * @module test/client/fake-broker
 * An in-memory broker on a real socket (port 0), speaking the frame format of
 * docs/protocol.md, for client tests that must not depend on the real server: it records
 * every request, lets a test hold or fail produce answers, and serves fetches from the
 * batches it stored. Only the client's view of the protocol is modelled.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { Socket, TCPSocketListener } from "bun";
import { FrameDecoder, encodeFrame } from "../../src/protocol/frame.ts";
import { readBatchHeader, stampBaseOffset, verifyBatch } from "../../src/format/record-batch.ts";

export type Request = Record<string, unknown> & { id: number; op: string };
type Answer = Record<string, unknown>;

interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Uint8Array;
}

interface FakeConnection {
  frames: FrameDecoder;
  /** Answers in request order: a slot resolves when its answer is ready. */
  queue: Array<Promise<Answer | null>>;
  writing: boolean;
  outbound: Uint8Array[];
}

export interface FakeBrokerOptions {
  /** Called for each produce request; return an answer to override, or a promise to hold it. */
  onProduce?: (request: Request) => Answer | Promise<Answer> | undefined;
  requestsInFlightMax?: number;
  version?: number;
  /** Called for an op the fake does not model (e.g. initProducer); return an answer to give it. */
  onOther?: (request: Request) => Answer | undefined;
  /** Called with each fetch answer before it is sent; return it (changed or not) to send. */
  onFetch?: (answer: Answer) => Answer;
}

export class FakeBroker {
  readonly requests: Request[] = [];
  readonly topics = new Map<string, StoredBatch[][]>();
  readonly commits = new Map<string, number>();
  private readonly listener: TCPSocketListener<FakeConnection>;
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder = new Decoder();
  private readonly options: FakeBrokerOptions;
  private readonly dataWaiters = new Set<() => void>();
  private readonly sockets = new Set<Socket<FakeConnection>>();

  constructor(options: FakeBrokerOptions = {}) {
    this.options = options;
    this.listener = Bun.listen<FakeConnection>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (socket) => {
          socket.data = { frames: new FrameDecoder(64 * 1024 * 1024), queue: [], writing: false, outbound: [] };
          this.sockets.add(socket);
        },
        data: (socket, chunk) => this.onData(socket, chunk),
        drain: (socket) => this.onDrain(socket),
        close: (socket) => void this.sockets.delete(socket),
      },
    });
  }

  get address(): string {
    return `127.0.0.1:${this.listener.port}`;
  }

  createTopic(name: string, partitions: number): void {
    this.topics.set(name, Array.from({ length: partitions }, () => []));
  }

  /** Records stored in a partition, per batch. */
  batches(topic: string, partition: number): StoredBatch[] {
    return this.topics.get(topic)?.[partition] ?? [];
  }

  requestsOf(op: string): Request[] {
    return this.requests.filter((request) => request.op === op);
  }

  /** Drops every client connection (as a crash would). */
  dropConnections(): void {
    for (const socket of this.sockets) socket.terminate();
  }

  stop(): void {
    this.dropConnections();
    this.listener.stop(true);
  }

  private onData(socket: Socket<FakeConnection>, chunk: Uint8Array): void {
    const state = socket.data;
    state.frames.push(chunk);
    for (let body = state.frames.next(); body !== null; body = state.frames.next()) {
      const request = this.decoder.decode(body.slice()) as Request;
      this.requests.push(request);
      const answer = Promise.resolve(this.handle(request));
      state.queue.push(answer);
    }
    void this.writeAnswers(socket);
  }

  private async writeAnswers(socket: Socket<FakeConnection>): Promise<void> {
    const state = socket.data;
    if (state.writing) return;
    state.writing = true;
    while (state.queue.length > 0) {
      const answer = await state.queue[0]!;
      state.queue.shift();
      if (answer !== null) this.write(socket, encodeFrame(this.encoder.encode(answer)));
    }
    state.writing = false;
  }

  private write(socket: Socket<FakeConnection>, frame: Uint8Array): void {
    const state = socket.data;
    if (state.outbound.length > 0) {
      state.outbound.push(frame);
      return;
    }
    const written = socket.write(frame);
    if (written < 0) return; // the client is gone
    if (written < frame.length) state.outbound.push(frame.subarray(written));
  }

  private onDrain(socket: Socket<FakeConnection>): void {
    const outbound = socket.data.outbound;
    while (outbound.length > 0) {
      const head = outbound[0]!;
      const written = socket.write(head);
      if (written < 0) return void (outbound.length = 0);
      if (written < head.length) return void (outbound[0] = head.subarray(written));
      outbound.shift();
    }
  }

  private handle(request: Request): Answer | Promise<Answer | null> | null {
    const id = request.id;
    switch (request.op) {
      case "hello":
        if (this.options.version !== undefined) return { id, error: { code: "UNSUPPORTED_VERSION", message: `this broker speaks ${this.options.version}` } };
        return { id, version: 1, serverVersion: "fake", limits: { frameBytesMax: 16 * 1024 * 1024, batchBytesMax: 8 * 1024 * 1024, requestsInFlightMax: this.options.requestsInFlightMax ?? 64 } };
      case "metadata":
        return { id, topics: this.metadata(request.topics as string[] | undefined) };
      case "produce":
        return this.produce(request);
      case "fetch":
        return this.fetch(request);
      case "listOffsets":
        return { id, partitions: (request.partitions as Answer[]).map((entry) => this.listOffset(entry)) };
      case "commitOffsets":
        for (const entry of request.offsets as Answer[]) this.commits.set(`${request.group}/${entry.topic}/${entry.partition}`, entry.offset as number);
        return { id, results: (request.offsets as Answer[]).map((entry) => ({ topic: entry.topic, partition: entry.partition })) };
      case "findCoordinator": {
        // One broker: it coordinates every group.
        const [host, port] = this.address.split(":");
        return { id, brokerId: 0, host, port: Number(port) };
      }
      case "fetchOffsets":
        return {
          id,
          offsets: (request.partitions as Answer[]).map((entry) => ({
            ...entry,
            offset: this.commits.get(`${request.group}/${entry.topic}/${entry.partition}`) ?? -1,
            metadata: "",
          })),
        };
      case "unreadable":
        // What the broker answers a request it cannot read: no id, and the connection lives.
        return { id: null, error: { code: "INVALID_REQUEST", message: "not a map with a valid id" } };
      case "tooMany":
        return { id: null, error: { code: "TOO_MANY_CONNECTIONS", message: "at the connection limit" } };
      default: {
        const other = this.options.onOther?.(request);
        if (other !== undefined) return { id, ...other };
        return { id, error: { code: "UNKNOWN_OPERATION", message: String(request.op) } };
      }
    }
  }

  private metadata(names: string[] | undefined): Answer[] {
    return (names ?? [...this.topics.keys()])
      .filter((name) => this.topics.has(name))
      .map((name) => ({
        name,
        partitions: this.topics.get(name)!.map((_, partition) => ({ partition, logStartOffset: 0, nextOffset: this.nextOffset(name, partition) })),
      }));
  }

  nextOffset(topic: string, partition: number): number {
    const batches = this.batches(topic, partition);
    return batches.length === 0 ? 0 : batches[batches.length - 1]!.lastOffset + 1;
  }

  private async produce(request: Request): Promise<Answer | null> {
    const override = this.options.onProduce?.(request);
    if (override !== undefined) return { id: request.id, ...(await override) };
    const results = (request.batches as Answer[]).map((entry) => this.append(entry.topic as string, entry.partition as number, entry.batch as Uint8Array));
    return request.durability === "none" ? null : { id: request.id, results };
  }

  /** Stores one batch as the broker would (verify, stamp); public so tests can seed data. */
  append(topic: string, partition: number, batch: Uint8Array): Answer {
    const partitions = this.topics.get(topic);
    if (!partitions?.[partition]) return { topic, partition, error: { code: "UNKNOWN_PARTITION", message: "no such partition" } };
    const bytes = batch.slice();
    const header = verifyBatch(bytes);
    const baseOffset = this.nextOffset(topic, partition);
    stampBaseOffset(bytes, baseOffset);
    const lastOffset = baseOffset + header.recordCount - 1;
    partitions[partition].push({ baseOffset, lastOffset, bytes });
    for (const wake of this.dataWaiters) wake();
    return { topic, partition, baseOffset, lastOffset };
  }

  private async fetch(request: Request): Promise<Answer> {
    const wanted = request.partitions as Array<{ topic: string; partition: number; offset: number }>;
    const deadline = Date.now() + (request.maxWaitMs as number);
    for (;;) {
      const answer = this.fetchNow(request.id, wanted);
      if ((answer.records as Uint8Array).length > 0 || Date.now() >= deadline) return this.options.onFetch?.(answer) ?? answer;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.dataWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, deadline - Date.now()));
        this.dataWaiters.add(wake);
      });
    }
  }

  private fetchNow(id: number, wanted: Array<{ topic: string; partition: number; offset: number }>): Answer {
    const parts: Uint8Array[] = [];
    const partitions = wanted.map(({ topic, partition, offset }) => {
      const next = this.nextOffset(topic, partition);
      if (offset > next) return { topic, partition, logStartOffset: 0, nextOffset: next, recordsBytes: 0, error: { code: "OFFSET_OUT_OF_RANGE", message: "past the end" } };
      const batches = this.batches(topic, partition).filter((batch) => batch.lastOffset >= offset);
      const bytes = batches.reduce((sum, batch) => sum + batch.bytes.length, 0);
      for (const batch of batches) parts.push(batch.bytes);
      return { topic, partition, logStartOffset: 0, nextOffset: next, recordsBytes: bytes };
    });
    return { id, partitions, records: Buffer.concat(parts) };
  }

  private listOffset(entry: Answer): Answer {
    const topic = entry.topic as string;
    const partition = entry.partition as number;
    if (entry.at === "earliest") return { topic, partition, offset: 0 };
    if (entry.at === "latest") return { topic, partition, offset: this.nextOffset(topic, partition) };
    const found = this.batches(topic, partition).find((batch) => readBatchHeader(batch.bytes).maxTimestamp >= (entry.at as number));
    return { topic, partition, offset: found ? found.baseOffset : this.nextOffset(topic, partition) };
  }
}
