/**
 * @module protocol/fast-requests
 * A hand-written reader for the two requests of the data path, `produce` and `fetch`: it walks
 * the msgpack bytes of the frame once and builds the typed request the handlers take
 * (RequestOf<"produce">, RequestOf<"fetch">) directly — no generic msgpack objects, no zod.
 *
 * Why: at 10,000+ requests/s the generic path (scanMsgpack, then @msgpack/msgpack into plain
 * objects, then the zod schema) was a large share of the broker's JS time and allocated several
 * intermediate objects and strings per request, which the broker's GC then paid for in pauses.
 *
 * Contract — it never answers an error itself. `decode` returns the request only when the bytes
 * are exactly one of the shapes below with every value in bounds; on ANYTHING else (a wrong
 * type, a bound broken, an unknown or repeated key, a float, a non-ASCII string, a non-string
 * key, trailing bytes, another op) it returns null, and the caller runs the generic path on the
 * same bytes. So a malformed request gets the generic path's error, code and message alike, and
 * this reader only has to be right about what it accepts: the same value the generic path gives
 * (test/protocol/fast-requests.test.ts checks both agree on random valid and invalid envelopes).
 *
 * Accepted (map keys in any order, each at most once; int = any msgpack integer encoding):
 *
 *   produce  {id: int 0..2^32-1, op: "produce", durability?: "none" | "written" | "synced",
 *             batches: [{topic: str, partition: int 0..9999, batch: bin}] 1..10000}
 *   fetch    {id, op: "fetch", partitions: [{topic: str, partition: int 0..9999,
 *             offset: int 0..2^53-1, maxBytes?: int >= 1}] 1..1000,
 *             maxBytes?: int >= 1, maxWaitMs?: int >= 0, minBytes?: int >= 0}
 *
 * where a topic str is 1..255 ASCII bytes and a partition at most 9999 (the generic path takes any
 * str and any int >= 0; the name rule and the partition's existence are checked later, by the
 * handler, on both paths alike). Anything this accepts is within every limit scanMsgpack and the generic
 * decoder enforce (depth 3, < 200,000 values, arrays <= 10,000, maps <= 6 entries, strs <= 255
 * bytes, bins <= frameBytesMax), so skipping those checks loses nothing.
 */
import { LIMITS } from "../limits.ts";
import { type RequestOf, WIRE_LIMITS } from "./messages.ts";

export type FastRequest =
  | { op: "produce"; id: number; request: RequestOf<"produce"> }
  | { op: "fetch"; id: number; request: RequestOf<"fetch"> };

type Durability = RequestOf<"produce">["durability"];
type ProduceEntry = RequestOf<"produce">["batches"][number];
type FetchEntry = RequestOf<"fetch">["partitions"][number];

/** Thrown inside the reader to give up; never escapes `decode`. Not an Error: no stack to capture. */
const NOT_FAST = Symbol("not on the fast path");

const UINT32_MAX = 0xffff_ffff;
const PARTITION_MAX = LIMITS.partitionsPerTopicMax - 1;
const FETCH_MAX_BYTES_DEFAULT = 1024 * 1024;
const TOPIC_NAMES_CACHED = 64;
const EMPTY = new Uint8Array(0);

const encodeAscii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Top-level keys, each a bit of the `seen` mask. */
const TOP_KEYS = ["id", "op", "durability", "batches", "partitions", "maxBytes", "maxWaitMs", "minBytes"].map(encodeAscii);
const TOP = { id: 1, op: 2, durability: 4, batches: 8, partitions: 16, maxBytes: 32, maxWaitMs: 64, minBytes: 128 } as const;
const PRODUCE_ONLY = TOP.durability | TOP.batches;
const FETCH_ONLY = TOP.partitions | TOP.maxBytes | TOP.maxWaitMs | TOP.minBytes;

/** Keys of a batch entry (produce) or a partition entry (fetch). */
const ENTRY_KEYS = ["topic", "partition", "batch", "offset", "maxBytes"].map(encodeAscii);
const ENTRY = { topic: 1, partition: 2, batch: 4, offset: 8, maxBytes: 16 } as const;

const OP_PRODUCE = encodeAscii("produce");
const OP_FETCH = encodeAscii("fetch");
const DURABILITIES: ReadonlyArray<readonly [Uint8Array, Durability]> = [
  [encodeAscii("written"), "written"],
  [encodeAscii("none"), "none"],
  [encodeAscii("synced"), "synced"],
  [encodeAscii("replicated"), "replicated"],
];

function equalAt(bytes: Uint8Array, start: number, length: number, expected: Uint8Array): boolean {
  if (length !== expected.length) return false;
  for (let index = 0; index < length; index++) if (bytes[start + index] !== expected[index]) return false;
  return true;
}

/**
 * Topic names seen lately, so a request for a known topic makes no new string. Holds copies of
 * the name bytes (never views of a frame, whose buffer the connection reuses).
 */
class TopicNameCache {
  private readonly encoded: Uint8Array[] = [];
  private readonly names: string[] = [];
  private nextSlot = 0;

  /** The name in bytes [start, start + length), or null when it is not ASCII. */
  lookup(bytes: Uint8Array, start: number, length: number): string | null {
    for (let slot = 0; slot < this.encoded.length; slot++) {
      const known = this.encoded[slot];
      if (known !== undefined && equalAt(bytes, start, length, known)) return this.names[slot] ?? null;
    }
    const view = bytes.subarray(start, start + length);
    for (const byte of view) if (byte >= 0x80) return null;
    const name = String.fromCharCode(...view);
    this.encoded[this.nextSlot] = view.slice();
    this.names[this.nextSlot] = name;
    this.nextSlot = (this.nextSlot + 1) % TOPIC_NAMES_CACHED;
    return name;
  }
}

/**
 * Reads produce and fetch requests. One instance serves any number of connections (the broker
 * runs on one thread and `decode` is synchronous); it keeps no reference to a frame after it returns.
 */
export class FastRequestDecoder {
  private bytes: Uint8Array = EMPTY;
  private position = 0;
  private binBytesMax = 0;
  /** Byte length of the str that `str()` read last. */
  private strBytes = 0;
  private readonly topicNames = new TopicNameCache();
  /** reuseProduce: the produce request, its batch list and entries, overwritten by each decode. */
  private readonly produceEntryStore: ProduceEntry[] = [];
  private readonly produceBatches: ProduceEntry[] = [];
  private readonly produceRequest: RequestOf<"produce"> = { durability: "written", batches: this.produceBatches };
  private readonly produceAnswer: FastRequest & { op: "produce" } = { op: "produce", id: 0, request: this.produceRequest };

  /**
   * `reuseProduce`: a produce request comes back in objects reused by the next `decode` (no
   * garbage per request on the broker's hottest path). For a caller that is done with it when
   * its handler returns, as server/dispatch.ts is (handlers/produce.ts copies what it keeps).
   * Fetch requests are always new objects: a long poll keeps its request.
   */
  constructor(private readonly options: { reuseProduce?: boolean } = {}) {}

  /** The request in `body` when it is a well-formed produce or fetch; null: use the generic path. */
  decode(body: Uint8Array, frameBytesMax: number): FastRequest | null {
    this.bytes = body;
    this.position = 0;
    this.binBytesMax = frameBytesMax;
    try {
      const request = this.readRequest();
      if (this.position === body.length) return request;
      this.releaseProduce();
      return null;
    } catch (error) {
      this.releaseProduce();
      if (error === NOT_FAST) return null;
      throw error;
    } finally {
      this.bytes = EMPTY;
    }
  }

  /**
   * reuseProduce: drops the reused produce request's views into its frame, so a large frame
   * buffer is not kept alive until the next produce. Call once the request is handled.
   */
  releaseProduce(): void {
    for (const entry of this.produceBatches) entry.batch = EMPTY as Uint8Array<ArrayBuffer>;
    this.produceBatches.length = 0;
  }

  private readRequest(): FastRequest | null {
    const entries = this.mapHead();
    let seen = 0;
    let id = -1;
    let op: "produce" | "fetch" | null = null;
    let durability: Durability = "written";
    let batches: ProduceEntry[] | null = null;
    let partitions: FetchEntry[] | null = null;
    let maxBytes = FETCH_MAX_BYTES_DEFAULT;
    let maxWaitMs = 0;
    let minBytes = 1;
    for (let entry = 0; entry < entries; entry++) {
      const key = this.key(TOP_KEYS);
      if ((seen & key) !== 0) throw NOT_FAST;
      seen |= key;
      if (key === TOP.id) id = this.int(0, UINT32_MAX);
      else if (key === TOP.op) op = this.op();
      else if (key === TOP.durability) durability = this.durability();
      else if (key === TOP.batches) batches = this.produceEntries();
      else if (key === TOP.partitions) partitions = this.fetchEntries();
      else if (key === TOP.maxBytes) maxBytes = this.int(1, Number.MAX_SAFE_INTEGER);
      else if (key === TOP.maxWaitMs) maxWaitMs = this.int(0, Number.MAX_SAFE_INTEGER);
      else minBytes = this.int(0, Number.MAX_SAFE_INTEGER);
    }
    if (id < 0) return null;
    if (op === "produce" && batches !== null && (seen & FETCH_ONLY) === 0) {
      if (batches !== this.produceBatches) return { op, id, request: { durability, batches } };
      this.produceAnswer.id = id;
      this.produceRequest.durability = durability;
      return this.produceAnswer;
    }
    if (op === "fetch" && partitions !== null && (seen & PRODUCE_ONLY) === 0) return { op, id, request: { partitions, maxBytes, maxWaitMs, minBytes } };
    return null;
  }

  /** `[{topic, partition, batch}]`, 1..produceBatchesMax entries. */
  private produceEntries(): ProduceEntry[] {
    const count = this.arrayHead(WIRE_LIMITS.produceBatchesMax);
    const reuse = this.options.reuseProduce === true;
    const entries: ProduceEntry[] = reuse ? this.produceBatches : [];
    entries.length = 0;
    for (let index = 0; index < count; index++) {
      const keys = this.mapHead();
      let seen = 0;
      let topic = "";
      let partition = 0;
      let batch = EMPTY;
      for (let entry = 0; entry < keys; entry++) {
        const key = this.key(ENTRY_KEYS);
        if ((seen & key) !== 0) throw NOT_FAST;
        seen |= key;
        if (key === ENTRY.topic) topic = this.topic();
        else if (key === ENTRY.partition) partition = this.int(0, PARTITION_MAX);
        else if (key === ENTRY.batch) batch = this.bin();
        else throw NOT_FAST;
      }
      if (seen !== (ENTRY.topic | ENTRY.partition | ENTRY.batch)) throw NOT_FAST;
      if (!reuse) {
        entries.push({ topic, partition, batch });
        continue;
      }
      const entry = (this.produceEntryStore[index] ??= { topic, partition, batch });
      entry.topic = topic;
      entry.partition = partition;
      entry.batch = batch;
      entries.push(entry);
    }
    return entries;
  }

  /** `[{topic, partition, offset, maxBytes?}]`, 1..partitionsPerRequestMax entries. */
  private fetchEntries(): FetchEntry[] {
    const count = this.arrayHead(WIRE_LIMITS.partitionsPerRequestMax);
    const entries: FetchEntry[] = [];
    for (let index = 0; index < count; index++) {
      const keys = this.mapHead();
      let seen = 0;
      let topic = "";
      let partition = 0;
      let offset = 0;
      let maxBytes = 0;
      for (let entry = 0; entry < keys; entry++) {
        const key = this.key(ENTRY_KEYS);
        if ((seen & key) !== 0) throw NOT_FAST;
        seen |= key;
        if (key === ENTRY.topic) topic = this.topic();
        else if (key === ENTRY.partition) partition = this.int(0, PARTITION_MAX);
        else if (key === ENTRY.offset) offset = this.int(0, Number.MAX_SAFE_INTEGER);
        else if (key === ENTRY.maxBytes) maxBytes = this.int(1, Number.MAX_SAFE_INTEGER);
        else throw NOT_FAST;
      }
      const required = ENTRY.topic | ENTRY.partition | ENTRY.offset;
      if ((seen & required) !== required) throw NOT_FAST;
      entries.push((seen & ENTRY.maxBytes) === 0 ? { topic, partition, offset } : { topic, partition, offset, maxBytes });
    }
    return entries;
  }

  // ------------------------------------------------------------ msgpack values

  private byte(at: number): number {
    if (at >= this.bytes.length) throw NOT_FAST;
    return this.bytes[at] ?? 0;
  }

  /** The big-endian unsigned integer of `width` bytes at `at` (after the head byte). */
  private uint(at: number, width: 1 | 2 | 4): number {
    if (at + width > this.bytes.length) throw NOT_FAST;
    const bytes = this.bytes;
    if (width === 1) return bytes[at] ?? 0;
    if (width === 2) return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
    return (bytes[at] ?? 0) * 0x100_0000 + (((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0));
  }

  /** A map head (fixmap, map16, map32): its entry count. More than 8 keys cannot all be known and distinct. */
  private mapHead(): number {
    const head = this.byte(this.position);
    if (head >= 0x80 && head <= 0x8f) {
      this.position += 1;
      return head & 0x0f;
    }
    if (head === 0xde) return this.counted(2, TOP_KEYS.length);
    if (head === 0xdf) return this.counted(4, TOP_KEYS.length);
    throw NOT_FAST;
  }

  /** An array head (fixarray, array16, array32) declaring 1..countMax elements. */
  private arrayHead(countMax: number): number {
    const head = this.byte(this.position);
    let count: number;
    if (head >= 0x90 && head <= 0x9f) {
      this.position += 1;
      count = head & 0x0f;
    } else if (head === 0xdc) count = this.counted(2, countMax);
    else if (head === 0xdd) count = this.counted(4, countMax);
    else throw NOT_FAST;
    if (count < 1 || count > countMax) throw NOT_FAST;
    return count;
  }

  /** The count of width bytes after a container head, at most countMax; moves past both. */
  private counted(width: 2 | 4, countMax: number): number {
    const count = this.uint(this.position + 1, width);
    if (count > countMax) throw NOT_FAST;
    this.position += 1 + width;
    return count;
  }

  /** A str: the start of its bytes, whose count it leaves in `strBytes`; position moves past them. */
  private str(): number {
    const head = this.byte(this.position);
    let start: number;
    if (head >= 0xa0 && head <= 0xbf) {
      this.strBytes = head & 0x1f;
      start = this.position + 1;
    } else if (head === 0xd9) {
      this.strBytes = this.uint(this.position + 1, 1);
      start = this.position + 2;
    } else if (head === 0xda) {
      this.strBytes = this.uint(this.position + 1, 2);
      start = this.position + 3;
    } else if (head === 0xdb) {
      this.strBytes = this.uint(this.position + 1, 4);
      start = this.position + 5;
    } else throw NOT_FAST;
    if (start + this.strBytes > this.bytes.length) throw NOT_FAST;
    this.position = start + this.strBytes;
    return start;
  }

  /** A map key that is one of `names`: its bit (1 << index in names). */
  private key(names: readonly Uint8Array[]): number {
    const start = this.str();
    for (let index = 0; index < names.length; index++) {
      const name = names[index];
      if (name !== undefined && equalAt(this.bytes, start, this.strBytes, name)) return 1 << index;
    }
    throw NOT_FAST;
  }

  private op(): "produce" | "fetch" {
    const start = this.str();
    if (equalAt(this.bytes, start, this.strBytes, OP_PRODUCE)) return "produce";
    if (equalAt(this.bytes, start, this.strBytes, OP_FETCH)) return "fetch";
    throw NOT_FAST;
  }

  private durability(): Durability {
    const start = this.str();
    for (const [name, durability] of DURABILITIES) if (equalAt(this.bytes, start, this.strBytes, name)) return durability;
    throw NOT_FAST;
  }

  /** A topic name: 1..shortStringLengthMax ASCII bytes (the generic schema's bounds). */
  private topic(): string {
    const start = this.str();
    if (this.strBytes < 1 || this.strBytes > LIMITS.shortStringLengthMax) throw NOT_FAST;
    const name = this.topicNames.lookup(this.bytes, start, this.strBytes);
    if (name === null) throw NOT_FAST;
    return name;
  }

  /** A bin (bin8, bin16, bin32) of at most binBytesMax bytes, as a view into the frame. */
  private bin(): Uint8Array<ArrayBuffer> {
    const head = this.byte(this.position);
    const width = head === 0xc4 ? 1 : head === 0xc5 ? 2 : head === 0xc6 ? 4 : 0;
    if (width === 0) throw NOT_FAST;
    const length = this.uint(this.position + 1, width);
    const start = this.position + 1 + width;
    if (length > this.binBytesMax || start + length > this.bytes.length) throw NOT_FAST;
    this.position = start + length;
    // Typed as the schema's Uint8Array<ArrayBuffer>, as the generic path's views are: a frame
    // is never backed by a SharedArrayBuffer.
    return this.bytes.subarray(start, start + length) as Uint8Array<ArrayBuffer>;
  }

  /**
   * An integer in [min, max] (0 <= min, max <= 2^53 - 1), in any msgpack integer encoding, read
   * as the generic decoder reads it (a 64-bit one as high * 2^32 + low, exact up to 2^53). A
   * float, even a whole one, is left to the generic path.
   */
  private int(min: number, max: number): number {
    const at = this.position;
    const head = this.byte(at);
    let value: number;
    let width = 0;
    if (head <= 0x7f) value = head;
    else if (head === 0xcc || head === 0xd0) value = this.uint(at + 1, (width = 1));
    else if (head === 0xcd || head === 0xd1) value = this.uint(at + 1, (width = 2));
    else if (head === 0xce || head === 0xd2) value = this.uint(at + 1, (width = 4));
    else if (head === 0xcf || head === 0xd3) {
      // Read as unsigned: a negative int64 (top bit set) comes out >= 2^63, which like any value
      // past 2^53 - 1 fails the range check below.
      value = this.uint(at + 1, 4) * 0x1_0000_0000 + this.uint(at + 5, 4);
      width = 8;
    } else throw NOT_FAST;
    // A signed head whose top bit is set holds a negative value: never in range here.
    if (head >= 0xd0 && head <= 0xd2 && value >= 2 ** (8 * width - 1)) throw NOT_FAST;
    if (value < min || value > max) throw NOT_FAST;
    this.position = at + 1 + width;
    return value;
  }
}
