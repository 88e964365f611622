/**
 * @module test/listeners/kafka/raw-kafka
 * A tiny Kafka client for the listener tests: sends requests encoded with our codec (header v1,
 * v2 for flexible versions) and reads response frames, or raw bytes for the hostile tests.
 */
import type { Socket } from "bun";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { decodeResponseFrame, encodeRequestFrame } from "../../../src/listeners/kafka/dispatch.ts";

const CLIENT_ID = new TextEncoder().encode("test");

export class RawKafka implements AsyncDisposable {
  private buffered = new Uint8Array(0);
  private readonly frames: Uint8Array[] = [];
  private waiters: Array<() => void> = [];
  private nextCorrelation = 1;
  closed = false;

  private constructor(private socket: Socket<undefined> | null) {}

  static async connect(port: number): Promise<RawKafka> {
    const client = new RawKafka(null);
    client.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => client.onData(chunk),
        close: () => client.onClose(),
        error: () => client.onClose(),
      },
    });
    return client;
  }

  private onData(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.buffered.length + chunk.length);
    joined.set(this.buffered);
    joined.set(chunk, this.buffered.length);
    let position = 0;
    while (joined.length - position >= 4) {
      const size = new DataView(joined.buffer, position).getInt32(0);
      if (joined.length - position - 4 < size) break;
      this.frames.push(joined.slice(position + 4, position + 4 + size));
      position += 4 + size;
    }
    this.buffered = joined.slice(position);
    this.wake();
  }

  private onClose(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  write(bytes: Uint8Array): void {
    this.socket?.write(bytes);
  }

  /** Encodes and sends a request; returns its correlation id. */
  send(apiKey: number, version: number, body: KafkaStruct): number {
    const correlationId = this.nextCorrelation++;
    const bytes = encodeRequestFrame(apiKey, version, correlationId, CLIENT_ID, body);
    this.write(bytes);
    return correlationId;
  }

  /** The next response frame, or null when the connection closed first or `timeoutMs` passed. */
  async nextFrame(timeoutMs = 5_000): Promise<Uint8Array | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.shift() ?? null;
  }

  /** Sends a request and decodes its response (header v0, or v1 for flexible versions but ApiVersions). */
  async request(apiKey: number, version: number, body: KafkaStruct): Promise<KafkaStruct> {
    const correlationId = this.send(apiKey, version, body);
    const frame = await this.nextFrame();
    if (frame === null) throw new Error(`no answer to API ${apiKey} v${version} (closed: ${this.closed})`);
    return decodeResponse(apiKey, version, correlationId, frame);
  }

  /** Resolves true once the broker closed the connection, false after `timeoutMs`. */
  async closedWithin(timeoutMs = 5_000): Promise<boolean> {
    const frame = await this.nextFrame(timeoutMs);
    return frame === null && this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.socket?.end();
  }
}

export const decodeResponse = decodeResponseFrame;
