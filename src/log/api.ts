/**
 * @module log/api
 * The storage engine's public contract: what the server (and tests, and benchmarks) may use.
 * The implementation lives beside this file (log-manager.ts, partition.ts, segment.ts ...).
 * Everything here is about files; nothing knows about sockets.
 */
import type { Storage } from "./storage.ts";

/** Per-topic configuration, persisted as JSON beside the topic's partitions. */
export interface TopicConfig {
  /** Delete closed segments whose max timestamp is older than this; -1 keeps forever. */
  "retention.ms": number;
  /** Delete oldest closed segments while a partition is larger than this; -1 = no bound. */
  "retention.bytes": number;
  /** Roll the active segment once it holds this many bytes. */
  "segment.bytes": number;
  /** Roll the active segment once its first batch is this old. */
  "segment.ms": number;
  /** Background flush: fdatasync after this many messages (-1 = never by count). */
  "flush.messages": number;
  /** Background flush: fdatasync at least this often (-1 = never by time). */
  "flush.ms": number;
}

/** A range of a segment file, for zero-copy (sendfile) or copy (pread) sending. */
export interface ReadSlice {
  fd: number;
  /** Byte position in the file of the first batch. */
  position: number;
  /** Bytes of whole batches, never more than asked for unless the first batch alone is larger. */
  length: number;
  /** Base offset of the first batch in the slice (may be below the offset asked for). */
  firstOffset: number;
  /**
   * Keeps the fd open until called: the fd cache will not close it and retention will not
   * close it while a slice is outstanding. Call exactly once, after the bytes are sent.
   */
  release(): void;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** Broker time of the append (ms), for a log-append-time option later. */
  appendTimeMs: number;
  /**
   * True when the batch was a retry of an idempotent batch already in the log: nothing was
   * appended and the offsets are the ones the original got (see producer-state.ts).
   */
  duplicate?: boolean;
}

export interface PartitionInfo {
  topic: string;
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  sizeBytes: number;
  segmentCount: number;
}

export interface Partition {
  readonly topic: string;
  readonly index: number;
  readonly logStartOffset: number;
  /** Offset the next appended record will get (also the high watermark on one node). */
  readonly nextOffset: number;
  /**
   * What consumers may read below: nextOffset on a single node; in a cluster the high watermark
   * replication sets (docs/cluster.md). A read given it as `endOffset` stops there.
   */
  readonly highWatermark: number;
  /** Replication sets the high watermark; null returns to the single-node rule. */
  setHighWatermark(offset: number | null): void;
  /**
   * Verifies header + checksum, stamps the base offset into `batch` (in place) and appends it
   * with pwrite at the end of the active segment, rolling first when needed. Synchronous: on
   * return the bytes are in the page cache. Throws CORRUPT_BATCH, MESSAGE_TOO_LARGE,
   * STORAGE_FULL, STORAGE_ERROR, PARTITION_FAILED.
   */
  append(batch: Uint8Array): AppendResult;
  /**
   * Whole batches starting with the one holding `offset`, up to about `maxBytes` (at least one
   * batch). Returns null when `offset === nextOffset` (nothing yet). Throws OFFSET_OUT_OF_RANGE
   * (details: logStartOffset, nextOffset) when `offset` is outside [logStartOffset, nextOffset].
   */
  read(offset: number, maxBytes: number, endOffset?: number): ReadSlice | null;
  /** Copies a slice's bytes (the copy path, and tests). */
  readBytes(slice: ReadSlice): Uint8Array;
  /** First offset whose batch has maxTimestamp >= timestampMs; null when none. */
  offsetForTimestamp(timestampMs: number): number | null;
  /** The largest batch maxTimestamp in the log (from each segment's time index); -1 when empty. */
  maxTimestamp(): number;
  /** fdatasync of the active segment and its indexes; checkpoints the recovery point. */
  flush(): void;
  /** Group commit: resolves after an fdatasync that started after this call. */
  sync(): Promise<void>;
  info(): PartitionInfo;

  // Replication (docs/cluster.md, log/leader-epoch.ts); a single node never calls these.

  /** The leader epoch append() stamps (0 until becomeLeader says otherwise). */
  readonly leaderEpoch: number;
  /** The latest leader epoch of a batch in the log (-1 when empty). */
  readonly latestLogEpoch: number;
  /** From now on this broker leads in `epoch` (not below latestLogEpoch); the epoch starts at the log end. */
  becomeLeader(epoch: number): void;
  /** Kafka's OffsetForLeaderEpoch: the largest epoch <= `epoch` and the offset where it ends ({-1, -1} when newer than any). */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number };
  /** The epoch history (epoch -> start offset), oldest first (empty for an empty log). */
  epochHistory(): readonly { readonly epoch: number; readonly startOffset: number }[];
  /** Stores a leader's stamped batch as it is; throws INVALID_REQUEST unless it continues the log. */
  appendAsFollower(batch: Uint8Array): AppendResult;
  /** Cuts the log before the batch holding `offset` (crash-safe); returns the new next offset. */
  truncateTo(offset: number): number;
  /** Empties the log and starts it over at `offset` (past its end or below its start), its new log start (crash-safe). */
  restartAt(offset: number): void;
}

export interface TopicDescription {
  name: string;
  partitions: PartitionInfo[];
  config: TopicConfig;
}

export interface RecoverySummary {
  /** True when the previous stop was clean (the marker was found), or there was none (fresh). */
  clean: boolean;
  /** True when the data directory had never held a log (first start). */
  fresh: boolean;
  partitions: number;
  /** Batches dropped in total, and where. */
  truncations: Array<{ topic: string; partition: number; offset: number; bytesDropped: number; reason: string }>;
  durationMs: number;
}

export interface LogManagerOptions {
  dataDir: string;
  /** Config for new topics, merged under per-topic overrides. */
  topicDefaults?: Partial<TopicConfig>;
  storage?: Storage;
  /** Open segment fds kept by the bounded cache (active segments are always open). */
  openSegmentsMax?: number;
  /**
   * Largest step of disk blocks reserved ahead of an active segment's end (fallocate
   * KEEP_SIZE; see log/preallocation.ts); 0 turns preallocation off. 16 MiB by default.
   */
  preallocateBytesMax?: number;
  /** pino-style logger; silent when absent. */
  logger?: LogSink;
}

export interface LogSink {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface LogManager {
  readonly dataDir: string;
  readonly recovery: RecoverySummary;
  createTopic(name: string, options: { partitions: number; config?: Partial<TopicConfig> }): TopicDescription;
  /**
   * createTopic without holding the event loop: files made on the thread pool, directory fsyncs
   * shared between concurrent creates, partitions opened in slices. Whole or absent: on failure
   * nothing of the topic remains, on disk or in memory. A second create of a name under way
   * waits for the first, then gets TOPIC_EXISTS (or creates it, when the first failed).
   */
  createTopicAsync(name: string, options: { partitions: number; config?: Partial<TopicConfig> }): Promise<TopicDescription>;
  /** addPartitions without holding the event loop; whole or absent like createTopicAsync. */
  addPartitionsAsync(name: string, totalPartitions: number): Promise<TopicDescription>;
  /** Partitions open plus partitions being created, broker-wide. */
  readonly partitionsTotal: number;
  /** Topics open plus topics being created. */
  readonly topicsTotal: number;
  /** Heap bytes held by segment indexes, broker-wide (memory accounting, /metrics). */
  readonly indexMemoryBytes: number;
  /** Takes the topic away at once (one rename); its files are removed in the background. */
  deleteTopic(name: string): void;
  /** deleteTopic, resolving once its files are removed (their space is free again). */
  deleteTopicAsync(name: string): Promise<void>;
  addPartitions(name: string, totalPartitions: number): TopicDescription;
  /** Updates per-topic config; validated, persisted. */
  alterTopicConfig(name: string, config: Partial<TopicConfig>): TopicDescription;
  listTopics(): string[];
  hasTopic(name: string): boolean;
  describeTopic(name: string): TopicDescription;
  /** Throws UNKNOWN_TOPIC / UNKNOWN_PARTITION. */
  partition(topic: string, index: number): Partition;
  /** Runs retention once over every partition; returns segments deleted. */
  runRetention(nowMs?: number): number;
  /** Background retention and flush-policy (flush.ms) timers; unref'd, stopped by close(). */
  startBackgroundTasks(options?: { retentionCheckIntervalMs?: number; flushCheckIntervalMs?: number }): void;
  /** Flushes every partition. */
  flushAll(): void;
  /** Flushes, writes recovery points and the clean-shutdown marker, closes every fd. */
  close(): Promise<void>;
}
