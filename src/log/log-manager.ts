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
 *
 * The broker creates topics and partitions with createTopicAsync / addPartitionsAsync: files
 * are made on the thread pool (topic-staging.ts), renames share their directory fsync (group
 * commit), and the new partitions are opened in slices of a few milliseconds, so no request
 * holds the event loop. A topic joins `topics` only once all of it is open; a failure (EMFILE,
 * a full disk) removes what was made, so a create is whole or absent, also across restarts.
 * Creates of one name run one at a time (the second sees TOPIC_EXISTS), as do partition
 * additions to one topic. The synchronous createTopic / addPartitions remain for tools and tests.
 */
import { lockDataDir, type DataDirLock } from "./data-dir-lock.ts";
import { z } from "zod";
import type { LogManager, LogManagerOptions, LogSink, Partition, RecoverySummary, TopicConfig, TopicDescription } from "./api.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { FileCache, openFilesSoftLimit, segmentFdBudget } from "./fd-cache.ts";
import { LogPartition, type IndexRebuild, type PartitionOptions } from "./partition.ts";
import { PREALLOCATE_BYTES_MAX_DEFAULT, Preallocator } from "./preallocation.ts";
import { nativeStorage, type Storage } from "./storage.ts";
import { DEFAULT_TOPIC_CONFIG, resolveTopicConfig, topicConfigSchema, validateTopicName } from "./topic-config.ts";
import { encodeTopicFile, forEachLimited, GroupDirectorySync, limited, stagePartitions, stageTopic, writeFileAtomicAsync, yieldToLoop } from "./topic-staging.ts";

export type { LogManager, LogManagerOptions, Partition, RecoverySummary, TopicConfig, TopicDescription } from "./api.ts";
export { DEFAULT_TOPIC_CONFIG } from "./topic-config.ts";

export const CLEAN_SHUTDOWN_FILE = "clean-shutdown";
export const TOPIC_FILE = "topic.json";
export const OPEN_SEGMENTS_DEFAULT = 256;
const RETENTION_CHECK_INTERVAL_DEFAULT_MS = 5 * 60 * 1000;
const FLUSH_CHECK_INTERVAL_DEFAULT_MS = 100;
/** Longest run of partition opens before yielding to other clients' callbacks. */
const OPEN_SLICE_MS = 4;
/** Longest run of background-flush starts per flush-timer tick. */
const FLUSH_SLICE_MS = 4;
/** Partitions closed at once by close(). */
const PARTITIONS_CLOSING_MAX = 32;

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
  recovery: LogRecoverySummary = { clean: false, fresh: false, partitions: 0, truncations: [], indexRebuilds: [], bytesScanned: 0, producerBatchesScanned: 0, durationMs: 0 };
  private readonly storage: Storage;
  private readonly logger: LogSink;
  private readonly cache: FileCache;
  private readonly now: () => number;
  private readonly indexIntervalBytes: number;
  private readonly preallocator: Preallocator;
  private readonly defaults: TopicConfig;
  private readonly topics = new Map<string, Topic>();
  /** Creates under way, by name: a second create of the name waits for the first. */
  private readonly creating = new Map<string, Promise<TopicDescription>>();
  /** Partitions of the topics in `topics`, kept as they change (the limits check it per create). */
  private partitionsOpen = 0;
  /** Partitions being created (not yet in `topics`), counted against the broker's limits. */
  private partitionsCreating = 0;
  /** Partition additions under way, by topic, one at a time per topic. */
  private readonly growing = new Map<string, Promise<unknown>>();
  /** Trash being removed in the background; close() waits for it. */
  private readonly removals = new Set<Promise<void>>();
  private readonly topicsDirSync: GroupDirectorySync;
  /** Partitions the flush timer has yet to check in this round (flushDue). */
  private flushBacklog: LogPartition[] = [];
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private closing = false;
  private lock: DataDirLock | null = null;

  constructor(options: LogManagerOptions & LogManagerExtraOptions) {
    this.dataDir = options.dataDir.replace(/\/+$/, "") || "/";
    this.storage = options.storage ?? nativeStorage;
    this.logger = options.logger ?? silentSink;
    const configuredFds = options.openSegmentsMax ?? OPEN_SEGMENTS_DEFAULT;
    const fdBudget = segmentFdBudget(configuredFds);
    if (fdBudget < configuredFds) {
      this.logger.warn({ openSegmentsMax: configuredFds, openFilesLimit: openFilesSoftLimit(), segmentFds: fdBudget }, "openSegmentsMax is over half the process's open-files limit; keeping at most this many segment fds");
    }
    this.cache = new FileCache(fdBudget);
    this.now = options.now ?? Date.now;
    this.indexIntervalBytes = options.indexIntervalBytes ?? LIMITS.indexIntervalBytes;
    this.preallocator = new Preallocator(this.storage, this.logger, options.preallocateBytesMax ?? PREALLOCATE_BYTES_MAX_DEFAULT);
    this.defaults = resolveTopicConfig(DEFAULT_TOPIC_CONFIG, options.topicDefaults ?? {});
    this.topicsDirSync = new GroupDirectorySync(this.storage, this.topicsDir);
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
    // A data directory without topics/ was never used: nothing can have stopped uncleanly.
    const fresh = !storage.exists(this.topicsDir);
    for (const directory of [this.topicsDir, `${this.dataDir}/staging`, `${this.dataDir}/trash`]) storage.mkdirp(directory);
    for (const leftover of ["staging", "trash"]) {
      for (const name of storage.readdir(`${this.dataDir}/${leftover}`)) storage.removeTree(`${this.dataDir}/${leftover}/${name}`);
    }
    const markerPath = `${this.dataDir}/${CLEAN_SHUTDOWN_FILE}`;
    const clean = fresh || storage.exists(markerPath);
    // From here on a crash is an unclean stop: the marker goes before anything is written.
    if (clean && !fresh) {
      storage.unlink(markerPath);
      storage.fsyncDirectory(this.dataDir);
    }
    this.recovery.clean = clean;
    this.recovery.fresh = fresh;
    try {
      for (const name of storage.readdir(this.topicsDir).sort()) this.loadTopic(name);
    } catch (error) {
      this.closeAllNow();
      throw error;
    }
    this.recovery.durationMs = performance.now() - startedMs;
    this.logger.info({ dataDir: this.dataDir, clean, fresh, topics: this.topics.size, partitions: this.recovery.partitions, truncations: this.recovery.truncations.length, bytesScanned: this.recovery.bytesScanned, producerBatchesScanned: this.recovery.producerBatchesScanned, durationMs: Math.round(this.recovery.durationMs) }, "log recovered");
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
      this.partitionsOpen++;
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
    this.refuseExisting(name);
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
    for (let index = 0; index < partitions; index++) {
      topic.partitions.push(LogPartition.open(this.partitionOptions(topic, index)).partition);
      this.partitionsOpen++;
    }
    this.logger.info({ topic: name, partitions, config }, "topic created");
    return this.describe(topic);
  }

  private refuseExisting(name: string): void {
    if (this.topics.has(name) || this.creating.has(name)) throw new RunnelError("TOPIC_EXISTS", `topic ${name} already exists`);
    if (this.topics.size + this.creating.size >= LIMITS.topicsMax) throw new RunnelError("LIMIT_EXCEEDED", `the broker holds ${LIMITS.topicsMax} topics, its limit`);
  }

  get topicsTotal(): number {
    return this.topics.size + this.creating.size;
  }

  get partitionsTotal(): number {
    return this.partitionsOpen + this.partitionsCreating;
  }

  get indexMemoryBytes(): number {
    let bytes = 0;
    for (const topic of this.topics.values()) for (const partition of topic.partitions) bytes += partition.indexMemoryBytes;
    return bytes;
  }

  /** createTopic without holding the event loop (see the module comment). */
  async createTopicAsync(name: string, options: { partitions: number; config?: Partial<TopicConfig> }): Promise<TopicDescription> {
    this.checkOpen();
    validateTopicName(name);
    const partitions = options?.partitions;
    checkPartitionCount(partitions, 1);
    const config = resolveTopicConfig(this.defaults, options.config ?? {});
    const earlier = this.creating.get(name);
    if (earlier !== undefined) await earlier.catch(() => undefined);
    this.checkOpen();
    this.refuseExisting(name);
    this.partitionsCreating += partitions;
    const job = this.createStaged(name, partitions, config).finally(() => {
      this.creating.delete(name);
      this.partitionsCreating -= partitions;
    });
    this.creating.set(name, job);
    return job;
  }

  private async createStaged(name: string, partitions: number, config: TopicConfig): Promise<TopicDescription> {
    const staging = `${this.dataDir}/staging/${name}`;
    try {
      await stageTopic(this.storage, staging, TOPIC_FILE, partitions, encodeTopicFile(name, partitions, config));
      this.checkOpen();
      await limited(() => this.storage.renameAsync(staging, `${this.topicsDir}/${name}`));
    } catch (error) {
      await this.removeQuietlyAsync(staging);
      throw toRunnelError(error);
    }
    const topic: Topic = { name, config, partitions: [] };
    try {
      await this.topicsDirSync.sync();
      this.checkOpen();
      topic.partitions = await this.openPartitionsSliced(topic, 0, partitions);
    } catch (error) {
      await this.withdrawTopic(name);
      throw toRunnelError(error);
    }
    this.topics.set(name, topic);
    this.partitionsOpen += topic.partitions.length;
    this.logger.info({ topic: name, partitions, config }, "topic created");
    return this.describe(topic);
  }

  /** Opens partitions [from, to) of `topic`, yielding every few ms; on failure closes those opened. */
  private async openPartitionsSliced(topic: Topic, from: number, to: number): Promise<LogPartition[]> {
    const opened: LogPartition[] = [];
    try {
      let sliceStartMs = performance.now();
      for (let index = from; index < to; index++) {
        opened.push(LogPartition.open(this.partitionOptions(topic, index)).partition);
        if (performance.now() - sliceStartMs < OPEN_SLICE_MS) continue;
        await yieldToLoop();
        this.checkOpen();
        sliceStartMs = performance.now();
      }
    } catch (error) {
      for (const partition of opened) partition.closeNow();
      throw error;
    }
    return opened;
  }

  /** Takes a topic that failed to open back off the disk: renamed to trash/ (one rename), then removed. */
  private async withdrawTopic(name: string): Promise<void> {
    const trash = `${this.dataDir}/trash/${name}.${this.now()}`;
    try {
      await this.storage.renameAsync(`${this.topicsDir}/${name}`, trash);
      await this.topicsDirSync.sync();
    } catch (error) {
      // Still whole on disk (every file was made before the rename): the next start opens it.
      this.logger.error({ topic: name, error: toRunnelError(error).message }, "a topic that failed to open could not be withdrawn; it reappears at the next start");
      return;
    }
    await this.removeQuietlyAsync(trash);
  }

  /** addPartitions without holding the event loop; additions to one topic run one at a time. */
  async addPartitionsAsync(name: string, totalPartitions: number): Promise<TopicDescription> {
    this.topic(name);
    const earlier = this.growing.get(name) ?? Promise.resolve();
    const job = earlier.catch(() => undefined).then(() => this.growTopic(name, totalPartitions));
    const tail = job.catch(() => undefined);
    this.growing.set(name, tail);
    void tail.then(() => {
      if (this.growing.get(name) === tail) this.growing.delete(name);
    });
    return job;
  }

  private async growTopic(name: string, totalPartitions: number): Promise<TopicDescription> {
    const topic = this.topic(name);
    checkPartitionCount(totalPartitions, topic.partitions.length + 1);
    const directory = `${this.topicsDir}/${name}`;
    const first = topic.partitions.length;
    this.partitionsCreating += totalPartitions - first;
    try {
      await this.stageAndOpenPartitions(topic, first, totalPartitions);
    } finally {
      this.partitionsCreating -= totalPartitions - first;
    }
    this.logger.info({ topic: name, partitions: totalPartitions, directory }, "partitions added");
    return this.describe(topic);
  }

  /**
   * New partition directories first (invisible: topic.json still names the old count), then
   * topic.json (the commit), then the opens; a failed open puts the old topic.json back.
   */
  private async stageAndOpenPartitions(topic: Topic, first: number, totalPartitions: number): Promise<void> {
    const directory = `${this.topicsDir}/${topic.name}`;
    try {
      await stagePartitions(this.storage, directory, first, totalPartitions);
      this.checkStillCurrent(topic);
      await writeFileAtomicAsync(this.storage, directory, TOPIC_FILE, encodeTopicFile(topic.name, totalPartitions, topic.config));
    } catch (error) {
      throw toRunnelError(error);
    }
    let opened: LogPartition[];
    try {
      this.checkStillCurrent(topic);
      opened = await this.openPartitionsSliced(topic, first, totalPartitions);
      this.checkStillCurrent(topic);
    } catch (error) {
      if (this.topics.get(topic.name) === topic) {
        await writeFileAtomicAsync(this.storage, directory, TOPIC_FILE, encodeTopicFile(topic.name, first, topic.config)).catch((restoreError: unknown) => {
          this.logger.error({ topic: topic.name, error: toRunnelError(restoreError).message }, "partitions that failed to open could not be withdrawn; they appear at the next start");
        });
      }
      throw toRunnelError(error);
    }
    topic.partitions.push(...opened);
    this.partitionsOpen += opened.length;
  }

  /** Throws when the topic was deleted (or the log closed) while its partitions were being added. */
  private checkStillCurrent(topic: Topic): void {
    this.checkOpen();
    if (this.topics.get(topic.name) !== topic) throw new RunnelError("UNKNOWN_TOPIC", `topic ${topic.name} was deleted meanwhile`);
  }

  private writeTopicFile(directory: string, name: string, partitions: number, config: TopicConfig): void {
    this.storage.writeFileAtomic(`${directory}/${TOPIC_FILE}`, encodeTopicFile(name, partitions, config));
  }

  deleteTopic(name: string): void {
    void this.deleteTopicAsync(name);
  }

  /** deleteTopic, resolving once the files are gone (their space is free). */
  deleteTopicAsync(name: string): Promise<void> {
    const topic = this.topic(name);
    this.topics.delete(name);
    this.partitionsOpen -= topic.partitions.length;
    for (const partition of topic.partitions) partition.abandon();
    const trash = `${this.dataDir}/trash/${name}.${this.now()}`;
    try {
      this.storage.rename(`${this.topicsDir}/${name}`, trash);
      this.storage.fsyncDirectory(this.topicsDir);
    } catch (error) {
      throw toRunnelError(error);
    }
    // Open slices keep their fds; the files' space returns when the last one is released.
    // Removed on the thread pool: a large topic's files take a while to unlink.
    const removal = this.removeQuietlyAsync(trash);
    this.removals.add(removal);
    void removal.then(() => this.removals.delete(removal));
    this.logger.info({ topic: name }, "topic deleted");
    return removal;
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
    for (let index = first; index < totalPartitions; index++) {
      topic.partitions.push(LogPartition.open(this.partitionOptions(topic, index)).partition);
      this.partitionsOpen++;
    }
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

  /**
   * Starts the flushes that are due, a few ms of them per tick: each start writes index entries
   * synchronously, and thousands of partitions due at once (written in one burst, so due in one
   * tick) would hold the event loop for hundreds of ms. The rest wait for the next ticks.
   */
  private flushDue(): void {
    const nowMs = this.now();
    if (this.flushBacklog.length === 0) {
      for (const topic of this.topics.values()) this.flushBacklog.push(...topic.partitions);
    }
    const sliceStartMs = performance.now();
    while (this.flushBacklog.length > 0 && performance.now() - sliceStartMs < FLUSH_SLICE_MS) {
      (this.flushBacklog.pop() as LogPartition).flushIfDue(nowMs);
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
    // Creates under way see `closing` at their next step and take back what they made.
    await Promise.allSettled([...this.creating.values(), ...this.growing.values(), ...this.removals]);
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    let allClean = true;
    const partitions: LogPartition[] = [];
    for (const topic of this.topics.values()) partitions.push(...topic.partitions);
    // Side by side: each close waits for fsyncs, and thousands of partitions closed one after
    // another would make a clean stop take seconds.
    await forEachLimited(partitions, PARTITIONS_CLOSING_MAX, async (partition) => {
      try {
        await partition.close();
      } catch (error) {
        allClean = false;
        this.logger.error({ topic: partition.topic, partition: partition.index, error: toRunnelError(error).message }, "partition did not close cleanly");
      }
    });
    this.topics.clear();
    this.partitionsOpen = 0;
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
    this.partitionsOpen = 0;
    this.lock?.release();
    this.lock = null;
  }

  private async removeQuietlyAsync(path: string): Promise<void> {
    try {
      await this.storage.removeTreeAsync(path);
    } catch (error) {
      this.logger.warn({ path, error: toRunnelError(error).message }, "could not remove a directory");
    }
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
