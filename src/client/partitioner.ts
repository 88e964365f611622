/**
 * @module client/partitioner
 * Where a record goes. Keyed records: Kafka's rule, so a key lands on the same partition
 * whichever client (or Kafka producer) sent it:
 *
 *   partition = (murmur2(keyBytes) & 0x7fffffff) % partitionCount   (murmur2 seed 0x9747b28c)
 *
 * Keyless records: the sticky partitioner (Kafka KIP-480): stay on one partition until its
 * batch is sealed, then move to another, so keyless traffic fills whole batches instead of
 * spraying one-record batches across every partition.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's `Utils.murmur2` over `bytes[0, length)`, as a signed 32-bit integer. */
export function murmur2(bytes: Uint8Array, length: number = bytes.length): number {
  let h = SEED ^ length;
  const length4 = length & ~3;
  for (let i = 0; i < length4; i += 4) {
    let k = (bytes[i]! & 0xff) | ((bytes[i + 1]! & 0xff) << 8) | ((bytes[i + 2]! & 0xff) << 16) | ((bytes[i + 3]! & 0xff) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // Kafka's switch falls through: 3 -> 2 -> 1.
  const tail = length & 3;
  if (tail >= 3) h ^= (bytes[length4 + 2]! & 0xff) << 16;
  if (tail >= 2) h ^= (bytes[length4 + 1]! & 0xff) << 8;
  if (tail >= 1) {
    h ^= bytes[length4]! & 0xff;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

const textEncoder = new TextEncoder();
/** Reused for string keys so hashing them allocates nothing (keys longer than this allocate). */
let scratch = new Uint8Array(1024);

/** The partition of a key among `partitionCount` partitions. */
export function partitionForKey(key: Uint8Array | string, partitionCount: number): number {
  let hash: number;
  if (typeof key !== "string") {
    hash = murmur2(key);
  } else {
    if (key.length * 3 > scratch.length) scratch = new Uint8Array(key.length * 3);
    hash = murmur2(scratch, textEncoder.encodeInto(key, scratch).written);
  }
  return (hash & 0x7fffffff) % partitionCount;
}

/** One sticky choice per topic, dropped when that partition's batch is sealed. */
export class StickyPartitioner {
  private readonly current = new Map<string, number>();
  private readonly random: () => number;

  constructor(random: () => number = Math.random) {
    this.random = random;
  }

  partition(topic: string, partitionCount: number): number {
    const chosen = this.current.get(topic);
    if (chosen !== undefined && chosen < partitionCount) return chosen;
    return this.choose(topic, partitionCount, chosen);
  }

  /** Called when a batch of (topic, partition) is sealed: the next keyless record moves on. */
  batchSealed(topic: string, partition: number, partitionCount: number): void {
    if (this.current.get(topic) === partition) this.choose(topic, partitionCount, partition);
  }

  /** Picks a partition at random, a different one from `previous` when there is a choice. */
  private choose(topic: string, partitionCount: number, previous: number | undefined): number {
    let next = Math.floor(this.random() * partitionCount) % partitionCount;
    if (partitionCount > 1 && next === previous) next = (next + 1) % partitionCount;
    this.current.set(topic, next);
    return next;
  }
}
