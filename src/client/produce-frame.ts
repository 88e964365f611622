/**
 * @module client/produce-frame
 * Writes a `produce` request frame (docs/protocol.md) around batches without copying them.
 *
 * A batch is the bulk of a produce request. The generic path (msgpack Encoder, then the frame)
 * copied every batch twice: into the encoder's buffer, then into the frame. Here the envelope is
 * written by hand into the free bytes the BatchBuilder left in front of each batch (its
 * headroom), and the frame goes to the socket as one chunk per batch:
 *
 *   chunk 0:  u32 length | {id, op: "produce", durability, batches: [ | {topic, partition, batch: bin32 | <batch 0>
 *   chunk i:                                                            {topic, partition, batch: bin32 | <batch i>
 *
 * The bytes are ordinary msgpack (a map's keys may come in any order; `batches` is last so each
 * batch ends its chunk), decoded by the broker like any other request. A batch without enough
 * headroom gets its head as a separate small chunk instead.
 *
 * Lifetime: the chunks are views of the batches' buffers, so a batch's buffer must not be reused
 * until the request has been written out; the producer holds it until the answer (for
 * `durability: none`, which has no answer, until Connection.sendEncoded says it was written).
 */
import { FRAME_HEADER_BYTES } from "../protocol/frame.ts";

/** Room a batch keeps in front of it: the envelope (< 64 B) plus one entry head with a 255-byte topic. */
export const PRODUCE_HEADROOM_BYTES = 384;

export interface FramedBatch {
  /** The topic name as a msgpack str (header included): see `encodeTopicName`. */
  topicName: Uint8Array;
  partition: number;
  bytes: Uint8Array;
  /** Bytes in front of `bytes` in its buffer that are free to overwrite. */
  headroomBytes: number;
}

const ENVELOPE_BYTES_MAX = 64;
const ENTRY_HEAD_FIXED_BYTES = 1 + 6 + 10 + 5 + 6 + 5; // fixmap, "topic", "partition", u32, "batch", bin32 head
const KEY_ID = ascii("id");
const KEY_OP = ascii("op");
const KEY_DURABILITY = ascii("durability");
const KEY_BATCHES = ascii("batches");
const KEY_TOPIC = ascii("topic");
const KEY_PARTITION = ascii("partition");
const KEY_BATCH = ascii("batch");
const OP_PRODUCE = ascii("produce");
const DURABILITY: Record<string, Uint8Array> = { none: ascii("none"), written: ascii("written"), synced: ascii("synced"), replicated: ascii("replicated") };
const textEncoder = new TextEncoder();

/** A topic name as a msgpack str, computed once per topic by the producer. */
export function encodeTopicName(name: string): Uint8Array {
  const utf8 = textEncoder.encode(name);
  const head = utf8.length < 32 ? [0xa0 | utf8.length] : utf8.length < 0x100 ? [0xd9, utf8.length] : [0xda, utf8.length >> 8, utf8.length & 0xff];
  const encoded = new Uint8Array(head.length + utf8.length);
  encoded.set(head);
  encoded.set(utf8, head.length);
  return encoded;
}

/**
 * The frame's chunks, in order; their lengths add up to the frame (length prefix included).
 * Writes into each batch's headroom. `chunks` (emptied first) is the array to fill, for a caller
 * that reuses one per request (client/produce-request.ts); by default a new one.
 */
export function encodeProduceFrame(id: number, durability: string, batches: readonly FramedBatch[], chunks: Uint8Array[] = []): Uint8Array[] {
  chunks.length = 0;
  // The envelope goes to a scratch buffer first, then in front of batch 0: no allocation for it.
  const envelope = writer.reset(ENVELOPE_SCRATCH).skip(FRAME_HEADER_BYTES); // length prefix: set last
  envelope.u8(0x84);
  envelope.raw(KEY_ID).u32(id);
  envelope.raw(KEY_OP).raw(OP_PRODUCE);
  envelope.raw(KEY_DURABILITY).raw(DURABILITY[durability] ?? DURABILITY.written!);
  envelope.raw(KEY_BATCHES).arrayHead(batches.length);
  const envelopeBytes = envelope.position;
  let bodyBytes = 0;
  for (let index = 0; index < batches.length; index++) {
    const batch = batches[index]!;
    const prefixBytes = index === 0 ? envelopeBytes : 0;
    const headBytes = prefixBytes + ENTRY_HEAD_FIXED_BYTES + batch.topicName.length;
    const bytes = batch.bytes;
    const inPlace = headBytes <= batch.headroomBytes;
    // In place, the chunk is the head and the batch in one view of the batch's own buffer.
    const target = inPlace ? new Uint8Array(bytes.buffer, bytes.byteOffset - headBytes, headBytes + bytes.length) : new Uint8Array(headBytes);
    const head = writer.reset(target);
    if (prefixBytes > 0) head.raw(ENVELOPE_SCRATCH.subarray(0, prefixBytes));
    head.u8(0x83).raw(KEY_TOPIC).raw(batch.topicName);
    head.raw(KEY_PARTITION).u32(batch.partition);
    head.raw(KEY_BATCH).u8(0xc6).be32(bytes.length);
    if (inPlace) chunks.push(target);
    else chunks.push(target, bytes);
    bodyBytes += headBytes + bytes.length;
  }
  // The length prefix counts the body only; it is the first 4 bytes of chunk 0.
  writer.reset(chunks[0]!).be32(bodyBytes - FRAME_HEADER_BYTES);
  return chunks;
}

/**
 * A cursor over a fixed buffer; every write fits by construction (sizes are computed first).
 * One instance, re-aimed with `reset`, serves every frame: encoding is synchronous.
 */
class Writer {
  position = 0;
  private into: Uint8Array = new Uint8Array(0);

  reset(into: Uint8Array): this {
    this.into = into;
    this.position = 0;
    return this;
  }

  skip(bytes: number): this {
    this.position += bytes;
    return this;
  }

  u8(value: number): this {
    this.into[this.position++] = value;
    return this;
  }

  /** A msgpack uint, always in the 5-byte uint32 form: fixed size, so heads are sized before writing. */
  u32(value: number): this {
    return this.u8(0xce).be32(value);
  }

  /** Four bytes, big-endian (a length field). */
  be32(value: number): this {
    const into = this.into;
    const at = this.position;
    into[at] = value >>> 24;
    into[at + 1] = (value >>> 16) & 0xff;
    into[at + 2] = (value >>> 8) & 0xff;
    into[at + 3] = value & 0xff;
    this.position += 4;
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.into.set(bytes, this.position);
    this.position += bytes.length;
    return this;
  }

  arrayHead(count: number): this {
    if (count < 16) return this.u8(0x90 | count);
    return this.u8(0xdd).be32(count); // array32
  }
}

const writer = new Writer();
const ENVELOPE_SCRATCH = new Uint8Array(ENVELOPE_BYTES_MAX);

/** A msgpack fixstr of ASCII text. */
function ascii(text: string): Uint8Array {
  const encoded = new Uint8Array(1 + text.length);
  encoded[0] = 0xa0 | text.length;
  for (let index = 0; index < text.length; index++) encoded[index + 1] = text.charCodeAt(index);
  return encoded;
}
