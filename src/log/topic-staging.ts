/**
 * @module log/topic-staging
 * The disk side of creating topics and partitions, off the event loop: every file operation is
 * an async Storage call (the thread pool), so a request creating thousands of partitions never
 * holds other clients up. The event loop only starts the calls and, afterwards, opens the new
 * partitions in slices (log-manager.ts).
 *
 * What is made durable, and in what order, so that a topic is whole or absent after a crash:
 *
 *   1. staging/<topic>/<p>/00000000000000000000.log, recovery-point (fdatasync'd), and
 *      staging/<topic>/topic.json (fdatasync'd);
 *   2. an fsync of every <p>/ (its entries must survive: a `synced` append to the log file
 *      counts on them) and of staging/<topic>/;
 *   3. rename staging/<topic> -> topics/<topic>, then one fsync of topics/ — shared by every
 *      topic renamed before it started (group commit: see GroupDirectorySync).
 *
 * Only step 3 makes the topic visible; staging/ is emptied on open. Within a step the calls run
 * side by side (bounded), so a topic costs a few thread-pool round trips, not one per file.
 */
import type { TopicConfig } from "./api.ts";
import { encodeRecoveryPoint, RECOVERY_POINT_FILE } from "./recovery-point.ts";
import { INDEX_SUFFIX, LOG_SUFFIX, segmentFileName, TIME_INDEX_SUFFIX } from "./segment.ts";
import { Semaphore } from "./semaphore.ts";
import type { Storage } from "./storage.ts";

/** Storage calls in flight at once per staged topic: enough to keep the thread pool busy. */
const STAGE_CONCURRENCY = 16;
/**
 * Storage calls in flight at once across every create. Starting an async fs call
 * costs the event loop some 20-30 us (measured, Bun 1.4.5): thousands started at once would
 * hold it for tens of ms, which is what the bound prevents.
 */
const FS_CALLS_IN_FLIGHT_MAX = 32;

const fsSlots = new Semaphore(FS_CALLS_IN_FLIGHT_MAX);

/** Runs one async storage call within the broker-wide bound. */
export function limited<T>(call: () => Promise<T>): Promise<T> {
  return fsSlots.run(call);
}
const EMPTY = new Uint8Array(0);

/** The topic.json contents. */
export function encodeTopicFile(name: string, partitions: number, config: TopicConfig): string {
  return `${JSON.stringify({ version: 1, name, partitions, config }, null, 2)}\n`;
}

/**
 * Steps 1 and 2 above, into `staging` (which must not exist: staging/ is emptied on open, a
 * failed create removes its own, and creates of one name never overlap).
 */
export async function stageTopic(storage: Storage, staging: string, topicFile: string, partitions: number, file: string): Promise<void> {
  const directories = partitionDirectories(staging, 0, partitions);
  await forEachLimited(directories, STAGE_CONCURRENCY, (directory) => limited(() => storage.mkdirAsync(directory)));
  await Promise.all([
    forEachLimited(directories, STAGE_CONCURRENCY, (directory) => writePartitionFiles(storage, directory)),
    limited(() => storage.writeFileAsync(`${staging}/${topicFile}`, file, { sync: true })),
  ]);
  await forEachLimited([...directories, staging], STAGE_CONCURRENCY, (directory) => limited(() => storage.fsyncDirectoryAsync(directory)));
}

/** Steps 1 and 2 for partitions [from, to) of the existing topic directory `directory`. */
export async function stagePartitions(storage: Storage, directory: string, from: number, to: number): Promise<void> {
  const directories = partitionDirectories(directory, from, to);
  await forEachLimited(directories, STAGE_CONCURRENCY, async (partition) => {
    // A directory left by an addition that failed, or that a crash cut short.
    await limited(() => storage.removeTreeAsync(partition));
    await limited(() => storage.mkdirAsync(partition));
    await writePartitionFiles(storage, partition);
    await limited(() => storage.fsyncDirectoryAsync(partition));
  });
}

function partitionDirectories(directory: string, from: number, to: number): string[] {
  const directories: string[] = [];
  for (let index = from; index < to; index++) directories.push(`${directory}/${index}`);
  return directories;
}

async function writePartitionFiles(storage: Storage, directory: string): Promise<void> {
  await Promise.all([
    limited(() => storage.writeFileAsync(`${directory}/${segmentFileName(0, LOG_SUFFIX)}`, EMPTY, { sync: false })),
    // Empty indexes too: without them the first close would write them, on the event loop.
    limited(() => storage.writeFileAsync(`${directory}/${segmentFileName(0, INDEX_SUFFIX)}`, EMPTY, { sync: false })),
    limited(() => storage.writeFileAsync(`${directory}/${segmentFileName(0, TIME_INDEX_SUFFIX)}`, EMPTY, { sync: false })),
    limited(() => storage.writeFileAsync(`${directory}/${RECOVERY_POINT_FILE}`, encodeRecoveryPoint({ offset: 0, segment: 0, position: 0 }), { sync: true })),
  ]);
}

/** Writes a small file atomically without blocking: temp file, fdatasync, rename, fsync of its directory. */
export async function writeFileAtomicAsync(storage: Storage, directory: string, name: string, contents: string): Promise<void> {
  const temporary = `${directory}/${name}.tmp`;
  await limited(() => storage.writeFileAsync(temporary, contents, { sync: true }));
  await limited(() => storage.renameAsync(temporary, `${directory}/${name}`));
  await limited(() => storage.fsyncDirectoryAsync(directory));
}

/** Runs `run` over `items`, at most `limit` at a time; rejects with the first failure (after all settle). */
export async function forEachLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === null) {
      const item = items[next++] as T;
      try {
        await run(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  for (let count = 0; count < Math.min(limit, items.length); count++) workers.push(worker());
  await Promise.all(workers);
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/**
 * Group commit of one directory's fsync: a caller waits for an fsync that started after it
 * asked, and every caller that asked while one ran shares the next. 10,000 topics created at
 * once cost a handful of fsyncs of topics/, not 10,000.
 */
export class GroupDirectorySync {
  private running = false;
  private waiting: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];

  constructor(
    private readonly storage: Storage,
    private readonly directory: string,
  ) {}

  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.start();
    });
  }

  private start(): void {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    const batch = this.waiting;
    this.waiting = [];
    this.storage.fsyncDirectoryAsync(this.directory).then(
      () => this.finish(batch, null),
      (error: unknown) => this.finish(batch, { error }),
    );
  }

  private finish(batch: Array<{ resolve: () => void; reject: (error: unknown) => void }>, failure: { error: unknown } | null): void {
    this.running = false;
    for (const waiter of batch) {
      if (failure === null) waiter.resolve();
      else waiter.reject(failure.error);
    }
    this.start();
  }
}

/** Lets other callbacks (sockets, timers) run before the caller goes on. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
