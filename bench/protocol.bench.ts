/**
 * @module bench/protocol
 * Frame parsing (src/protocol/frame.ts): the broker and client cut every TCP chunk into frames
 * with FrameDecoder. Side by side: frames lying whole inside one chunk (returned as views),
 * the same frames arriving in 1,500-byte pieces (each frame assembled into its own buffer), and
 * a baseline that only reads the length prefixes with a DataView (no checks, no state).
 *
 * Request decoding (the broker, per request): produce and fetch requests read by the hand-written
 * FastRequestDecoder against the generic path it replaces for them (scanMsgpack + @msgpack/msgpack
 * + the zod schema); and the produce answer written by hand against the generic encoder.
 *
 *   bun bench/protocol.bench.ts        full size (mitata)
 *   protocolSmoke() from a test        small size, checks what the bodies produce
 */
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { encode } from "@msgpack/msgpack";
import { FastRequestDecoder } from "../src/protocol/fast-requests.ts";
import { FrameDecoder, writeFrameHeader } from "../src/protocol/frame.ts";
import { createRequestDecoder, encodeProduceResponseFrame, encodeResponseFrame, isOperation, parseRequest, readCorrelationId } from "../src/protocol/messages.ts";

/** `count` frames of `bodyBytes` each (body byte i of frame f is (f + i) & 0xff), concatenated. */
export function makeFrames(count: number, bodyBytes: number): Uint8Array {
  const stream = new Uint8Array(count * (4 + bodyBytes));
  for (let frame = 0; frame < count; frame++) {
    const at = frame * (4 + bodyBytes);
    writeFrameHeader(stream, at, bodyBytes);
    for (let index = 0; index < bodyBytes; index++) stream[at + 4 + index] = (frame + index) & 0xff;
  }
  return stream;
}

export function splitInto(stream: Uint8Array, chunkBytes: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += chunkBytes) chunks.push(stream.subarray(at, Math.min(stream.length, at + chunkBytes)));
  return chunks;
}

/** Feeds every chunk through one FrameDecoder; returns frames and a checksum of first body bytes. */
export function decodeChunks(chunks: readonly Uint8Array[], frameBytesMax = 1 << 24): { frames: number; firstBytesSum: number } {
  const decoder = new FrameDecoder(frameBytesMax);
  let frames = 0;
  let firstBytesSum = 0;
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let body = decoder.next(); body !== null; body = decoder.next()) {
      frames += 1;
      firstBytesSum += body[0] ?? 0;
    }
  }
  return { frames, firstBytesSum };
}

/** Baseline: walk the length prefixes of one contiguous buffer (what parsing costs at least). */
export function walkPrefixes(stream: Uint8Array): number {
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  let frames = 0;
  for (let at = 0; at + 4 <= stream.length; at += 4 + view.getUint32(at)) frames += 1;
  return frames;
}

const FRAME_BYTES_MAX = 16 * 1024 * 1024;

/** `count` request bodies as the clients send them: produce (one 16 KiB batch) and fetch alternating. */
export function makeRequestBodies(count: number): Uint8Array[] {
  const batch = new Uint8Array(16 * 1024).fill(7);
  return Array.from({ length: count }, (_, id) =>
    id % 2 === 0
      ? encode({ id, op: "produce", durability: "written", batches: [{ topic: "bench-topic", partition: id % 4, batch }] })
      : encode({ id, op: "fetch", partitions: [{ topic: "bench-topic", partition: id % 4, offset: id * 1000 }], maxBytes: 1 << 20, maxWaitMs: 500, minBytes: 1 }),
  );
}

/** The generic path of dispatch: decode with limits, read id and op, validate with the op's schema. */
export function decodeGeneric(bodies: readonly Uint8Array[]): number {
  const decode = createRequestDecoder(FRAME_BYTES_MAX);
  let idSum = 0;
  for (const body of bodies) {
    const value = decode(body);
    const op = (value as { op?: unknown }).op;
    const id = readCorrelationId(value);
    if (typeof op !== "string" || !isOperation(op) || id === null) throw new Error("bench: bad request");
    parseRequest(op, value);
    idSum += id;
  }
  return idSum;
}

const fastDecoder = new FastRequestDecoder();

/** The fast path of dispatch for the same bodies. */
export function decodeFast(bodies: readonly Uint8Array[]): number {
  let idSum = 0;
  for (const body of bodies) {
    const request = fastDecoder.decode(body, FRAME_BYTES_MAX);
    if (request === null) throw new Error("bench: the fast path refused a request");
    idSum += request.id;
  }
  return idSum;
}

/** One produce answer per id: by hand, or through the generic encoder. */
export function encodeProduceAnswers(count: number, byHand: boolean): number {
  let bytes = 0;
  for (let id = 0; id < count; id++) {
    const results = [{ topic: "bench-topic", partition: id % 4, baseOffset: id * 1000, lastOffset: id * 1000 + 999 }];
    bytes += (byHand ? encodeProduceResponseFrame(id, results) : encodeResponseFrame({ id, results })).length;
  }
  return bytes;
}

/** Request decoding and the produce answer at smoke size: both paths, to compare in a test. */
export function requestCodecSmoke(): { generic: number; fast: number; answersByHand: number; answersGeneric: number } {
  const bodies = makeRequestBodies(100);
  return { generic: decodeGeneric(bodies), fast: decodeFast(bodies), answersByHand: encodeProduceAnswers(100, true), answersGeneric: encodeProduceAnswers(100, false) };
}

export function protocolSmoke(): { whole: ReturnType<typeof decodeChunks>; pieces: ReturnType<typeof decodeChunks>; baseline: number } {
  const stream = makeFrames(200, 300);
  return { whole: decodeChunks([stream]), pieces: decodeChunks(splitInto(stream, 1_500)), baseline: walkPrefixes(stream) };
}

function registerBenchmarks(): void {
  for (const bodyBytes of [64, 16 * 1024]) {
    const count = Math.max(16, Math.floor((4 << 20) / (bodyBytes + 4)));
    const stream = makeFrames(count, bodyBytes);
    const wholeChunks = splitInto(stream, 256 * 1024);
    const mtuChunks = splitInto(stream, 1_500);
    summary(() => {
      group(`frame parsing: ${count} frames of ${bodyBytes} B (4 MiB)`, () => {
        bench("FrameDecoder, 256 KiB chunks (views)", () => do_not_optimize(decodeChunks(wholeChunks)));
        bench("FrameDecoder, 1,500 B chunks (assembled)", () => do_not_optimize(decodeChunks(mtuChunks)));
        bench("baseline: walk length prefixes", () => do_not_optimize(walkPrefixes(stream)));
      });
    });
  }
}

function registerRequestBenchmarks(): void {
  const bodies = makeRequestBodies(10_000);
  summary(() => {
    group("request decoding: 10,000 requests (produce of one 16 KiB batch, fetch of one partition, alternating)", () => {
      bench("generic: scanMsgpack + @msgpack/msgpack + zod", () => do_not_optimize(decodeGeneric(bodies)));
      bench("FastRequestDecoder", () => do_not_optimize(decodeFast(bodies)));
    });
  });
  summary(() => {
    group("produce answer: 10,000 frames of one result", () => {
      bench("generic encoder", () => do_not_optimize(encodeProduceAnswers(10_000, false)));
      bench("written by hand", () => do_not_optimize(encodeProduceAnswers(10_000, true)));
    });
  });
}

if (import.meta.main) {
  registerRequestBenchmarks();
  registerBenchmarks();
  await run();
}
