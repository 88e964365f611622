/**
 * @module log/log-manager
 * Topics and partitions on disk: the data directory layout, per-topic config persisted as
 * JSON, create / delete / add partitions / alter config, recovery on open, the
 * clean-shutdown marker, and the background retention and flush timers.
 *
 *   <dataDir>/
 *     clean-shutdown                 present only while the broker is stopped cleanly
 *     topics/<topic>/topic.json      {"version":1,"name":..,"partitions":N,"config":{..}}
 *     topics/<topic>/<partition>/    segments, indexes, recovery-point (see partition.ts)
 *     staging/                       topics being created (renamed into topics/ when whole)
 *     trash/                         topics being deleted (renamed out of topics/ first)
 *
 * Creating and deleting a topic are each one rename, so a crash never leaves half a topic
 * visible; staging/ and trash/ are emptied on open.
 */
import { lockDataDir, type DataDirLock } from "./data-dir-lock.ts";
import { z } from "zod";
import type { LogManager, LogManagerOptions, LogSink, Partition, RecoverySummary, TopicConfig, TopicDescription } from "./api.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { FileCache } from "./fd-cache.ts";
import { LogPartition, type IndexRebuild, type PartitionOptions } from "./partition.ts";
import { PREALLOCATE_BYTES_MAX_DEFAULT, Preallocator } from "./preallocation.ts";
import { nativeStorage, type Storage } from "./storage.ts";
import { DEFAULT_TOPIC_CONFIG, resolveTopicConfig, topicConfigSchema, validateTopicName } from "./topic-config.ts";

export type { LogManager, LogManagerOptions, Partition, RecoverySummary, TopicConfig, TopicDescription } from "./api.ts";
export { DEFAULT_TOPIC_CONFIG } from "./topic-config.ts";

export const CLEAN_SHUTDOWN_FILE = "clean-shutdown";
export const TOPIC_FILE = "topic.json";
export const OPEN_SEGMENTS_DEFAULT = 256;
const RETENTION_CHECK_INTERVAL_DEFAULT_MS = 5 * 60 * 1000;
const FLUSH_CHECK_INTERVAL_DEFAULT_MS = 100;

/** Options beyond the api.ts contract, for tests and tools. */
export interface LogManagerExtraOptions {
  /** Clock for append times, segment.ms and retention; Date.now by default. */
  now?: () => number;
  /** Sparse index interval; LIMITS.indexIntervalBytes by default. */
  indexIntervalBytes?: number;
}

/** The recovery summary plus the indexes rebuilt on the way. */
export interface LogRecoverySummary extends RecoverySummary {
  indexRebuilds: IndexRebuild[];
  /** Bytes verified after recovery points, in total. */
  bytesScanned: number;
  /** Batch headers read to rebuild idempotent-producer state, in total. */
  producerBatchesScanned: number;
}

const topicFileSchema = z.strictObject({
  version: z.literal(1),
  name: z.string(),
  partitions: z.number().int().min(1).max(LIMITS.partitionsPerTopicMax),
  config: topicConfigSchema,
});

interface Topic {
  name: string;
  config: TopicConfig;
  partitions: LogPartition[];
}

const silentSink: LogSink = { info() {}, warn() {}, error() {} };

/** Opens (creating if needed) the data directory and recovers every partition in it. */
export async function openLogManager(options: LogManagerOptions & LogManagerExtraOptions): Promise<LogManager & { readonly recovery: LogRecoverySummary }> {
  const manager = new DiskLogManager(options);
  manager.open();
  return manager;
}

class DiskLogManager implements LogManager {
  readonly dataDir: string;
  recovery: LogRecoverySummary = { clean: false, partitions: 0, truncations: [], indexRebuilds: [], bytesScanned: 0, producerBatchesScanned: 0, durationMs: 0 };
  private readonly storage: Storage;
  private readonly logger: LogSink;
  private readonly cache: FileCache;
  private readonly now: () => number;
  private readonly indexIntervalBytes: number;
  private readonly preallocator: Preallocator;
  private readonly defaults: TopicConfig;
  private readonly topics = new Map<string, Topic>();
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private closing = false;
  private lock: DataDirLock | null = null;

  constructor(options: LogManagerOptions & LogManagerExtraOptions) {
    this.dataDir = options.dataDir.replace(/\/+$/, "") || "/";
    this.storage = options.storage ?? nativeStorage;
    this.logger = options.logger ?? silentSink;
    this.cache = new FileCache(options.openSegmentsMax ?? OPEN_SEGMENTS_DEFAULT);
    this.now = options.now ?? Date.now;
    this.indexIntervalBytes = options.indexIntervalBytes ?? LIMITS.indexIntervalBytes;
    this.preallocator = new Preallocator(this.storage, this.logger, options.preallocateBytesMax ?? PREALLOCATE_BYTES_MAX_DEFAULT);
    this.defaults = resolveTopicConfig(DEFAULT_TOPIC_CONFIG, options.topicDefaults ?? {});
  }

  private get topicsDir(): string {
    return `${this.dataDir}/topics`;
  }

  // ---- open ----------------------------------------------------------------------------

  open(): void {
    const startedMs = performance.now();
    const { storage } = this;
    storage.mkdirp(this.dataDir);
    this.lock = lockDataDir(this.dataDir);
    for (const directory of [this.topicsDir, `${this.dataDir}/staging`, `${this.dataDir}/trash`]) storage.mkdirp(directory);
    for (const leftover of ["staging", "trash"]) {
      for (const name of storage.readdir(`${this.dataDir}/${leftover}`)) storage.removeTree(`${this.dataDir}/${leftover}/${name}`);
    }
    const markerPath = `${this.dataDir}/${CLEAN_SHUTDOWN_FILE}`;
    const clean = storage.exists(markerPath);
    // From here on a crash is an unclean stop: the marker goes before anything is written.
    if (clean) {
      storage.unlink(markerPath);
      storage.fsyncDirectory(this.dataDir);
    }
    this.recovery.clean = clean;
    try {
      for (const name of storage.readdir(this.topicsDir).sort()) this.loadTopic(name);
    } catch (error) {
      this.closeAllNow();
      throw error;
    }
    this.recovery.durationMs = performance.now() - startedMs;
    this.logger.info({ dataDir: this.dataDir, clean, topics: this.topics.size, partitions: this.recovery.partitions, truncations: this.recovery.truncations.length, bytesScanned: this.recovery.bytesScanned, producerBatchesScanned: this.recovery.producerBatchesScanned, durationMs: Math.round(this.recovery.durationMs) }, "log recovered");
  }

  private loadTopic(name: string): void {
    const directory = `${this.topicsDir}/${name}`;
    const bytes = this.storage.readFile(`${directory}/${TOPIC_FILE}`);
    const parsed = bytes === null ? null : topicFileSchema.safeParse(parseJson(bytes));
    if (parsed === null || !parsed.success || parsed.data.name !== name) {
      const problem = parsed === null ? `${TOPIC_FILE} is missing` : parsed.success ? "name does not match its directory" : parsed.error.issues[0]?.message;
      this.logger.error({ topic: name, directory, problem }, "topic skipped: its topic.json is unusable");
      return;
    }
    const topic: Topic = { name, config: parsed.data.config, partitions: [] };
    this.topics.set(name, topic);
    for (let index = 0; index < parsed.data.partitions; index++) {
      const partitionDirectory = `${directory}/${index}`;
      if (!this.storage.exists(partitionDirectory)) LogPartition.initializeDirectory(this.storage, partitionDirectory);
      const { partition, recovery } = LogPartition.open(this.partitionOptions(topic, index));
      topic.partitions.push(partition);
      this.recovery.partitions++;
      this.recovery.truncations.push(...recovery.truncations);
      this.recovery.indexRebuilds.push(...recovery.indexRebuilds);
      this.recovery.bytesScanned += recovery.bytesScanned;
      this.recovery.producerBatchesScanned += recovery.producerBatchesScanned;
    }
  }

  private partitionOptions(topic: Topic, index: number): PartitionOptions {
    return {
      topic: topic.name,
      index,
      directory: `${this.topicsDir}/${topic.name}/${index}`,
      config: topic.config,
      storage: this.storage,
      cache: this.cache,
      logger: this.logger,
      now: this.now,
      indexIntervalBytes: this.indexIntervalBytes,
      preallocator: this.preallocator,
    };
  }

  // ---- topics --------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closing) throw new RunnelError("SHUTTING_DOWN", "the log manager is closed");
  }

  private topic(name: string): Topic {
    this.checkOpen();
    const topic = typeof name === "string" ? this.topics.get(name) : undefined;
    if (!topic) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic ${JSON.stringify(String(name).slice(0, 300))}`);
    return topic;
  }

  createTopic(name: string, options: { partitions: number; config?: Partial<TopicConfig> }): TopicDescription {
    this.checkOpen();
    validateTopicName(name);
    const partitions = options?.partitions;
    checkPartitionCount(partitions, 1);
    if (this.topics.has(name)) throw new RunnelError("TOPIC_EXISTS", `topic ${name} already exists`);
    if (this.topics.size >= LIMITS.topicsMax) throw new RunnelError("LIMIT_EXCEEDED", `the broker holds ${LIMITS.topicsMax} topics, its limit`);
    const config = resolveTopicConfig(this.defaults, options.config ?? {});
    const staging = `${this.dataDir}/staging/${name}`;
    const target = `${this.topicsDir}/${name}`;
    try {
      this.storage.removeTree(staging);
      this.storage.mkdirp(staging);
      for (let index = 0; index < partitions; index++) LogPartition.initializeDirectory(this.storage, `${staging}/${index}`);
      this.writeTopicFile(staging, name, partitions, config);
      this.storage.rename(staging, target);
      this.storage.fsyncDirectory(this.topicsDir);
    } catch (error) {
      this.removeQuietly(staging);
      throw toRunnelError(error);
    }
    const topic: Topic = { name, config, partitions: [] };
    this.topics.set(name, topic);
    for (let index = 0; index < partitions; index++) topic.partitions.push(LogPartition.open(this.partitionOptions(topic, index)).partition);
    this.logger.info({ topic: name, partitions, config }, "topic created");
    return this.describe(topic);
  }

  private writeTopicFile(directory: string, name: string, partitions: number, config: TopicConfig): void {
    const json = JSON.stringify({ version: 1, name, partitions, config }, null, 2);
    this.storage.writeFileAtomic(`${directory}/${TOPIC_FILE}`, `${json}\n`);
  }

  deleteTopic(name: string): void {
    const topic = this.topic(name);
    this.topics.delete(name);
    for (const partition of topic.partitions) partition.closeNow();
    const trash = `${this.dataDir}/trash/${name}.${this.now()}`;
    try {
      this.storage.rename(`${this.topicsDir}/${name}`, trash);
      this.storage.fsyncDirectory(this.topicsDir);
    } catch (error) {
      throw toRunnelError(error);
    }
    // Open slices keep their fds; the files' space returns when the last one is released.
    this.removeQuietly(trash);
    this.logger.info({ topic: name }, "topic deleted");
  }

  addPartitions(name: string, totalPartitions: number): TopicDescription {
    const topic = this.topic(name);
    checkPartitionCount(totalPartitions, topic.partitions.length + 1);
    const directory = `${this.topicsDir}/${name}`;
    const first = topic.partitions.length;
    try {
      for (let index = first; index < totalPartitions; index++) {
        this.storage.removeTree(`${directory}/${index}`);
        LogPartition.initializeDirectory(this.storage, `${directory}/${index}`);
      }
      this.writeTopicFile(directory, name, totalPartitions, topic.config);
    } catch (error) {
      throw toRunnelError(error);
    }
    for (let index = first; index < totalPartitions; index++) topic.partitions.push(LogPartition.open(this.partitionOptions(topic, index)).partition);
    this.logger.info({ topic: name, partitions: totalPartitions }, "partitions added");
    return this.describe(topic);
  }

  alterTopicConfig(name: string, config: Partial<TopicConfig>): TopicDescription {
    const topic = this.topic(name);
    const next = resolveTopicConfig(topic.config, config);
    try {
      this.writeTopicFile(`${this.topicsDir}/${name}`, name, topic.partitions.length, next);
    } catch (error) {
      throw toRunnelError(error);
    }
    topic.config = next;
    for (const partition of topic.partitions) partition.config = next;
    this.logger.info({ topic: name, config: next }, "topic config altered");
    return this.describe(topic);
  }

  listTopics(): string[] {
    this.checkOpen();
    return [...this.topics.keys()].sort();
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  describeTopic(name: string): TopicDescription {
    return this.describe(this.topic(name));
  }

  private describe(topic: Topic): TopicDescription {
    return { name: topic.name, partitions: topic.partitions.map((partition) => partition.info()), config: { ...topic.config } };
  }

  partition(topicName: string, index: number): Partition {
    const topic = this.topic(topicName);
    const partition = Number.isInteger(index) ? topic.partitions[index] : undefined;
    if (!partition) throw new RunnelError("UNKNOWN_PARTITION", `topic ${topicName} has no partition ${index} (it has ${topic.partitions.length})`);
    return partition;
  }

  // ---- background work -----------------------------------------------------------------

  runRetention(nowMs: number = this.now()): number {
    let deleted = 0;
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) deleted += partition.applyRetention(nowMs);
    }
    return deleted;
  }

  startBackgroundTasks(options: { retentionCheckIntervalMs?: number; flushCheckIntervalMs?: number } = {}): void {
    this.checkOpen();
    if (this.timers.length > 0) return;
    const retentionEvery = options.retentionCheckIntervalMs ?? RETENTION_CHECK_INTERVAL_DEFAULT_MS;
    const flushEvery = options.flushCheckIntervalMs ?? FLUSH_CHECK_INTERVAL_DEFAULT_MS;
    const retention = setInterval(() => this.guarded("retention", () => this.runRetention()), retentionEvery);
    const flush = setInterval(() => this.guarded("flush policy", () => this.flushDue()), flushEvery);
    // Timers never keep the process alive: close() stops them, and a dying process needs no retention.
    retention.unref();
    flush.unref();
    this.timers = [retention, flush];
  }

  private flushDue(): void {
    const nowMs = this.now();
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) partition.flushIfDue(nowMs);
    }
  }

  private guarded(task: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.logger.error({ task, error: toRunnelError(error).message }, "background task failed");
    }
  }

  flushAll(): void {
    const errors: unknown[] = [];
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) {
        if (partition.failed) continue;
        try {
          partition.flush();
        } catch (error) {
          errors.push(error);
        }
      }
    }
    if (errors.length > 0) throw toRunnelError(errors[0]);
  }

  // ---- close ---------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    let allClean = true;
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) {
        try {
          await partition.close();
        } catch (error) {
          allClean = false;
          this.logger.error({ topic: topic.name, partition: partition.index, error: toRunnelError(error).message }, "partition did not close cleanly");
        }
      }
    }
    this.topics.clear();
    // Only a stop where every partition flushed may claim to be clean.
    if (allClean) {
      try {
        this.storage.writeFileAtomic(`${this.dataDir}/${CLEAN_SHUTDOWN_FILE}`, `stopped at ${Date.now()} ms\n`);
      } catch (error) {
        // Everything is flushed; the next start merely verifies the (empty) tails.
        allClean = false;
        this.logger.warn({ dataDir: this.dataDir, error: toRunnelError(error).message }, "clean-shutdown marker not written");
      }
    }
    this.lock?.release();
    this.lock = null;
    this.logger.info({ dataDir: this.dataDir, clean: allClean }, "log closed");
  }

  private closeAllNow(): void {
    for (const topic of this.topics.values()) for (const partition of topic.partitions) partition.closeNow();
    this.topics.clear();
    this.lock?.release();
    this.lock = null;
  }

  private removeQuietly(path: string): void {
    try {
      this.storage.removeTree(path);
    } catch (error) {
      this.logger.warn({ path, error: toRunnelError(error).message }, "could not remove a directory");
    }
  }
}

function checkPartitionCount(partitions: unknown, min: number): asserts partitions is number {
  if (typeof partitions !== "number" || !Number.isInteger(partitions) || partitions < min || partitions > LIMITS.partitionsPerTopicMax) {
    throw new RunnelError("INVALID_PARTITIONS", `partition count must be an integer from ${min} to ${LIMITS.partitionsPerTopicMax}, got ${String(partitions)}`);
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}
