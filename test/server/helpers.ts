/**
 * @module test/server/helpers
 * A tiny raw client for the broker tests (socket + frame codec, nothing from src/client), and
 * helpers that start a real broker on port 0 with a temp data dir.
 */
import { decode, encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Config, configSchema } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";
import { encodeFrame, FrameDecoder } from "../../src/protocol/frame.ts";
import { type Broker, startBroker } from "../../src/server/broker.ts";

export type Message = Record<string, unknown>;

export function tempDir(prefix = "runnel-server-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestBroker extends AsyncDisposable {
  broker: Broker;
  port: number;
  dataDir: string;
}

/** A broker on 127.0.0.1:0 over a fresh temp dir (removed on dispose unless `dataDir` is given). */
export async function startTestBroker(overrides: Partial<Config> = {}): Promise<TestBroker> {
  const ownDir = overrides.dataDir === undefined;
  const dataDir = overrides.dataDir ?? tempDir();
  // httpPort 0: a broker restarted on its old port would otherwise take that port + 1 for HTTP,
  // which a client socket of this process may hold (ephemeral ports are handed out nearby).
  const config = configSchema.parse({ port: 0, httpPort: 0, logLevel: "silent", ...overrides, dataDir });
  const broker = await startBroker({ config, logger: silentLogger() });
  return {
    broker,
    port: broker.port,
    dataDir,
    async [Symbol.asyncDispose]() {
      await broker.stop();
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the (async) condition holds, re-checking it; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

export class TestClient implements AsyncDisposable {
  readonly frames: Uint8Array[] = [];
  private readonly decoder = new FrameDecoder(1 << 30);
  private waiters: Array<() => void> = [];
  private nextId = 1;
  closed = false;
  private closedResolve: () => void = () => {};
  readonly closedPromise = new Promise<void>((resolve) => (this.closedResolve = resolve));
  private pendingWrites: Uint8Array[] = [];

  private constructor(readonly socket: Socket<undefined>) {}

  static async connect(port: number): Promise<TestClient> {
    let client: TestClient | null = null;
    const early: Uint8Array[] = [];
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => {
          if (client) client.onData(chunk);
          else early.push(chunk);
        },
        drain: () => client?.flushWrites(),
        close: () => client?.onClose(),
        error: () => client?.onClose(),
      },
    });
    client = new TestClient(socket);
    for (const chunk of early) client.onData(chunk);
    return client;
  }

  private onData(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) this.frames.push(frame.slice());
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private onClose(): void {
    this.closed = true;
    this.closedResolve();
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Writes bytes, queueing what the socket does not take until drain. */
  writeRaw(bytes: Uint8Array): void {
    this.pendingWrites.push(bytes);
    this.flushWrites();
  }

  private flushWrites(): void {
    while (this.pendingWrites.length > 0) {
      const head = this.pendingWrites[0] as Uint8Array;
      const written = this.socket.write(head);
      if (written < 0) return;
      if (written < head.length) {
        this.pendingWrites[0] = head.subarray(written);
        return;
      }
      this.pendingWrites.shift();
    }
  }

  send(request: Message): number {
    const id = typeof request.id === "number" ? request.id : this.nextId++;
    this.writeRaw(encodeFrame(encode({ ...request, id })));
    return id;
  }

  /** Waits for the n-th frame (0-based) received on this connection. */
  async frame(index: number, timeoutMs = 10_000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length <= index) {
      if (this.closed) throw new Error(`connection closed after ${this.frames.length} frames`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for frame ${index}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames[index] as Uint8Array;
  }

  private consumed = 0;

  /** The next response frame, decoded. */
  async next(timeoutMs?: number): Promise<Message> {
    const frame = await this.frame(this.consumed, timeoutMs);
    this.consumed++;
    return decode(frame) as Message;
  }

  async request(request: Message, timeoutMs?: number): Promise<Message> {
    const id = this.send(request);
    const response = await this.next(timeoutMs);
    if (response.id !== id) throw new Error(`expected response ${id}, got ${JSON.stringify(response.id)}`);
    return response;
  }

  close(): void {
    this.socket.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.closed) {
      this.socket.end();
      await Promise.race([this.closedPromise, Bun.sleep(1000)]);
    }
  }
}
