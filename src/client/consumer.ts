/**
 * @module client/consumer
 * The consumer: `for await (const message of consumer)` over assigned partitions.
 *
 * - Assignment: explicit partitions (`assign`: no group membership, for tools), every partition
 *   of a topic (`subscribe` without a groupId), or, with a groupId, `subscribe` joins the group
 *   and consumes only the partitions the broker assigns this member (client/group-consumer.ts
 *   does that work; this class hands every call to it).
 * - Start: the group's committed offset when there is one, else `from` (earliest, latest,
 *   an offset, or a timestamp looked up with listOffsets).
 * - Prefetch: when a fetch answer arrives, positions advance from its batch headers alone and
 *   the next fetch is sent at once, before the records are verified and decoded and before
 *   the first message is handed out: decoding and the caller's work overlap the round trip.
 *   When caught up, fetches long-poll (`maxWaitMs`).
 * - Value lifetime: a message's key, value and header values are views into the fetch answer
 *   (no copy). By default each answer has its own buffer, so they live as long as they are
 *   referenced; with `reuseFetchBuffers` they are valid only until the next next()/nextBatch().
 * - Unpacking happens here: each batch's checksum is verified, records below the requested
 *   offset (the broker sends whole batches) are skipped.
 * - Commits: a message counts as processed once the iterator is advanced past it.
 *   Auto-commit (with a groupId) commits processed positions every `autoCommitIntervalMs`
 *   and on close(); `commit()` commits now, including the message at hand. A committed
 *   offset is the next one to read (Kafka's convention).
 * - Out of range (retention deleted the position, or it is past the end): reset to the log
 *   start ("earliest", default) or end ("latest"), or throw ("error"): `offsetReset`.
 *
 * Two connections to the broker: fetches long-poll, and answers on a connection come back in
 * order, so commits and offset lookups go on a second connection rather than queue behind a
 * fetch that may wait `maxWaitMs`.
 *
 * In a cluster (docs/protocol.md, "Clients in a cluster") fetches go to each partition's leader
 * (client/leader-router.ts): one fetch in flight at a time, to one leader, for the partitions it
 * leads, the leaders taken in turn. A retriable partition error or a lost connection has the
 * consumer re-read the leaders before the next fetch, which goes on from the same offsets.
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import { LIMITS, MiB } from "../limits.ts";
import { type AnswerCallback, type AnswerReader, Connection, type ConnectionOptions, type EncodeFrame, encodeSharedRequestFrame } from "./connection.ts";
import { FetchAnswerReader } from "./answer-readers.ts";
import { CoordinatorLink } from "./coordinator-link.ts";
import { type Cursor, type FetchOutcome, createFetchScratch, decodeAnswer, planAnswer, startPlanning } from "./fetch-answer.ts";
import { type ListOffsetsAt, type OffsetRequest, fetchCommittedOffsets, topicPartitionCounts } from "./offsets.ts";
import { GroupConsumer } from "./group-consumer.ts";
import { LeaderRouter, listOffsetsAtLeaders } from "./leader-router.ts";
import type { AssignorName, TopicPartition } from "./group-member.ts";
import { brokerError, isMap, isRetriable, readArray, readMap } from "./wire.ts";

export type StartPosition = "earliest" | "latest" | { offset: number } | { timestamp: number };
export type OffsetResetPolicy = "earliest" | "latest" | "error";

export interface Message {
  topic: string;
  partition: number;
  offset: number;
  /** ms since the epoch, as the producer set it. */
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, Uint8Array> | null;
}

export interface Assignment {
  topic: string;
  partition: number;
  /** Overrides the consumer's `from` for this partition. */
  from?: StartPosition;
}

export interface ConsumerOptions extends ConnectionOptions {
  /** Commit and resume offsets under this name. */
  groupId?: string;
  /** Where to start without a committed offset. Default "earliest". */
  from?: StartPosition;
  /** What to do when the position is out of range. Default "earliest". */
  offsetReset?: OffsetResetPolicy;
  /** Commit processed offsets in the background (default true with a groupId). */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** How long the broker may hold a fetch when there is nothing new. Default 500 ms. */
  maxWaitMs?: number;
  /** Bytes the broker waits for before answering a fetch early. Default 1. */
  minBytes?: number;
  /** Bytes per fetch answer, all partitions together. Default 8 MiB. */
  maxBytes?: number;
  /** Bytes per partition per fetch. Default 1 MiB (grows if one batch is larger). */
  partitionMaxBytes?: number;
  /**
   * Reuse the buffers large fetch answers are assembled in (default false). Faster (no fresh
   * megabyte per fetch, and none of its page faults), but then a message's `key`, `value` and
   * header values are views into a buffer that a later fetch overwrites: they are valid only
   * until the next call of next() or nextBatch() (copy with `.slice()` what must live longer).
   * The Message objects themselves, and the array nextBatch() returns, are reused the same way
   * (refilled by the next answer: no object per record but the value's view), so copy the
   * fields you keep, not the object. With the default, all of it stays valid for as long as it
   * is referenced.
   */
  reuseFetchBuffers?: boolean;
  /** How long retriable failures (broker restarting...) are retried before next() throws. Default 30 s. */
  retryTimeoutMs?: number;
  retryBackoffMs?: number;
  /** How often a subscription looks for partitions added to its topics. Default 30 s. */
  metadataMaxAgeMs?: number;
  /** With a groupId and subscribe(): how the broker shares partitions (default "sticky"). */
  assignor?: AssignorName;
  /** With a groupId and subscribe(): the broker removes a member silent this long and moves its partitions. Default: the broker's (10 s). */
  sessionTimeoutMs?: number;
  /** With a groupId and subscribe(): how long the member may take to give a partition up. */
  rebalanceTimeoutMs?: number;
  /** Group member: partitions this member now consumes (called inside next()). */
  onAssigned?: (partitions: TopicPartition[]) => void | Promise<void>;
  /** Group member: partitions it gives up; what was handed out is committed already (with autoCommit); called inside next(). */
  onRevoked?: (partitions: TopicPartition[]) => void | Promise<void>;
  /** Group member: partitions taken away without a commit (its session expired); called inside next(). */
  onLost?: (partitions: TopicPartition[]) => void | Promise<void>;
  /** Called after the broker acknowledged a commit (auto or explicit), with the offsets committed (Kafka's interceptor onCommit). Must not throw. */
  onCommitted?: (offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>) => void;
  /** Internal (client/group-consumer.ts): the group member's id and generation, stamped on every commit so the broker fences it. */
  commitFence?: () => { memberId: string; generation: number };
}

const FETCH_PARTITIONS_MAX = 1_000;
/** Reused fetch-answer buffers with `reuseFetchBuffers` (see the constructor). */
const FETCH_FRAME_BUFFERS = 3;
const DONE: IteratorResult<Message> = { done: true, value: undefined };

/** What a fetch answer is matched against when no fetch is in flight (an answer then goes the generic way). */
const NO_CURSORS: readonly Cursor[] = [];

export class Consumer implements AsyncIterable<Message> {
  private readonly data: Connection;
  private readonly control: Connection;
  /** The group's coordinator (client/coordinator-link.ts), when there is a groupId. */
  private readonly coordinator: CoordinatorLink | null;
  private readonly groupId: string | undefined;
  private readonly from: StartPosition;
  private readonly offsetReset: OffsetResetPolicy;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly maxBytes: number;
  private readonly partitionMaxBytes: number;
  private readonly retryTimeoutMs: number;
  private readonly retryBackoffMs: number;
  private readonly subscriptions: string[] = [];
  private readonly cursors: Cursor[] = [];
  private readonly byTopic = new Map<string, Cursor[]>();
  private started: Promise<void> | null = null;
  private inFlight: Promise<FetchOutcome> | null = null;
  private buffer: Message[] = [];
  /**
   * Which cursor each stretch of `buffer` belongs to: buffer[runEnds[i - 1] .. runEnds[i]) came
   * from runCursors[i]'s partition. One entry per partition per fetch; the arrays are reused.
   */
  private readonly runCursors: Cursor[] = [];
  private readonly runEnds: number[] = [];
  /** The run holding buffer[bufferIndex - 1] (next() moves it forward). */
  private runIndex = 0;
  private bufferIndex = 0;
  /** Start in `buffer` of the batch nextBatch() handed out and not yet marked processed; -1 when none. */
  private heldFrom = -1;
  private current: Cursor | null = null;
  private currentOffset = -1;
  private failingSinceMs = 0;
  private rotation = 0;
  private readonly metadataMaxAgeMs: number;
  private readonly commitFence: ConsumerOptions["commitFence"];
  private metadataCheckedMs = 0;
  private growing: Promise<void> | null = null;
  private closing = false;
  private closed: Promise<void> | null = null;
  private autoCommitTimer: ReturnType<typeof setInterval> | undefined;
  /** The last background commit failure, if the last one failed; close() reports it. */
  lastCommitError: RunnelError | null = null;
  /**
   * Per-fetch state, reused: the fetch request's fields, and the scratch its answer is planned
   * and decoded with (client/fetch-answer.ts). The consumer has one fetch in flight, planned
   * and decoded before the next is sent.
   */
  private readonly fetchFields: { partitions: Cursor["wire"][]; maxBytes: number; maxWaitMs: number; minBytes: number };
  /**
   * The fetch request `{id, op, ...fetchFields}`, one object reused by every fetch (its partitions
   * are fetchFields' list), with its encoder and answer callback made once: a fetch costs no
   * closures, envelope object or promise chain of its own (bench/alloc.bench.ts). At most one
   * fetch is in flight (fill() awaits it before sending the next): its outcome and its promise's
   * resolve wait in fetchOutcome and fetchResolve.
   */
  private readonly fetchEnvelope: { id: number; op: "fetch"; partitions: Cursor["wire"][]; maxBytes: number; maxWaitMs: number; minBytes: number };
  private fetchOutcome: FetchOutcome | null = null;
  /** The two outcomes fetches take in turn (nextOutcome). */
  private readonly outcomes: FetchOutcome[] = [0, 1].map(() => ({ response: null, error: null, cursors: [], offsets: [] }));
  private outcomeTurn = 0;
  /** Reads this consumer's fetch answers by hand into a view of its own (client/answer-readers.ts). */
  private readonly fetchAnswerReader = new FetchAnswerReader();
  private fetchResolve: ((outcome: FetchOutcome) => void) | null = null;
  private readonly scratch: ReturnType<typeof createFetchScratch>;
  /** With reuseFetchBuffers: the one list every answer's messages are decoded into. */
  private readonly reusedBuffer: Message[] | null;
  /** Set by subscribe() with a groupId: a group member, to which every call goes. */
  private group: GroupConsumer | null = null;
  /** Partition leaders in a cluster; a single node's fetches stay on `data`. */
  private readonly router: LeaderRouter;
  /** Cluster: which leader the next fetch goes to (turns through the leaders). */
  private leaderTurn = 0;

  constructor(private readonly options: ConsumerOptions = {}) {
    this.scratch = createFetchScratch(options.reuseFetchBuffers === true);
    this.reusedBuffer = options.reuseFetchBuffers === true ? [] : null;
    // Three buffers in turn: the answer whose values the caller holds, the fetch in flight, and
    // one spare; the consumer never has more than one fetch in flight.
    this.data = new Connection(options, options.reuseFetchBuffers === true ? FETCH_FRAME_BUFFERS : 0);
    this.control = new Connection(options);
    // Commits and committed offsets go to the group's coordinator (a cluster's; a single node is its own).
    this.coordinator = options.groupId === undefined ? null : new CoordinatorLink(this.control, options, options.groupId);
    this.router = new LeaderRouter(options, this.control, options.reuseFetchBuffers === true ? FETCH_FRAME_BUFFERS : 0);
    this.groupId = options.groupId;
    if (this.groupId !== undefined && (this.groupId.length === 0 || this.groupId.length > LIMITS.shortStringLengthMax)) {
      throw new RunnelError("INVALID_CONFIG", `groupId must be 1-${LIMITS.shortStringLengthMax} characters`);
    }
    this.from = checkStart(options.from ?? "earliest");
    this.offsetReset = options.offsetReset ?? "earliest";
    if (!["earliest", "latest", "error"].includes(this.offsetReset)) throw new RunnelError("INVALID_CONFIG", "offsetReset must be earliest, latest or error");
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.minBytes = options.minBytes ?? 1;
    this.maxBytes = options.maxBytes ?? 8 * MiB;
    this.partitionMaxBytes = options.partitionMaxBytes ?? 1 * MiB;
    this.retryTimeoutMs = options.retryTimeoutMs ?? 30_000;
    this.retryBackoffMs = options.retryBackoffMs ?? 100;
    this.metadataMaxAgeMs = options.metadataMaxAgeMs ?? 30_000;
    this.commitFence = options.commitFence;
    this.fetchFields = { partitions: [], maxBytes: this.maxBytes, maxWaitMs: this.maxWaitMs, minBytes: this.minBytes };
    this.fetchEnvelope = { id: 0, op: "fetch", ...this.fetchFields };
    const autoCommit = options.autoCommit ?? this.groupId !== undefined;
    if (autoCommit && this.groupId !== undefined) {
      this.autoCommitTimer = setInterval(() => void this.autoCommit(), options.autoCommitIntervalMs ?? 5_000);
      this.autoCommitTimer.unref();
    }
  }

  /**
   * Without a groupId: consumes every partition of `topic` (the partition count is read when
   * iteration starts). With one: joins the group when iteration starts and consumes the share of
   * the subscribed topics' partitions the broker assigns this member.
   */
  subscribe(topic: string): this {
    this.checkNotStarted();
    const groupId = this.groupId;
    if (groupId !== undefined && this.commitFence === undefined) {
      if (this.cursors.length > 0) throw new RunnelError("INVALID_CONFIG", "subscribe() joins the group; it does not mix with assign() (use one or the other)");
      if (this.group === null) {
        // The member's inner consumers commit on their own; this one never fetches.
        clearInterval(this.autoCommitTimer);
        this.autoCommitTimer = undefined;
        this.group = new GroupConsumer({ ...this.options, groupId });
      }
      this.group.subscribe(topic);
      return this;
    }
    this.subscriptions.push(topic);
    return this;
  }

  /** Consumes exactly these partitions, without joining a group (commits, if any, are not fenced). */
  assign(assignments: readonly Assignment[]): this {
    this.checkNotStarted();
    if (this.group !== null) throw new RunnelError("INVALID_CONFIG", "assign() does not mix with a group subscription (use one or the other)");
    for (const assignment of assignments) {
      if (!Number.isInteger(assignment.partition) || assignment.partition < 0) throw new RunnelError("INVALID_CONFIG", `partition ${assignment.partition} is not a partition number`);
      this.addCursor(assignment.topic, assignment.partition, assignment.from === undefined ? undefined : checkStart(assignment.from));
    }
    return this;
  }

  /** Next offset to be fetched per partition (-1 before iteration starts). */
  positions(): Array<{ topic: string; partition: number; offset: number }> {
    if (this.group !== null) return this.group.positions();
    return this.cursors.map((cursor) => ({ topic: cursor.topic, partition: cursor.partition, offset: cursor.position }));
  }

  /** The partitions consumed now: a group member's current share, or the assigned ones. */
  assignment(): TopicPartition[] {
    if (this.group !== null) return this.group.assignment();
    return this.cursors.map((cursor) => ({ topic: cursor.topic, partition: cursor.partition }));
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => this.next(),
      // Ending a for-await loop keeps the consumer usable; the message at hand stays unprocessed.
      return: async () => DONE,
    };
  }

  /** The next message; waits (long-polling) when caught up; `done` once closed. */
  async next(): Promise<IteratorResult<Message>> {
    if (this.group !== null) return this.group.next();
    this.markProcessed();
    for (;;) {
      if (this.closing) return DONE;
      if (this.bufferIndex < this.buffer.length) {
        const index = this.bufferIndex++;
        const message = this.buffer[index]!;
        while (this.runEnds[this.runIndex]! <= index) this.runIndex++;
        this.current = this.runCursors[this.runIndex]!;
        this.currentOffset = message.offset;
        return { done: false, value: message };
      }
      await this.fill();
    }
  }

  /**
   * Every message already fetched (at least one; waits like next() when none is), as one array:
   * the batch-at-a-time form of next(), for loops where a promise per message costs more than
   * the work (Kafka's poll()). The batch counts as processed at the next call of nextBatch(),
   * next() or commit(). Returns an empty array once closed.
   */
  /**
   * Bun.nanoseconds() when the last fetch answer arrived (0: none yet): with nextBatch(), how
   * long messages waited in the consumer before the application got them (the bench's split).
   */
  fetchAnsweredNs = 0;

  async nextBatch(): Promise<Message[]> {
    if (this.group !== null) return this.group.nextBatch();
    this.markProcessed();
    for (;;) {
      if (this.closing) return [];
      if (this.bufferIndex < this.buffer.length) {
        const from = this.bufferIndex;
        this.bufferIndex = this.buffer.length;
        const batch = from === 0 ? this.buffer : this.buffer.slice(from);
        this.heldFrom = from;
        return batch;
      }
      await this.fill();
    }
  }

  /**
   * Commits now: by default every processed message and the one at hand; or exactly the
   * given offsets (each the next offset to read). Needs a groupId.
   */
  async commit(offsets?: ReadonlyArray<{ topic: string; partition: number; offset: number }>): Promise<void> {
    if (this.group !== null) return this.group.commit(offsets);
    const group = this.groupId;
    if (group === undefined) throw new RunnelError("INVALID_CONFIG", "commit() needs a consumer created with a groupId");
    if (offsets === undefined) this.markProcessed();
    const entries = offsets ?? this.cursors.filter((cursor) => cursor.processed > cursor.committed).map((cursor) => ({ topic: cursor.topic, partition: cursor.partition, offset: cursor.processed }));
    if (entries.length === 0) return;
    const fence = this.commitFence?.() ?? {};
    const response = await (this.coordinator ?? this.control).request("commitOffsets", { group, ...fence, offsets: entries.map(({ topic, partition, offset }) => ({ topic, partition, offset })) });
    for (const [index, item] of readArray(response.results, "commitOffsets", "results").entries()) {
      const result = readMap(item, "commitOffsets", `results[${index}]`);
      if (result.error !== undefined) throw brokerError(result.error, `commit of ${String(result.topic)}/${String(result.partition)} for group ${group}`);
    }
    for (const entry of entries) {
      const cursor = this.cursorOf(entry.topic, entry.partition);
      if (cursor && entry.offset > cursor.committed) cursor.committed = entry.offset;
    }
    this.options.onCommitted?.(entries);
  }

  /** Stops iteration (a pending next() ends), commits processed offsets when auto-committing, closes the connections. */
  close(): Promise<void> {
    this.closed ??= this.shutDown();
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    this.closing = true;
    if (this.group !== null) {
      await Promise.all([this.group.close(), this.data.close(), this.coordinator?.close(), this.control.close()]);
      return;
    }
    clearInterval(this.autoCommitTimer);
    // The fetch in flight may be long-polling; its answer is not wanted any more.
    this.data.abort();
    this.router.abort();
    if (this.inFlight) await this.inFlight;
    let failure: RunnelError | null = null;
    if (this.autoCommitTimer !== undefined && this.started !== null) {
      await this.commitProcessed().catch((error: unknown) => (failure = toRunnelError(error)));
    }
    await Promise.all([this.data.close(), this.coordinator?.close(), this.control.close()]);
    if (failure) throw failure;
  }

  // ------------------------------------------------------------ assignment and start

  private checkNotStarted(): void {
    if (this.started !== null || this.group?.started === true) throw new RunnelError("INVALID_CONFIG", "assign() and subscribe() must come before iteration starts");
  }

  private addCursor(topic: string, partition: number, from: StartPosition | undefined): void {
    if (this.cursorOf(topic, partition)) return;
    const cursor: Cursor = { topic, partition, from, position: -1, processed: -1, committed: -1, skipBeforeTimestamp: -1, maxBytes: this.partitionMaxBytes, wire: { topic, partition, offset: 0, maxBytes: 0 } };
    this.cursors.push(cursor);
    const list = this.byTopic.get(topic) ?? [];
    list[partition] = cursor;
    this.byTopic.set(topic, list);
  }

  private cursorOf(topic: string, partition: number): Cursor | undefined {
    return this.byTopic.get(topic)?.[partition];
  }

  /** Expands subscriptions, then finds each partition's start: committed offset, else `from`. */
  private async start(): Promise<void> {
    this.metadataCheckedMs = Date.now();
    if (this.subscriptions.length > 0) {
      const counts = await topicPartitionCounts(this.control, this.subscriptions);
      for (const topic of this.subscriptions) for (let partition = 0; partition < counts.get(topic)!; partition++) this.addCursor(topic, partition, undefined);
    }
    if (this.cursors.length === 0) throw new RunnelError("INVALID_CONFIG", "nothing to consume: call subscribe(topic) or assign([...]) first");
    // A cluster answers with its brokers and leaders; a single node's answer changes nothing.
    await this.router.refresh(this.cursorTopics());
    if (this.groupId !== undefined) {
      const committed = await fetchCommittedOffsets(this.coordinator ?? this.control, this.groupId, this.cursors);
      for (const cursor of this.cursors) {
        const offset = committed.get(`${cursor.topic}\u0000${cursor.partition}`) ?? -1;
        if (offset >= 0) cursor.position = cursor.processed = cursor.committed = offset;
      }
    }
    const lookups: OffsetRequest[] = [];
    for (const cursor of this.cursors) {
      if (cursor.position >= 0) continue;
      const from = cursor.from ?? this.from;
      if (typeof from === "object" && "offset" in from) cursor.position = from.offset;
      else lookups.push({ topic: cursor.topic, partition: cursor.partition, at: startAt(from, cursor) });
    }
    await this.lookUp(lookups);
  }

  private async lookUp(lookups: OffsetRequest[]): Promise<void> {
    if (lookups.length === 0) return;
    const found = await listOffsetsAtLeaders(this.router, lookups);
    const latest: OffsetRequest[] = [];
    for (const [index, lookup] of lookups.entries()) {
      const cursor = this.cursorOf(lookup.topic, lookup.partition)!;
      const offset = found[index]!;
      // No record at or after the timestamp: start at the end.
      if (offset < 0) latest.push({ topic: lookup.topic, partition: lookup.partition, at: "latest" });
      else cursor.position = offset;
    }
    await this.lookUp(latest);
  }

  // ------------------------------------------------------------ fetching

  /** Waits for the fetch in flight (starting one if none), unpacks it and sends the next. */
  private async fill(): Promise<void> {
    let outcome: FetchOutcome;
    try {
      this.started ??= this.start();
      await this.started;
      outcome = await (this.inFlight ??= this.fetch());
    } catch (error) {
      this.started = null;
      outcome = { response: null, error: toRunnelError(error), cursors: [], offsets: [] };
    }
    this.inFlight = null;
    if (outcome.error !== null) return this.onFetchFailure(outcome.error);
    this.failingSinceMs = 0;
    this.watchForNewPartitions();
    // Positions advance from the batch headers alone; the next fetch goes out before the
    // records are verified and decoded, so the broker and the network work meanwhile.
    const planning = startPlanning(outcome, this.scratch);
    // Synchronous unless a reset needs an offset lookup (rare): no promise per fetch.
    for (let lookup = planAnswer(planning, this.scratch, this.offsetReset); lookup !== null; lookup = planAnswer(planning, this.scratch, this.offsetReset)) {
      await this.lookUp([{ topic: lookup.topic, partition: lookup.partition, at: this.offsetReset as ListOffsetsAt }]);
    }
    if (!this.closing) this.inFlight = this.fetch();
    try {
      this.buffer = decodeAnswer(this.scratch, this.runCursors, this.runEnds, this.reusedBuffer);
    } catch (error) {
      // A corrupt batch: positions went back to where the answer started; nothing is buffered.
      this.buffer = [];
      throw error;
    }
    this.runIndex = 0;
    this.bufferIndex = 0;
    // A partition answering a retriable error at once must not spin the loop.
    if (this.buffer.length === 0 && planning.partitionErrors > 0) await Bun.sleep(this.retryBackoffMs);
    // In a cluster a partition error may mean its leader moved: the next fetch re-reads them.
    if (planning.partitionErrors > 0) this.router.stale = true;
  }

  private async onFetchFailure(error: RunnelError): Promise<void> {
    const nowMs = Date.now();
    if (this.failingSinceMs === 0) this.failingSinceMs = nowMs;
    if (this.closing) return;
    if (!isRetriable(error)) throw error;
    this.router.stale = true;
    const failingMs = nowMs - this.failingSinceMs;
    if (failingMs > this.retryTimeoutMs) {
      // The error's own figures cover its last attempt only; say how long it really went on.
      throw new RunnelError(error.code, `${error.message} (retried for ${(failingMs / 1000).toFixed(1)} s, retryTimeoutMs ${this.retryTimeoutMs})`, {
        cause: error,
        ...(error.details === undefined ? {} : { details: error.details }),
      });
    }
    await Bun.sleep(this.retryBackoffMs);
  }

  /**
   * Subscriptions follow `createPartitions`: now and then the topics' partition counts are
   * read again (in the background, on the control connection) and new partitions join from
   * their earliest offset, so nothing written to them is missed. A cursor joins only once its
   * start is known.
   */
  private watchForNewPartitions(): void {
    if (this.subscriptions.length === 0 || this.growing !== null || Date.now() - this.metadataCheckedMs < this.metadataMaxAgeMs) return;
    this.metadataCheckedMs = Date.now();
    this.growing = (async () => {
      const counts = await topicPartitionCounts(this.control, this.subscriptions);
      const added: OffsetRequest[] = [];
      for (const [topic, count] of counts) {
        for (let partition = 0; partition < count; partition++) if (!this.cursorOf(topic, partition)) added.push({ topic, partition, at: "earliest" });
      }
      if (added.length === 0) return;
      await this.router.refresh([...new Set(added.map(({ topic }) => topic))]);
      const offsets = await listOffsetsAtLeaders(this.router, added);
      added.forEach(({ topic, partition }, index) => {
        this.addCursor(topic, partition, undefined);
        this.cursorOf(topic, partition)!.position = offsets[index]!;
      });
    })()
      .catch(() => undefined) // tried again after the next interval
      .finally(() => (this.growing = null));
  }

  private cursorTopics(): string[] {
    return [...new Set(this.cursors.map((cursor) => cursor.topic))];
  }

  /**
   * Sends one fetch for every partition (rotating which goes first, for fairness). Never rejects.
   * In a cluster: re-reads the leaders first when one may have moved, then fetches the
   * partitions of one leader.
   */
  private fetch(): Promise<FetchOutcome> {
    if (!this.router.clustered) return this.fetchFrom(this.data, this.cursors);
    return this.router.refreshIfStale(this.cursorTopics(), this.metadataMaxAgeMs).then(
      () => this.fetchFromNextLeader(),
      (error: unknown) => ({ response: null, error: toRunnelError(error), cursors: [], offsets: [] }),
    );
  }

  /** The partitions of the leader whose turn it is (partitions with no leader known go to the bootstrap broker). */
  private fetchFromNextLeader(): Promise<FetchOutcome> {
    const byLeader = new Map<number, Cursor[]>();
    for (const cursor of this.cursors) {
      const leader = this.router.leaderOf(cursor.topic, cursor.partition);
      const list = byLeader.get(leader) ?? [];
      list.push(cursor);
      byLeader.set(leader, list);
    }
    const leaders = [...byLeader.keys()].sort((left, right) => left - right);
    const leader = leaders[this.leaderTurn++ % leaders.length]!;
    return this.fetchFrom(this.router.connectionTo(leader), byLeader.get(leader)!);
  }

  /**
   * An emptied outcome for the next fetch. Two in turn: fill() has planned the last answer's
   * outcome (the only reads of it) before it sends the next fetch, so the one before that is
   * free; two rather than one in case a caller still looks at the last.
   */
  private nextOutcome(): FetchOutcome {
    const outcome = this.outcomes[this.outcomeTurn]!;
    this.outcomeTurn ^= 1;
    outcome.response = null;
    outcome.error = null;
    outcome.cursors.length = 0;
    outcome.offsets.length = 0;
    return outcome;
  }

  private fetchFrom(connection: Connection, cursors: readonly Cursor[]): Promise<FetchOutcome> {
    const count = Math.min(cursors.length, FETCH_PARTITIONS_MAX);
    const outcome = this.nextOutcome();
    // The request's fields are reused: they are encoded when sent, and the next fetch is built
    // only once this one is answered (or failed).
    const partitions = this.fetchFields.partitions;
    partitions.length = 0;
    for (let index = 0; index < count; index++) {
      const cursor = cursors[(this.rotation + index) % cursors.length]!;
      outcome.cursors.push(cursor);
      outcome.offsets.push(cursor.position);
      cursor.wire.offset = cursor.position;
      cursor.wire.maxBytes = cursor.maxBytes;
      partitions.push(cursor.wire);
    }
    this.rotation = (this.rotation + 1) % cursors.length;
    if (this.fetchResolve !== null) throw new RunnelError("INTERNAL", "a consumer sends one fetch at a time");
    const { promise, resolve } = Promise.withResolvers<FetchOutcome>();
    this.fetchOutcome = outcome;
    this.fetchResolve = resolve;
    connection.requestWithCallback("fetch", this.encodeFetch, this.onFetchAnswer, this.maxWaitMs + connection.requestTimeoutMs, this.readFetchAnswer);
    return promise;
  }

  /** The link's reader for this consumer's fetch answers: entries must answer the cursors asked, in order. */
  private readonly readFetchAnswer: AnswerReader = (body) => this.fetchAnswerReader.read(body, this.fetchOutcome?.cursors ?? NO_CURSORS);

  /** Called by the link when it writes the fetch (the request's fields are current then). */
  private readonly encodeFetch: EncodeFrame = (id) => {
    this.fetchEnvelope.id = id;
    return [encodeSharedRequestFrame(this.fetchEnvelope)];
  };

  /** The answer (or failure) of the fetch in flight. Never rejects: the outcome carries the error. */
  private readonly onFetchAnswer: AnswerCallback = (error, response) => {
    const outcome = this.fetchOutcome;
    const resolve = this.fetchResolve;
    this.fetchOutcome = null;
    this.fetchResolve = null;
    if (outcome === null || resolve === null) return;
    if (error === null) {
      this.fetchAnsweredNs = Bun.nanoseconds();
      outcome.response = response;
    } else {
      outcome.error = error;
    }
    resolve(outcome);
  };

  // ------------------------------------------------------------ commits

  private markProcessed(): void {
    if (this.heldFrom >= 0) this.markBatchProcessed();
    const cursor = this.current;
    if (cursor === null) return;
    if (this.currentOffset + 1 > cursor.processed) cursor.processed = this.currentOffset + 1;
    this.current = null;
  }

  /** The batch nextBatch() handed out, buffer[heldFrom..bufferIndex), is processed now. */
  private markBatchProcessed(): void {
    const messages = this.buffer;
    let start = 0;
    for (let run = 0; run < this.runEnds.length; run++) {
      const end = this.runEnds[run]!;
      const cursor = this.runCursors[run]!;
      // A run's messages ascend, so its last one handed out is the one that counts.
      const last = Math.min(end, this.bufferIndex) - 1;
      if (last >= Math.max(start, this.heldFrom)) {
        const next = messages[last]!.offset + 1;
        if (next > cursor.processed) cursor.processed = next;
      }
      start = end;
    }
    this.heldFrom = -1;
  }

  private commitProcessed(): Promise<void> {
    const group = this.groupId!;
    const entries = this.cursors.filter((cursor) => cursor.processed > cursor.committed).map((cursor) => ({ topic: cursor.topic, partition: cursor.partition, offset: cursor.processed }));
    return entries.length === 0 || group === undefined ? Promise.resolve() : this.commit(entries);
  }

  private async autoCommit(): Promise<void> {
    if (this.closing || this.started === null) return;
    try {
      await this.commitProcessed();
      this.lastCommitError = null;
    } catch (error) {
      this.lastCommitError = toRunnelError(error); // the next interval (or close) tries again
    }
  }
}

function startAt(from: StartPosition, cursor: Cursor): ListOffsetsAt {
  if (from === "earliest" || from === "latest") return from;
  if ("timestamp" in from) {
    cursor.skipBeforeTimestamp = from.timestamp;
    return from.timestamp;
  }
  return "earliest";
}

function checkStart(from: StartPosition): StartPosition {
  if (from === "earliest" || from === "latest") return from;
  if (isMap(from) && "offset" in from && Number.isSafeInteger(from.offset) && from.offset >= 0) return from;
  if (isMap(from) && "timestamp" in from && Number.isSafeInteger(from.timestamp) && from.timestamp >= 0) return from;
  throw new RunnelError("INVALID_CONFIG", `start position must be "earliest", "latest", { offset } or { timestamp }; got ${JSON.stringify(from)}`);
}
