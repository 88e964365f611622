/**
 * @module bench/protocol
 * Frame parsing (src/protocol/frame.ts): the broker and client cut every TCP chunk into frames
 * with FrameDecoder. Side by side: frames lying whole inside one chunk (returned as views),
 * the same frames arriving in 1,500-byte pieces (each frame assembled into its own buffer), and
 * a baseline that only reads the length prefixes with a DataView (no checks, no state).
 *
 *   bun bench/protocol.bench.ts        full size (mitata)
 *   protocolSmoke() from a test        small size, checks what the bodies produce
 */
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { FrameDecoder, writeFrameHeader } from "../src/protocol/frame.ts";

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

if (import.meta.main) {
  registerBenchmarks();
  await run();
}
