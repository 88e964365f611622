/**
 * @module limits
 * Hard limits, named and declared once. Configurable limits (frame bytes, connections...)
 * live in config.ts with their bounds; these are the ceilings those bounds are checked
 * against and the facts of the on-disk and wire formats that never change at run time.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const LIMITS = {
  /** Topic names: Kafka's rule, so names survive a later Kafka-protocol listener. */
  topicNameLengthMax: 249,
  /** Partitions per topic. */
  partitionsPerTopicMax: 10_000,
  /** Topics per broker. */
  topicsMax: 100_000,
  /** A record batch, header included. Also bounded by the configured frame size. */
  batchBytesMax: 64 * MiB,
  /** The records of one compressed Kafka batch once decompressed (consumer side; a zip bomb stops here). */
  decompressedBatchBytesMax: 256 * MiB,
  /** Records in one batch. */
  recordsPerBatchMax: 1_000_000,
  /** Segment size bounds for `segment.bytes`. */
  segmentBytesMin: 4 * KiB,
  segmentBytesMax: 2 * GiB - 1,
  /** Sparse index granularity: one offset-index entry per this many log bytes. */
  indexIntervalBytes: 4 * KiB,
  /** Frame size ceiling (the configured frame limit must be at most this). */
  frameBytesMax: 256 * MiB,
  /** Group ids, client ids and other short strings on the wire. */
  shortStringLengthMax: 255,
} as const;

/** Valid topic name: 1-249 chars of [a-zA-Z0-9._-], not "." or "..". */
export const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
