/**
 * @module server/received-chunks
 * Frees a socket chunk from Bun as soon as the frame decoder has taken all of its bytes.
 *
 * Bun hands every socket read to `data` as a fresh buffer of up to 512 KiB. Once the decoder has
 * taken its bytes (copied into a frame's assembly buffer, or handed to dispatch as views that are
 * done with when it returns: protocol/frame.ts, server/connection.ts), the buffer is garbage, but
 * the engine frees it only at a collection, and at a tuned produce's rate 40-90 MB of them piled
 * up first: the largest item of the broker's peak RSS (docs/architecture.md "Memory"). Detaching
 * the buffer (`ArrayBuffer.prototype.transfer(0)`) frees its bytes at once — JSC drops the
 * contents on detach — and leaves only a small empty object for the collector. Measured on a bare
 * `Bun.listen` server fed 2 GB: peak RSS 58.8 MB without, 36.1 MB with.
 *
 * Only chunks of at least CHUNK_FREE_BYTES_MIN that own their whole ArrayBuffer are freed: a
 * small chunk costs the collector little, and asking a small typed array for its `.buffer` makes
 * the engine move it out of its heap first.
 */

import { freeBytesNow } from "../protocol/frame.ts";

/** Chunks smaller than this are left to the collector. */
export const CHUNK_FREE_BYTES_MIN = 64 * 1024;

/** Frees `chunk`'s bytes now, when it is large and owns its buffer; true when it did. Any view of it reads as empty afterwards. */
export function freeReceivedChunk(chunk: Uint8Array): boolean {
  return chunk.length >= CHUNK_FREE_BYTES_MIN && freeBytesNow(chunk);
}
