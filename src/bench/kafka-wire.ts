/**
 * @module bench/kafka-wire
 * A minimal Kafka-protocol client for `runnel bench kafka`: one TCP connection, requests encoded
 * by the broker's own declarative codec (listeners/kafka/codec.ts, sans-IO) or by the caller
 * (`requestFramed`: the producer's hand-written Produce frame, kafka-produce-frame.ts) and pipelined;
 * Kafka answers a connection's requests in order, so answers are matched in order (and checked
 * by correlation id). It is the "fast in-process path" the bench sets beside a real Kafka client
 * library: no metadata, no retries, no batching policy — the caller hands it whole record
 * batches. Not a client library; nothing outside the bench uses it.
 *
 *   request frame = int32 size, int16 apiKey, int16 apiVersion, int32 correlationId,
 *                   int16 clientId length + clientId, [tagged fields: flexible versions], body
 *   answer frame  = int32 size, int32 correlationId, [tagged fields: flexible, not ApiVersions], body
 */
import type { Socket } from "bun";
import { RunnelError } from "../errors.ts";
import type { KafkaStruct } from "../listeners/kafka/codec.ts";
import { MESSAGES } from "../listeners/kafka/definitions.ts";
import { decodeResponseFrame, encodeRequestFrame } from "../listeners/kafka/dispatch.ts";

/** The client id every request of the bench carries (kafka-produce-frame.ts writes it too). */
export const CLIENT_ID = new TextEncoder().encode("runnel-bench-kafka");
/** An answer larger than this is refused (the bench asks for at most a few MiB per fetch). */
const ANSWER_BYTES_MAX = 256 * 1024 * 1024;
/** Answer assembly buffers in rotation: more than the bench ever keeps answers in flight (5). */
const ASSEMBLY_BUFFERS = 8;

interface Waiting {
  apiKey: number;
  version: number;
  correlationId: number;
  resolve: (answer: KafkaStruct) => void;
  reject: (error: unknown) => void;
}

export class KafkaWire {
  private socket: Socket<undefined> | null = null;
  private readonly waiting: Waiting[] = [];
  private readonly outbound: Uint8Array[] = [];
  private chunks: Uint8Array[] = [];
  private chunkBytes = 0;
  /** Recycled buffers for answers that straddle received chunks (see take). */
  private readonly assembly: Array<Uint8Array | undefined> = [];
  private nextAssembly = 0;
  private nextCorrelation = 1;
  private failure: RunnelError | null = null;

  static async connect(address: string): Promise<KafkaWire> {
    const [host, port] = splitAddress(address);
    const wire = new KafkaWire();
    wire.socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => wire.onData(chunk),
        drain: () => wire.flush(),
        close: () => wire.fail(new RunnelError("BROKER_UNAVAILABLE", `the Kafka listener at ${address} closed the connection`)),
        error: (_socket, error) => wire.fail(new RunnelError("BROKER_UNAVAILABLE", `Kafka connection to ${address}: ${error.message}`, { cause: error })),
      },
    });
    return wire;
  }

  /** Sends a request; resolves with its decoded answer. */
  request(apiKey: number, version: number, body: KafkaStruct): Promise<KafkaStruct> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (!MESSAGES.has(apiKey)) return Promise.reject(new RunnelError("INVALID_REQUEST", `no definition for API key ${apiKey}`));
    const correlationId = this.nextCorrelation++;
    return this.send(apiKey, version, correlationId, [encodeRequestFrame(apiKey, version, correlationId, CLIENT_ID, body)]);
  }

  /**
   * Sends a request frame the caller encoded itself (size prefix and request header included,
   * for the correlation id given to `encode`), as the chunks it returns, written in order; resolves
   * with the decoded answer. The chunks are not copied: they must stay untouched until answered.
   */
  requestFramed(apiKey: number, version: number, encode: (correlationId: number) => Uint8Array[]): Promise<KafkaStruct> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (!MESSAGES.has(apiKey)) return Promise.reject(new RunnelError("INVALID_REQUEST", `no definition for API key ${apiKey}`));
    const correlationId = this.nextCorrelation++;
    return this.send(apiKey, version, correlationId, encode(correlationId));
  }

  private send(apiKey: number, version: number, correlationId: number, chunks: Uint8Array[]): Promise<KafkaStruct> {
    const answer = new Promise<KafkaStruct>((resolve, reject) => this.waiting.push({ apiKey, version, correlationId, resolve, reject }));
    for (const chunk of chunks) this.outbound.push(chunk);
    this.flush();
    return answer;
  }

  close(): void {
    this.socket?.end();
    this.fail(new RunnelError("CLIENT_CLOSED", "the bench's Kafka connection was closed"));
  }

  /** Writes queued bytes until the socket takes no more; `drain` calls again. */
  private flush(): void {
    const socket = this.socket;
    while (socket !== null && this.outbound.length > 0) {
      const head = this.outbound[0] as Uint8Array;
      const written = socket.write(head);
      if (written < head.length) {
        this.outbound[0] = head.subarray(Math.max(0, written));
        return;
      }
      this.outbound.shift();
    }
  }

  private onData(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.chunkBytes += chunk.length;
    for (;;) {
      if (this.chunkBytes < 4) return;
      const head = this.joined(4);
      const size = new DataView(head.buffer, head.byteOffset, 4).getInt32(0);
      if (size < 4 || size > ANSWER_BYTES_MAX) return this.fail(new RunnelError("INVALID_REQUEST", `a Kafka answer of ${size} bytes`));
      if (this.chunkBytes < 4 + size) return;
      const frame = this.take(4 + size).subarray(4);
      this.answer(frame);
    }
  }

  /** The first `count` buffered bytes, joined into the first chunk when they straddle chunks. */
  private joined(count: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.length >= count) return first;
    const all = new Uint8Array(this.chunkBytes);
    let position = 0;
    for (const chunk of this.chunks) {
      all.set(chunk, position);
      position += chunk.length;
    }
    this.chunks = [all];
    return all;
  }

  /**
   * The next `count` buffered bytes: a view of the first chunk when they lie in it, else copied
   * into the next of ASSEMBLY_BUFFERS recycled buffers (no allocation per answer, as the native
   * client's reader does). A decoded answer's byte fields are views of that buffer: they stay
   * valid until ASSEMBLY_BUFFERS - 1 more straddling answers have arrived.
   */
  private take(count: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    this.chunkBytes -= count;
    if (first.length >= count) {
      if (first.length === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const slot = this.nextAssembly++ % ASSEMBLY_BUFFERS;
    let target = this.assembly[slot];
    if (target === undefined || target.length < count) {
      target = new Uint8Array(count);
      this.assembly[slot] = target;
    }
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0] as Uint8Array;
      const used = Math.min(chunk.length, count - filled);
      target.set(used === chunk.length ? chunk : chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return target.subarray(0, count);
  }

  private answer(frame: Uint8Array): void {
    const waiting = this.waiting.shift();
    if (waiting === undefined) return this.fail(new RunnelError("INVALID_REQUEST", "a Kafka answer nobody asked for"));
    try {
      waiting.resolve(decodeResponseFrame(waiting.apiKey, waiting.version, waiting.correlationId, frame));
    } catch (error) {
      waiting.reject(error);
    }
  }

  private fail(error: RunnelError): void {
    this.failure ??= error;
    for (const waiting of this.waiting.splice(0)) waiting.reject(error);
  }
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new RunnelError("INVALID_REQUEST", `Kafka address '${address}' is not HOST:PORT`);
  return [address.slice(0, colon), port];
}
