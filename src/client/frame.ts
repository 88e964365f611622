/**
 * @module client/frame
 * The client's msgpack codecs around the shared framing of src/protocol/frame.ts (a frame is
 * `u32 big-endian length | one msgpack value`, docs/protocol.md section 1).
 *
 * Responses are decoded with explicit limits (the library defaults every limit to 4 GiB).
 * msgpack `bin` values decode as views into the frame body, which is how a fetch response's
 * records reach the consumer without another copy.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { KiB } from "../limits.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "../protocol/frame.ts";

/**
 * Encodes `message` as one frame. The encoder's shared buffer is copied once, into the frame
 * handed to the socket: a produce request's batches are copied exactly once, here.
 */
export function encodeRequestFrame(encoder: Encoder, message: unknown): Uint8Array {
  const body = encoder.encodeSharedRef(message);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(frame, 0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

export function createRequestEncoder(): Encoder {
  return new Encoder({ ignoreUndefined: true, initialBufferSize: 64 * KiB });
}

/** Strings on the wire are names and messages; bins (records) are bounded by the frame itself. */
export function createResponseDecoder(frameBytesMax: number): Decoder {
  return new Decoder({
    maxStrLength: 64 * KiB,
    maxBinLength: frameBytesMax,
    maxArrayLength: 1_000_000,
    maxMapLength: 100_000,
    maxExtLength: 0,
  });
}
