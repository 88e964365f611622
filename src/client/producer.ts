/**
 * @module client/producer
 * The producer: single `send()` calls in, whole batches out.
 *
 * Path of a record: `send()` -> partition chosen (explicit, key hash, or sticky) -> encoded
 * once, straight into that partition's open batch (format/batch-builder.ts) -> the batch is
 * sealed when it reaches `batchBytes` or has waited `lingerMs` -> a produce request carries
 * sealed batches of several partitions (up to 1 MiB of them, or one larger batch) -> the
 * broker's answer resolves each record's promise with its offset.
 *
 * Guarantees and bounds:
 * - Order per partition: up to `maxInFlight` batches per partition are in flight when
 *   idempotent (one otherwise). A batch that failed with a retriable error is retried (with
 *   backoff) once every batch sent after it has answered, and those that the broker refused
 *   for the gap (OUT_OF_ORDER_SEQUENCE) are sent again behind it, in order. Without
 *   idempotence a retry after a lost answer may store a batch twice; what was acknowledged is
 *   stored once, in order.
 * - Idempotence (on by default for "written" and "synced"): the producer asks the broker for an
 *   id and epoch (`initProducer`) before its first batch and stamps every batch with them and
 *   with the partition's next sequence, assigned when the batch is first sent (a retry keeps
 *   it). The broker answers a retry of a stored batch with its original offsets, so a lost
 *   answer never duplicates. When a batch fails for good its sequence is unknown, so the
 *   producer lets the other partitions' sent batches settle, then bumps its epoch and numbers
 *   from 0 again. A broker without `initProducer` (UNKNOWN_OPERATION) turns it off.
 * - Memory: encoded-but-unacknowledged bytes are bounded by `bufferBytesMax` (plus, kept for
 *   reuse, at most 32 idle batch buffers of batchBytes + 16 KiB — 16 of the adaptive bound's
 *   largest, 256 KiB + 16 KiB, when batchBytes is unset — fewer when that would exceed
 *   bufferBytesMax, and 64 idle batch-start buffers of at most 16 KiB). While busy, more idle
 *   batch buffers are kept, but only in the part of `bufferBytesMax` that unacknowledged bytes
 *   leave unused (so the sum stays within the same bound), and the surplus is let go once the
 *   producer is quiet (nothing buffered at the delivery-timeout sweep, or a batch leaving by
 *   linger well short of the bound). When full,
 *   `send()` returns a promise that waits in a FIFO (so order holds) and nothing more is
 *   encoded; `ready()` lets a loop wait for room instead of queueing sends.
 * - Time: a record fails once `deliveryTimeoutMs` has passed since its batch's first record
 *   was handed to `send()` (Kafka's `delivery.timeout.ms`) and it is not acknowledged: after
 *   failed retries, and also while it waits unsent (buffer full, broker unreachable, no
 *   producer id yet). One timer sweeps the waiting records; a request in flight is left to its
 *   answer or its `requestTimeoutMs`, so a record settles within about deliveryTimeoutMs +
 *   requestTimeoutMs whatever happens to the broker. A record that expired without ever being
 *   written to a connection fails with `details.sent === false` (it was certainly not stored).
 * - Durability "none": the broker sends no answer; records resolve with offset -1 once their
 *   bytes are handed to the kernel.
 *
 * - Cluster (docs/protocol.md, "Clients in a cluster"): each partition's batches go to its
 *   leader (client/leader-router.ts), one request per leader per pump. NOT_LEADER,
 *   FENCED_LEADER_EPOCH or a lost connection marks the topic's metadata for a refresh, and the
 *   batch is retried like any retriable failure (same sequence), to whichever broker leads then.
 *
 * The batches' and partitions' bookkeeping lives in client/producer-batches.ts, the request
 * frame in client/produce-frame.ts; this file is the logic that moves records through them.
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import { KiB, LIMITS, MiB } from "../limits.ts";
import { BufferPool, type Bytes } from "../format/batch-builder.ts";
import { NO_PRODUCER, stampProducer, type ProducerFields } from "../format/record-batch.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { PRODUCE_HEADROOM_BYTES } from "./produce-frame.ts";
import { readProduceAnswer } from "./answer-readers.ts";
import { ProduceRequest } from "./produce-request.ts";
import {
  type Done, type IntakeEntry, PartitionState, ProducerBatch, RecordLists, type Reject, TopicState, checkMessage, fail, rethrowLater, removeInFlight, succeed,
} from "./producer-batches.ts";
import { StickyPartitioner, partitionForKey } from "./partitioner.ts";
import { LeaderRouter, meansLeaderMoved } from "./leader-router.ts";
import { type WireMap, brokerError, malformed, readArray, readInt, readMap } from "./wire.ts";

/** "replicated": a cluster's in-sync replicas hold the batch (docs/cluster.md); a single node treats it as "written". */
export type Durability = "none" | "written" | "synced" | "replicated";

export interface ProducerMessage {
  key?: Bytes | null;
  value: Bytes | null;
  headers?: Record<string, Bytes> | null;
  /** ms since the epoch; defaults to the time of `send()`. */
  timestamp?: number;
  /** Overrides the partitioner. */
  partition?: number;
}

export interface SendResult {
  partition: number;
  /** The record's offset; -1 with durability "none" (the broker does not answer). */
  offset: number;
}

/** `sendWithCallback`'s report: exactly one of `error` and `result` is non-null. */
export type SendCallback = (error: RunnelError | null, result: SendResult | null) => void;


export interface ProducerOptions extends ConnectionOptions {
  /**
   * How long a batch may wait for more records before it is sent. Default 5 ms. 0: sent on the
   * next turn of the event loop (so the send() calls of one turn still share a batch).
   */
  lingerMs?: number;
  /**
   * A batch is sent once it reaches this size. Unset (the default): adaptive, from 64 KiB up to
   * 256 KiB — the bound doubles while batches fill up with the partition's in-flight window full
   * (records are arriving faster than answers: bigger batches cost the broker fewer writes per
   * byte), and halves when batches leave by linger well short of it (light load). Set: fixed.
   */
  batchBytes?: number;
  /** Encoded, unacknowledged bytes held at most; send() waits beyond this. Default 32 MiB. */
  bufferBytesMax?: number;
  /** When the broker answers: "written" (page cache, default), "synced" (fdatasync), "none". */
  durability?: Durability;
  /**
   * How long after send() a record may stay unacknowledged (waiting for buffer room, for the
   * broker, or being retried) before it fails. Default 30 s. 0: no deadline for waiting, and a
   * batch that fails is not retried.
   */
  deliveryTimeoutMs?: number;
  /** First retry delay; doubles per attempt up to retryBackoffMaxMs. Default 100 ms. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Partition counts are refreshed after this age. Default 30 s. */
  metadataMaxAgeMs?: number;
  /**
   * Stamp batches with a broker-assigned producer id, epoch and sequence so retries never
   * store a batch twice. Default true; always off with durability "none" (no answers, so no
   * retries to recognise).
   */
  idempotent?: boolean;
  /**
   * Batches per partition sent and not yet answered, 1..5. Default 5. More than one keeps the
   * connection busy while answers travel back; order still holds because idempotent batches
   * carry sequences the broker checks (a failed batch and everything sent after it are sent
   * again, in order). Without idempotence (or with an old broker) it is always 1, because a
   * retry could then overtake a later batch.
   */
  maxInFlight?: number;
  /**
   * Called with whatever a `sendWithCallback` callback throws (the producer carries on settling
   * the other records). Default: rethrown on a later microtask, so the bug surfaces as an
   * uncaught exception.
   */
  onCallbackError?: (thrown: unknown) => void;
  /** For tests: the sticky partitioner's random source. */
  random?: () => number;
}

/** Details of an error for records refused before anything was sent: certainly not stored. */
const NOT_SENT = { details: { sent: false } } as const;

/** Sequences are i32 on the wire and wrap from 2^31 - 1 to 0. */
const SEQUENCE_MODULUS = 2 ** 31;

/** The broker remembers the last 5 batches of a producer (log/producer-state.ts): a retry of any of them is recognised. */
const IN_FLIGHT_MAX = 5;

const DURABILITIES: readonly Durability[] = ["none", "written", "synced", "replicated"];
const PRODUCE_BATCHES_PER_REQUEST_MAX = 10_000;
/**
 * Pooled batch buffers are this much larger than batchBytes: the builder reserves a record's
 * worst-case size before encoding it, and the record that overflows a batch must still fit.
 */
const POOL_SLACK_BYTES = 16 * KiB;
/** Idle small (batch-start) buffers kept at most: 64 x ~16 KiB. */
const SMALL_POOL_BUFFERS_MAX = 64;
/** Idle pooled buffers kept at most (also bounded by bufferBytesMax). */
const POOL_BUFFERS_MAX = 32;
/** With the adaptive bound, buffers are sized for its maximum (256 KiB): fewer are kept idle. */
const ADAPTIVE_POOL_BUFFERS_MAX = 16;
/** The batch bound to start from (and the fixed one's default). */
const BATCH_BYTES_DEFAULT = 64 * KiB;
/** How far the adaptive batch bound may grow (ProducerOptions.batchBytes unset). */
// 256 KiB, not 1 MiB: in the same run (1 producer, 4 partitions, 1 KiB) both gave the same
// MB/s within noise, and the broker's peak RSS was 136 MB instead of 189 MB (larger frames).
const BATCH_BYTES_ADAPTIVE_MAX = 256 * KiB;
/** Answered produce requests kept for reuse: as many as may be in flight on a few connections. */
const SPARE_REQUESTS_MAX = 16;
/** Frame bytes kept for the produce request's envelope (topic names, keys, markers). */
const REQUEST_OVERHEAD_BYTES = 64 * KiB;
/**
 * Batch bytes one produce request carries at most (a larger batch still goes, alone). The broker
 * assembles each request in one frame buffer and holds it until every batch is appended: a pump
 * that packed every ready batch into one request sent 5 MiB (4 partitions x 5 in flight x 256
 * KiB) to 16 MiB frames. With 1 MiB requests, same run interleaved (1 KiB records, 4
 * partitions): broker peak RSS 180 -> 146 MB with the defaults, 236 -> 156 MB with 2 producers
 * and 1 MiB batches, and broker CPU-s per GB no worse (with the broker freeing received chunks at
 * once, together with the buffer reuse above: 97 -> 84 and 143 -> 84 MB, CPU-s per GB 0.97 ->
 * 0.79 and 0.93 -> 0.75; docs/architecture.md, "Defaults"). Pipelining keeps the connection as busy:
 * in flight is counted in batches per partition, not in requests.
 */
const REQUEST_BYTES_TARGET = 1 * MiB;


export class Producer {
  readonly connection: Connection;
  /** Partition leaders in a cluster (a single node: everything on `connection`). */
  private readonly router: LeaderRouter;
  private readonly lingerMs: number;
  /** The batch bound now: fixed when the option is set, else adaptive between the two below. */
  private batchBytes: number;
  private readonly batchBytesMin: number;
  private readonly batchBytesAdaptiveMax: number;
  private readonly bufferBytesMax: number;
  private readonly durability: Durability;
  private readonly deliveryTimeoutMs: number;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;
  private readonly metadataMaxAgeMs: number;
  private readonly maxInFlight: number;
  /** The one `result` every sendWithCallback callback gets, refilled per record (see sendWithCallback). */
  private readonly callbackResult: SendResult = { partition: 0, offset: 0 };
  /** Settled batches' record lists, for the next batches (producer-batches.ts). */
  private readonly recordLists = new RecordLists();
  /** The producer fields a batch is sealed with: refilled per seal, read by finish() at once. */
  private readonly sealStamp: ProducerFields = { ...NO_PRODUCER };
  private readonly sticky: StickyPartitioner;
  private readonly pool: BufferPool;
  /** lingerMs 0: batches opened this turn, sealed together on the next. */
  private lingerZero: ProducerBatch[] = [];
  private lingerZeroSpare: ProducerBatch[] = [];
  private readonly onCallbackError: (thrown: unknown) => void;
  private readonly topics = new Map<string, TopicState>();
  private readonly sendable = new Set<PartitionState>();
  private readonly intake: IntakeEntry[] = [];
  private intakeHead = 0;
  private bufferedBytes = 0;
  private sequence = 0;
  private pumpScheduled = false;
  /** The requests one pump is filling, per connection (cleared after each pump). */
  private readonly pendingRequests = new Map<Connection, ProduceRequest>();
  /** Answered requests kept for reuse (client/produce-request.ts). */
  private readonly spareRequests: ProduceRequest[] = [];
  /** The pump's clock and bounds, read by pumpPartition (a method run by Set.forEach: no iterator, no closure per pump). */
  private pumpNowMs = 0;
  private pumpRequestBytesMax = 0;
  private readonly metadataWanted = new Set<string>();
  private readonly metadataInFlight = new Set<string>();
  private metadataScheduled = false;
  private progressWaiters: Array<() => void> = [];
  private closed = false;
  private idempotent: boolean;
  private identity: { producerId: number; producerEpoch: number } | null = null;
  /** Bumped each time a new identity arrives; batches and partitions compare against it. */
  private generation = 0;
  /** A batch failed for good: the epoch must be bumped before new sequences are assigned. */
  private identityStale = false;
  private identityRequested = false;
  private identityAttempts = 0;
  /** Batches sent with a sequence of the current generation and not yet settled. */
  private assignedUnsettled = 0;
  private stats = { batchesSent: 0, requestsSent: 0, recordsAcked: 0, retries: 0 };
  /**
   * The batch whose records are being settled, for a send callback that wants to split its
   * latency (the bench): when its request was last handed to the connection and when it
   * settled, both Bun.nanoseconds() (writtenNs 0: never written). Read it inside the callback;
   * it changes with the next batch. One object, overwritten: nothing allocated per batch.
   */
  readonly settling = { writtenNs: 0, settledNs: 0 };
  /** Why the last initProducer failed (reported by records that expire waiting for an identity). */
  private identityError: RunnelError | null = null;
  private readonly expiryTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: ProducerOptions = {}) {
    this.lingerMs = bounded(options.lingerMs ?? 5, 0, 60_000, "lingerMs");
    this.batchBytes = bounded(options.batchBytes ?? BATCH_BYTES_DEFAULT, 1, LIMITS.batchBytesMax, "batchBytes");
    this.batchBytesMin = this.batchBytes;
    this.batchBytesAdaptiveMax = options.batchBytes === undefined ? Math.min(BATCH_BYTES_ADAPTIVE_MAX, LIMITS.batchBytesMax) : this.batchBytes;
    this.bufferBytesMax = bounded(options.bufferBytesMax ?? 32 * MiB, 1, Number.MAX_SAFE_INTEGER, "bufferBytesMax");
    this.durability = options.durability ?? "written";
    if (!DURABILITIES.includes(this.durability)) {
      throw new RunnelError("INVALID_CONFIG", `durability must be one of ${DURABILITIES.join(", ")}; got '${String(this.durability)}'`);
    }
    this.deliveryTimeoutMs = bounded(options.deliveryTimeoutMs ?? 30_000, 0, 24 * 3_600_000, "deliveryTimeoutMs");
    this.retryBackoffMs = bounded(options.retryBackoffMs ?? 100, 1, 60_000, "retryBackoffMs");
    this.retryBackoffMaxMs = bounded(options.retryBackoffMaxMs ?? 1_000, this.retryBackoffMs, 300_000, "retryBackoffMaxMs");
    this.metadataMaxAgeMs = bounded(options.metadataMaxAgeMs ?? 30_000, 0, 24 * 3_600_000, "metadataMaxAgeMs");
    this.maxInFlight = bounded(options.maxInFlight ?? IN_FLIGHT_MAX, 1, IN_FLIGHT_MAX, "maxInFlight");
    this.sticky = new StickyPartitioner(options.random);
    this.onCallbackError = options.onCallbackError ?? rethrowLater;
    const poolBufferBytes = this.batchBytesAdaptiveMax + POOL_SLACK_BYTES + PRODUCE_HEADROOM_BYTES;
    const idleMax = this.batchBytesAdaptiveMax > this.batchBytesMin ? ADAPTIVE_POOL_BUFFERS_MAX : POOL_BUFFERS_MAX;
    const buffersMax = Math.max(1, Math.min(idleMax, Math.floor(this.bufferBytesMax / poolBufferBytes)));
    this.pool = new BufferPool(poolBufferBytes, buffersMax, this.batchStartBytes() + PRODUCE_HEADROOM_BYTES, SMALL_POOL_BUFFERS_MAX);
    this.idempotent = (options.idempotent ?? true) && this.durability !== "none";
    this.connection = new Connection(options);
    this.router = new LeaderRouter(options, this.connection);
    if (this.deliveryTimeoutMs > 0) {
      // One timer for every waiting record's deadline, never one per record; a tenth of the
      // timeout keeps a record's actual wait within 10% of it.
      this.expiryTimer = setInterval(this.expireWaiting, Math.min(1_000, Math.max(10, Math.floor(this.deliveryTimeoutMs / 10))));
      this.expiryTimer.unref();
    }
  }

  /** The broker-assigned identity batches are stamped with; null before the first send or when not idempotent. */
  get producerIdentity(): Readonly<{ producerId: number; producerEpoch: number }> | null {
    return this.idempotent ? this.identity : null;
  }

  /**
   * Counters for diagnostics and tests: batches and requests sent, records acknowledged, retries,
   * the batch bound now, and the batch buffers: allocated so far, and idle now (kept for reuse).
   */
  get metrics(): Readonly<{
    batchesSent: number; requestsSent: number; recordsAcked: number; retries: number; bufferedBytes: number; batchBytes: number;
    batchBuffersAllocated: number; idleBuffers: number; idleBufferBytes: number;
  }> {
    const pool = this.pool;
    return {
      ...this.stats, bufferedBytes: this.bufferedBytes, batchBytes: this.batchBytes,
      batchBuffersAllocated: pool.allocated, idleBuffers: pool.idle, idleBufferBytes: pool.idle * pool.bufferBytes,
    };
  }

  /**
   * Queues one record for `topic`; resolves with its partition and offset once the broker has
   * it at this producer's durability. Keys and values are bytes or strings (sent as UTF-8).
   * Do not modify a Uint8Array passed here until its promise settles.
   */
  send(topic: string, message: ProducerMessage): Promise<SendResult> {
    return new Promise<SendResult>((resolve, reject) => this.enqueue(topic, message, resolve, reject));
  }

  /**
   * `send()` without a promise: `callback(error, result)` is called once, with exactly what the
   * promise would have settled with, in the same order. Cheaper when a loop sends millions of
   * records (no promise, and no `.then()` promise, per record). An exception thrown by the
   * callback does not disturb the producer; it goes to `onCallbackError` (default: rethrown on
   * a later microtask).
   *
   * Nothing is allocated per record on this path: `result` is one object the producer reuses
   * for every callback, so read its fields in the callback (copy them to keep them).
   *
   * Returns true when the producer is done with `message` before returning: its bytes were
   * copied into a batch (or it was refused, and the callback has the error), so the caller may
   * reuse the message object and its buffers at once. False: it waits for buffer room or
   * metadata and is read later; leave it untouched until its callback.
   */
  sendWithCallback(topic: string, message: ProducerMessage, callback: SendCallback): boolean {
    return this.enqueue(topic, message, callback, null);
  }

  /** Places or queues one record; true when it was placed (or refused) at once, false when it waits in the intake. */
  private enqueue(topic: string, message: ProducerMessage, resolve: Done, reject: Reject | null): boolean {
    if (this.closed) {
      fail(resolve, reject, new RunnelError("CLIENT_CLOSED", "send() after the producer was closed", NOT_SENT), this.onCallbackError);
      return true;
    }
    const sequence = this.sequence++;
    if (this.intakeHead < this.intake.length || !this.accept(topic, message, sequence, resolve, reject, 0)) {
      this.intake.push({ topic, message, sequence, resolve, reject, enqueuedMs: Date.now() });
      return false;
    }
    return true;
  }

  /**
   * The largest encoded record (with its batch's header) a batch can carry: the broker's batch
   * limit from `hello` (before it, the protocol's default). A larger one fails MESSAGE_TOO_LARGE.
   */
  get recordBytesMax(): number {
    return this.recordBytesLimit();
  }

  /** True while a `send()` would wait (the buffer is full, or earlier sends are waiting). */
  get saturated(): boolean {
    return this.intakeHead < this.intake.length || this.bufferedBytes >= this.bufferBytesMax;
  }

  /** Resolves when a `send()` would be taken at once (the buffer has room and nothing queues). */
  ready(): Promise<void> {
    if (this.intakeHead === this.intake.length && this.bufferedBytes < this.bufferBytesMax) return Promise.resolve();
    return this.nextProgress().then(() => this.ready());
  }

  /** Sends everything pending now and resolves when every record sent before the call has settled. */
  async flush(): Promise<void> {
    const target = this.sequence;
    for (;;) {
      this.sealAll();
      if (this.oldestUnsettledSequence() >= target) return;
      await this.nextProgress();
    }
  }

  /** Flushes, then closes the connection. Sends after close() fail with CLIENT_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    clearInterval(this.expiryTimer);
    await Promise.all([this.router.close(), this.connection.close()]);
  }

  // ------------------------------------------------------------ accepting records

  /**
   * Places one record, or returns false when it must wait (buffer full, metadata unknown).
   * `enqueuedMs`: when it was sent, for one that waited; 0: now.
   */
  private accept(topic: string, message: ProducerMessage, sequence: number, resolve: Done, reject: Reject | null, enqueuedMs: number): boolean {
    if (this.bufferedBytes >= this.bufferBytesMax) return false;
    const topicState = this.topics.get(topic);
    if (topicState === undefined || (topicState.partitionCount === 0 && topicState.error === null)) {
      this.wantMetadata(topic);
      return false;
    }
    if (topicState.error !== null) {
      fail(resolve, reject, topicState.error, this.onCallbackError);
      return true;
    }
    const nowMs = Date.now();
    if (nowMs - topicState.fetchedAtMs > this.metadataMaxAgeMs) this.wantMetadata(topic);
    const invalid = checkMessage(message, topicState.partitionCount);
    if (invalid !== null) {
      fail(resolve, reject, new RunnelError(invalid.code, `${topic}: ${invalid.message}`, NOT_SENT), this.onCallbackError);
      return true;
    }
    const timestampMs = message.timestamp ?? nowMs;
    const state = topicState.partitionState(this.choosePartition(topicState, message));
    const createdMs = enqueuedMs === 0 ? nowMs : enqueuedMs;
    if (!this.append(state, message, timestampMs, sequence, resolve, reject, false, createdMs)) {
      // The open batch was full and is now sealed; a keyless record follows the sticky
      // partitioner to its next partition (Kafka's "abort on new batch").
      this.append(topicState.partitionState(this.choosePartition(topicState, message)), message, timestampMs, sequence, resolve, reject, true, createdMs);
    }
    return true;
  }

  private choosePartition(topic: TopicState, message: ProducerMessage): number {
    if (message.partition !== undefined) return message.partition;
    if (message.key !== undefined && message.key !== null) return partitionForKey(message.key, topic.partitionCount);
    return this.sticky.partition(topic.name, topic.partitionCount);
  }

  /**
   * Encodes a record into the partition's open batch. When it would overflow a non-empty
   * batch, that batch is sealed and, unless `force`, false is returned so the caller can choose
   * the partition again; with `force` the record starts a new batch on the same partition.
   */
  private append(state: PartitionState, message: ProducerMessage, timestampMs: number, sequence: number, resolve: Done, reject: Reject | null, force: boolean, createdMs: number): boolean {
    let batch = state.open ?? this.openBatch(state, sequence, createdMs);
    if (batch.builder!.recordCount > 0 && timestampMs < batch.builder!.firstTimestamp) {
      // A batch's timestamp deltas are >= 0 (docs/protocol.md, section 3): an earlier record starts a new batch.
      this.seal(state);
      batch = this.openBatch(state, sequence, createdMs);
    }
    let builder = batch.builder!;
    let added = builder.append(message, timestampMs);
    if (builder.byteLength > this.batchBytes && builder.recordCount > 1) {
      builder.undoLast();
      this.sealFull(state);
      if (!force) return false;
      batch = this.openBatch(state, sequence, createdMs);
      builder = batch.builder!;
      added = builder.append(message, timestampMs);
    }
    if (builder.byteLength > this.recordBytesLimit()) {
      builder.undoLast();
      if (builder.recordCount === 0) this.discardOpen(state);
      fail(resolve, reject, new RunnelError("MESSAGE_TOO_LARGE", `${state.topic.name}: a ${added}-byte record does not fit in a batch; the broker takes at most ${this.recordBytesLimit()} bytes`, NOT_SENT), this.onCallbackError);
      return true;
    }
    batch.resolvers.push(resolve);
    batch.rejecters.push(reject);
    batch.bufferBytes += added;
    this.bufferedBytes += added;
    // The broker takes at most recordsPerBatchMax records in a batch (CORRUPT_BATCH past it):
    // tiny records in a large batchBytes would pass it.
    if (builder.byteLength >= this.batchBytes || builder.recordCount >= LIMITS.recordsPerBatchMax) this.sealFull(state);
    return true;
  }

  /**
   * Seals a batch that reached the bound. Adaptive bound (see ProducerOptions.batchBytes): when
   * its partition's in-flight window is full, records are arriving faster than answers, so the
   * bound doubles.
   */
  private sealFull(state: PartitionState): void {
    if (this.batchBytes < this.batchBytesAdaptiveMax && !this.hasRoom(state)) this.batchBytes = Math.min(this.batchBytesAdaptiveMax, this.batchBytes * 2);
    this.seal(state);
  }

  /**
   * A batch left by linger at under a quarter of the bound: light load. The adaptive bound
   * halves, and idle batch buffers beyond the resting count are let go.
   */
  private shrinkBatchBytes(batchBytes: number): void {
    if (batchBytes >= this.batchBytes / 4) return;
    this.pool.trim();
    if (this.batchBytes > this.batchBytesMin) this.batchBytes = Math.max(this.batchBytesMin, Math.floor(this.batchBytes / 2));
  }

  /**
   * Idle full-size buffers the pool may keep as a batch settles: the resting count, plus as many
   * as fit in the part of bufferBytesMax that unacknowledged bytes leave unused. Why: one answer
   * settles up to partitions x maxInFlight batches at once (20 with 4 partitions), and the send
   * loop takes as many again right after; with only the resting 16 kept, the rest were dropped
   * and allocated afresh (zero-filled, page-faulted, collected): a fifth of a saturating 1 KiB
   * run's batches, ~7% of the producer's CPU and ~100 MB of its peak RSS.
   */
  private idleBuffersAllowed(): number {
    const unusedBytes = Math.max(0, this.bufferBytesMax - this.bufferedBytes);
    return this.pool.buffersMax + Math.floor(unusedBytes / this.pool.bufferBytes);
  }

  /** The largest batch the broker takes (before `hello`, the protocol's default frame). */
  private recordBytesLimit(): number {
    const broker = this.connection.broker;
    if (broker === null) return 16 * MiB - REQUEST_OVERHEAD_BYTES;
    return Math.min(broker.batchBytesMax, broker.frameBytesMax - REQUEST_OVERHEAD_BYTES);
  }

  /** A new batch's first buffer (headroom aside): small, unless batchBytes is smaller still. */
  private batchStartBytes(): number {
    return Math.min(this.batchBytes + 1 * KiB, 16 * KiB);
  }

  private openBatch(state: PartitionState, sequence: number, createdMs: number): ProducerBatch {
    const batch = new ProducerBatch(state, sequence, this.batchStartBytes(), this.pool, this.recordLists);
    batch.createdMs = createdMs;
    state.open = batch;
    if (this.lingerMs > 0) {
      batch.lingerTimer = setTimeout(this.onLinger, this.lingerMs, batch);
    } else {
      // lingerMs 0: sealed on the next turn of the event loop, after every send() of this one.
      // A 0 ms timer would wait about a millisecond in Bun; one setImmediate serves all batches.
      this.lingerZero.push(batch);
      if (this.lingerZero.length === 1) setImmediate(this.onLingerZero);
    }
    return batch;
  }

  private readonly onLingerZero = (): void => {
    // Two lists in turn (batches opened while these seal go to the other): none per turn.
    const batches = this.lingerZero;
    this.lingerZero = this.lingerZeroSpare;
    this.lingerZeroSpare = batches;
    for (let index = 0; index < batches.length; index++) {
      const batch = batches[index]!;
      if (batch.state.open === batch) this.lingerEnded(batch);
    }
    batches.length = 0;
  };

  private readonly onLinger = (batch: ProducerBatch): void => {
    if (batch.state.open === batch) this.lingerEnded(batch);
  };

  /**
   * A batch whose linger is over is sealed only when its partition could send it now: while
   * `maxInFlight` batches are out (or queued), it keeps taking records, as Kafka's accumulator
   * does, instead of becoming one more tiny batch in the queue. Answers seal it (`sealIfDue`).
   */
  private lingerEnded(batch: ProducerBatch): void {
    if (this.hasRoom(batch.state)) {
      this.shrinkBatchBytes(batch.builder?.byteLength ?? 0);
      this.seal(batch.state);
    } else {
      batch.lingerOver = true;
    }
  }

  private hasRoom(state: PartitionState): boolean {
    if (this.durability === "none") return true;
    const inFlightMax = this.idempotent ? this.maxInFlight : 1;
    return state.failed.length === 0 && state.inFlight.length + state.ready.length < inFlightMax;
  }

  private sealIfDue(state: PartitionState): void {
    if (state.open !== null && state.open.lingerOver && this.hasRoom(state)) this.seal(state);
  }

  private discardOpen(state: PartitionState): void {
    const open = state.open;
    if (open === null) return;
    clearTimeout(open.lingerTimer);
    if (open.builder !== null) this.pool.give(open.builder.storage);
    state.open = null;
  }

  private seal(state: PartitionState): void {
    const batch = state.open;
    if (batch === null) return;
    state.open = null;
    clearTimeout(batch.lingerTimer);
    batch.recordCount = batch.builder!.recordCount;
    batch.bytes = batch.builder!.finish(this.predictStamp(state, batch));
    batch.storage = batch.builder!.storage;
    batch.builder = null;
    state.ready.push(batch);
    this.sendable.add(state);
    this.sticky.batchSealed(state.topic.name, state.partition, state.topic.partitionCount);
    this.schedulePump();
  }

  private sealAll(): void {
    for (const topic of this.topics.values()) {
      for (const state of topic.partitions) if (state?.open) this.seal(state);
    }
  }

  // ------------------------------------------------------------ sending batches

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(this.pump);
  }

  /**
   * Sends every partition's batches that may go now (up to the in-flight bound), packed into as
   * few requests of up to 1 MiB (REQUEST_BYTES_TARGET) as fit, per connection: each partition's
   * leader in a cluster (client/leader-router.ts), the one broker otherwise.
   */
  private readonly pump = (): void => {
    this.pumpScheduled = false;
    this.pumpNowMs = Date.now();
    this.pumpRequestBytesMax = Math.min(REQUEST_BYTES_TARGET, (this.connection.broker?.frameBytesMax ?? 16 * MiB) - REQUEST_OVERHEAD_BYTES);
    try {
      this.sendable.forEach(this.pumpPartition);
      this.pendingRequests.forEach(this.sendRequest);
    } finally {
      this.pendingRequests.clear();
    }
  };

  /** One partition's part of a pump: moves its ready batches into the pending requests. */
  private readonly pumpPartition = (state: PartitionState): void => {
    if (state.retryAtMs > this.pumpNowMs) return;
    const unanswered = this.durability === "none";
    const inFlightMax = this.idempotent ? this.maxInFlight : 1;
    const pending = this.pendingRequests;
    const ready = state.ready;
    const connection = this.router.connectionFor(state.topic.name, state.partition);
    // After a failure nothing more goes until every batch in flight has answered (resolveFailures).
    while (ready.length > 0 && (unanswered || (state.failed.length === 0 && state.inFlight.length < inFlightMax))) {
      const batch = ready[0]!;
      // Waiting for an identity: the partition stays sendable; the answer pumps again.
      if (this.idempotent && !this.maySend(batch)) return;
      ready.shift();
      if (!unanswered) state.inFlight.push(batch);
      if (this.idempotent) this.assignSequence(state, batch);
      let request = pending.get(connection);
      if (request !== undefined && (request.bytes + batch.bytes!.length > this.pumpRequestBytesMax || request.batches.length >= PRODUCE_BATCHES_PER_REQUEST_MAX)) {
        this.sendRequest(request, connection);
        request = undefined;
      }
      if (request === undefined) {
        request = this.spareRequests.pop() ?? new ProduceRequest(this);
        request.durability = this.durability;
        pending.set(connection, request);
      }
      request.add(batch);
    }
    this.sendable.delete(state);
  };

  private readonly sendRequest = (request: ProduceRequest, connection: Connection): void => {
    this.stats.requestsSent += 1;
    this.stats.batchesSent += request.batches.length;
    if (this.durability === "none") {
      connection.sendEncoded("produce", request.encode).then(
        () => this.onProduceSettled(request, null, null),
        (error: unknown) => this.onProduceSettled(request, toRunnelError(error), null),
      );
      return;
    }
    // Callbacks of a reused request, not a promise: nothing allocated per request here.
    connection.requestWithCallback("produce", request.encode, request.done, connection.requestTimeoutMs, readProduceAnswer);
  };

  /** ProduceRequestOwner: the connection writes the request now. */
  onProduceWritten(request: ProduceRequest): void {
    const writtenNs = Bun.nanoseconds();
    for (const batch of request.batches) {
      batch.written = true;
      batch.writtenNs = writtenNs;
    }
  }

  /** ProduceRequestOwner: the request's answer (or failure); the request is reused afterwards. */
  onProduceSettled(request: ProduceRequest, error: RunnelError | null, response: WireMap | null): void {
    const batches = request.batches;
    try {
      if (this.durability === "none") {
        for (const batch of batches) this.settle(batch, -1, error);
      } else if (error === null) {
        this.onProduceAnswer(batches, response!);
      } else {
        for (const batch of batches) this.onBatchError(batch, error);
      }
    } finally {
      request.reset();
      if (this.spareRequests.length < SPARE_REQUESTS_MAX) this.spareRequests.push(request);
    }
  }

  private onProduceAnswer(batches: ProducerBatch[], response: WireMap): void {
    let results: unknown[];
    try {
      results = readArray(response.results, "produce", "results");
      if (results.length !== batches.length) throw malformed("produce", `${results.length} results for ${batches.length} batches`);
    } catch (error) {
      for (const batch of batches) this.onBatchError(batch, toRunnelError(error));
      return;
    }
    // A loop, not forEach: no function object and scope per answer.
    for (let index = 0; index < batches.length; index++) this.onBatchAnswer(batches[index]!, results[index], index);
  }

  private onBatchAnswer(batch: ProducerBatch, answer: unknown, index: number): void {
    try {
      const result = readMap(answer, "produce", "results[]");
      if (result.error !== undefined) {
        const where = `${batch.state.topic.name}/${batch.state.partition}`;
        this.onBatchError(batch, brokerError(result.error, `produce to ${where}`));
      } else {
        this.onBatchDone(batch, readInt(result.baseOffset, "produce", `results[${index}].baseOffset`));
      }
    } catch (error) {
      this.onBatchError(batch, toRunnelError(error));
    }
  }

  private onBatchDone(batch: ProducerBatch, baseOffset: number): void {
    const state = batch.state;
    this.unassign(batch);
    removeInFlight(state, batch);
    state.retryAtMs = 0;
    if (state.inFlight.length === 0 && state.failed.length > 0) this.resolveFailures(state);
    else if (state.ready.length > 0) this.sendable.add(state);
    this.sealIfDue(state);
    this.stats.recordsAcked += batch.resolvers.length;
    this.settle(batch, baseOffset, null);
  }

  /** A failed batch waits until every batch of its partition in flight has answered. */
  private onBatchError(batch: ProducerBatch, error: RunnelError): void {
    const state = batch.state;
    // The leader may have moved: learn where it is now, before the retry's backoff is over.
    if (this.router.clustered && meansLeaderMoved(error)) this.wantMetadata(state.topic.name);
    removeInFlight(state, batch);
    batch.lastError = error;
    state.failed.push({ batch, error });
    if (state.inFlight.length === 0) this.resolveFailures(state);
  }

  /**
   * Every batch of a partition that was in flight has answered and some failed: decides each
   * failed batch's fate in send order, so order holds with several in flight (Kafka's way).
   * - UNKNOWN_PRODUCER_ID (a broker that never issued our id, e.g. after its data directory was
   *   replaced): the batch was not stored; it is sent again under a new identity.
   * - No earlier batch failed for good: a retriable error, or OUT_OF_ORDER_SEQUENCE behind an
   *   earlier failed batch (the broker refused it because of that gap), goes back to the front
   *   of the queue with its sequence and is sent again after backoff; anything else, or a batch
   *   past its delivery timeout, fails for good (and the producer's epoch is then bumped).
   * - Behind a batch that failed for good: one the broker certainly did not store (refused as
   *   out of order, or behind a batch known not stored) loses its sequence and is sent again
   *   under the next epoch; one whose fate is unknown fails too, as a retry might store it twice.
   */
  private resolveFailures(state: PartitionState): void {
    const failed = state.failed.sort((a, b) => a.batch.firstSequence - b.batch.firstSequence);
    state.failed = [];
    const nowMs = Date.now();
    const requeue: ProducerBatch[] = [];
    let gap: "none" | "known" | "unknown" = "none";
    let backoffMs = 0;
    failed.forEach(({ batch, error }, index) => {
      const elapsedMs = nowMs - batch.createdMs;
      const batchBackoffMs = Math.min(this.retryBackoffMaxMs, this.retryBackoffMs * 2 ** batch.attempts);
      const refusedForGap = error.code === "OUT_OF_ORDER_SEQUENCE" && index > 0;
      if (gap === "none" && error.code === "UNKNOWN_PRODUCER_ID" && elapsedMs + batchBackoffMs <= this.deliveryTimeoutMs) {
        // The broker never issued our id (its data directory was replaced): nothing of the
        // batch was stored, so it goes again, numbered afresh under a new identity.
        this.unassign(batch);
        this.identityStale = true;
        if (requeue.length === 0) backoffMs = batchBackoffMs;
        batch.attempts += 1;
        this.stats.retries += 1;
        requeue.push(batch);
      } else if (gap === "none" && (error.retriable || refusedForGap) && elapsedMs + batchBackoffMs <= this.deliveryTimeoutMs) {
        if (requeue.length === 0) backoffMs = batchBackoffMs;
        batch.attempts += 1;
        this.stats.retries += 1;
        requeue.push(batch);
      } else if (gap !== "none" && (refusedForGap || (gap === "known" && error.retriable)) && elapsedMs <= this.deliveryTimeoutMs) {
        this.unassign(batch);
        requeue.push(batch);
      } else {
        if (gap === "none") gap = error.retriable ? "unknown" : "known";
        this.failForGood(batch, error, elapsedMs);
      }
    });
    if (requeue.length > 0) {
      state.ready = requeue.concat(state.ready);
      state.retryAtMs = nowMs + backoffMs;
      if (backoffMs > 0) setTimeout(() => this.schedulePump(), backoffMs);
    }
    if (state.ready.length > 0) this.sendable.add(state);
    this.sealIfDue(state);
    this.schedulePump();
  }

  private failForGood(batch: ProducerBatch, error: RunnelError, elapsedMs: number): void {
    if (error.code === "UNKNOWN_TOPIC" || error.code === "UNKNOWN_PARTITION") this.wantMetadata(batch.state.topic.name);
    if (this.unassign(batch)) this.identityStale = true;
    let final = batch.attempts === 0 ? error : new RunnelError(error.code, `${error.message} (gave up after ${batch.attempts + 1} attempts over ${elapsedMs} ms)`, { cause: error });
    // No attempt reached a connection (e.g. the broker was unreachable throughout): certainly not stored.
    if (!batch.written) final = new RunnelError(final.code, `${final.message}; never sent`, { cause: error, details: { ...error.details, sent: false } });
    this.settle(batch, -1, final);
  }

  /** Resolves or rejects a batch's records and gives its bytes back to the buffer. */
  private settle(batch: ProducerBatch, baseOffset: number, error: RunnelError | null): void {
    this.bufferedBytes -= batch.bufferBytes;
    batch.bufferBytes = 0;
    batch.bytes = null;
    // Safe to reuse: the connection encodes each request into its own frame when it is sent,
    // and a settled batch is never sent again.
    if (batch.storage !== null) this.pool.give(batch.storage, this.idleBuffersAllowed());
    batch.storage = null;
    const partition = batch.state.partition;
    this.settling.writtenNs = batch.writtenNs;
    this.settling.settledNs = Bun.nanoseconds();
    const resolvers = batch.resolvers;
    const rejecters = batch.rejecters;
    if (error !== null) {
      for (let index = 0; index < resolvers.length; index++) fail(resolvers[index]!, rejecters[index]!, error, this.onCallbackError);
    } else {
      for (let index = 0; index < resolvers.length; index++) {
        succeed(resolvers[index]!, rejecters[index]!, partition, baseOffset < 0 ? -1 : baseOffset + index, this.callbackResult, this.onCallbackError);
      }
    }
    this.recordLists.giveBack(batch);
    this.schedulePump();
    this.pumpIntake();
    this.wakeProgress();
  }

  // ------------------------------------------------------------ idempotence

  /** Producer fields to seal a batch with: the predicted next sequence, or none yet. */
  private predictStamp(state: PartitionState, batch: ProducerBatch): ProducerFields {
    if (!this.idempotent || this.identity === null || this.identityStale) return NO_PRODUCER;
    this.syncGeneration(state);
    batch.stampGeneration = this.generation;
    batch.baseSequence = state.sealSequence;
    state.sealSequence = (state.sealSequence + batch.recordCount) % SEQUENCE_MODULUS;
    const stamp = this.sealStamp;
    stamp.producerId = this.identity.producerId;
    stamp.producerEpoch = this.identity.producerEpoch;
    stamp.baseSequence = batch.baseSequence;
    return stamp;
  }

  /** A partition's sequences restart at 0 under a new identity (every batch of it is unsent then). */
  private syncGeneration(state: PartitionState): void {
    if (state.generation === this.generation) return;
    state.generation = this.generation;
    state.nextSequence = 0;
    state.sealSequence = state.ready.reduce((sum, batch) => sum + batch.recordCount, 0) % SEQUENCE_MODULUS;
  }

  /** Whether `batch` may be sent now; when it needs an identity first, asks for one. */
  private maySend(batch: ProducerBatch): boolean {
    if (batch.assignedGeneration === this.generation && batch.assignedGeneration >= 0) return true;
    if (this.identity !== null && !this.identityStale) return true;
    this.requestIdentity();
    return false;
  }

  /** Gives a batch its sequence on first send (restamping when the prediction was off); retries keep it. */
  private assignSequence(state: PartitionState, batch: ProducerBatch): void {
    if (batch.assignedGeneration === this.generation || this.identity === null) return;
    this.syncGeneration(state);
    const sequence = state.nextSequence;
    if (batch.stampGeneration !== this.generation || batch.baseSequence !== sequence) {
      stampProducer(batch.bytes!, { ...this.identity, baseSequence: sequence });
      batch.stampGeneration = this.generation;
      batch.baseSequence = sequence;
    }
    batch.assignedGeneration = this.generation;
    state.nextSequence = (sequence + batch.recordCount) % SEQUENCE_MODULUS;
    this.assignedUnsettled += 1;
  }

  /** A batch with a sequence settled; true when it had one. Pumps when a pending epoch bump may now go. */
  private unassign(batch: ProducerBatch): boolean {
    if (batch.assignedGeneration < 0) return false;
    batch.assignedGeneration = -1;
    this.assignedUnsettled -= 1;
    if (this.identityStale && this.assignedUnsettled === 0) this.schedulePump();
    return true;
  }

  /**
   * Asks the broker for an identity: a new one, or (after a batch failed for good) the next
   * epoch of ours, once no batch sent with the current epoch is still unsettled — a retry of
   * one of those must still be recognised under the epoch it was stored with.
   */
  private requestIdentity(): void {
    if (this.identityRequested || this.closed) return;
    if (this.identityStale && this.assignedUnsettled > 0) return;
    this.identityRequested = true;
    const held = this.identityStale && this.identity !== null ? { ...this.identity } : {};
    this.connection
      .request("initProducer", held)
      .then((response) => this.adoptIdentity(response))
      .catch((error: unknown) => this.onIdentityError(toRunnelError(error)));
  }

  private adoptIdentity(response: WireMap): void {
    const identity = {
      producerId: readInt(response.producerId, "initProducer", "producerId"),
      producerEpoch: readInt(response.producerEpoch, "initProducer", "producerEpoch"),
    };
    this.identityRequested = false;
    this.identityError = null;
    this.identityAttempts = 0;
    this.identity = identity;
    this.identityStale = false;
    this.generation += 1;
    this.schedulePump();
  }

  private onIdentityError(error: RunnelError): void {
    this.identityRequested = false;
    this.identityError = error;
    if (error.code === "UNKNOWN_OPERATION") {
      // An older broker: no idempotence to be had; send without producer fields.
      this.idempotent = false;
      this.schedulePump();
      return;
    }
    // Nothing can be sent without an identity; keep asking with backoff (the batches wait).
    const backoffMs = Math.min(this.retryBackoffMaxMs, this.retryBackoffMs * 2 ** this.identityAttempts);
    this.identityAttempts += 1;
    setTimeout(() => {
      this.requestIdentity();
      this.schedulePump();
    }, backoffMs);
  }

  // ------------------------------------------------------------ delivery timeout

  /**
   * The sweep: fails every record past its delivery timeout that is not in flight — batches
   * waiting to be sent or retried (oldest first, so a partition's prefix) and sends waiting for
   * buffer room. A partition with requests in flight is left alone: their answers (or their
   * request timeout) come first, and resolveFailures applies the same deadline.
   */
  private readonly expireWaiting = (): void => {
    // Quiet (nothing buffered): the idle buffers kept while busy go back to the resting count.
    if (this.bufferedBytes === 0) this.pool.trim();
    const nowMs = Date.now();
    const createdBeforeMs = nowMs - this.deliveryTimeoutMs;
    for (const topic of this.topics.values()) {
      for (const state of topic.partitions) if (state !== undefined) this.expirePartition(state, createdBeforeMs, nowMs);
    }
    this.expireIntake(createdBeforeMs);
  };

  private expirePartition(state: PartitionState, createdBeforeMs: number, nowMs: number): void {
    if (state.inFlight.length > 0 || state.failed.length > 0) return;
    if (state.open !== null && state.open.createdMs < createdBeforeMs) this.seal(state);
    while (state.ready.length > 0 && state.ready[0]!.createdMs < createdBeforeMs) {
      const batch = state.ready.shift()!;
      if (this.unassign(batch)) this.identityStale = true;
      this.settle(batch, -1, this.expiredError(`${state.topic.name}/${state.partition}`, batch.recordCount, nowMs - batch.createdMs, batch.written, batch.lastError ?? this.identityError));
    }
  }

  /** Sends still waiting for buffer room are in send order: the expired ones are a prefix. */
  private expireIntake(createdBeforeMs: number): void {
    const intake = this.intake;
    let error: RunnelError | null = null;
    while (this.intakeHead < intake.length && intake[this.intakeHead]!.enqueuedMs < createdBeforeMs) {
      const entry = intake[this.intakeHead]!;
      intake[this.intakeHead++] = undefined as unknown as IntakeEntry;
      error ??= this.expiredError(entry.topic, 1, Date.now() - entry.enqueuedMs, false, this.identityError);
      fail(entry.resolve, entry.reject, error, this.onCallbackError);
    }
    if (error !== null) {
      this.pumpIntake();
      this.wakeProgress();
    }
  }

  private expiredError(where: string, records: number, waitedMs: number, written: boolean, cause: RunnelError | null): RunnelError {
    const fate = written ? "sent but not acknowledged" : "never sent";
    const why = cause === null ? "" : `; the last failure: ${cause.message}`;
    return new RunnelError(cause?.code ?? "TIMEOUT", `${where}: ${records} record${records === 1 ? "" : "s"} ${fate} within the delivery timeout (${this.deliveryTimeoutMs} ms; waited ${waitedMs} ms)${why}`, {
      ...(cause === null ? {} : { cause }),
      details: { sent: written },
    });
  }

  // ------------------------------------------------------------ waiting sends, metadata

  private pumpIntake(): void {
    const intake = this.intake;
    while (this.intakeHead < intake.length) {
      const entry = intake[this.intakeHead]!;
      if (!this.accept(entry.topic, entry.message, entry.sequence, entry.resolve, entry.reject, entry.enqueuedMs)) break;
      intake[this.intakeHead++] = undefined as unknown as IntakeEntry;
    }
    if (this.intakeHead === intake.length) {
      intake.length = 0;
      this.intakeHead = 0;
    } else if (this.intakeHead > 4096 && this.intakeHead * 2 > intake.length) {
      intake.splice(0, this.intakeHead);
      this.intakeHead = 0;
    }
  }

  private oldestUnsettledSequence(): number {
    let oldest = this.intakeHead < this.intake.length ? this.intake[this.intakeHead]!.sequence : Number.POSITIVE_INFINITY;
    for (const topic of this.topics.values()) {
      for (const state of topic.partitions) {
        if (state === undefined) continue;
        const first = state.inFlight[0] ?? state.ready[0] ?? state.open;
        if (first && first.firstSequence < oldest) oldest = first.firstSequence;
      }
    }
    return oldest;
  }

  private nextProgress(): Promise<void> {
    return new Promise((resolve) => this.progressWaiters.push(resolve));
  }

  private wakeProgress(): void {
    if (this.progressWaiters.length === 0) return;
    const waiters = this.progressWaiters;
    this.progressWaiters = [];
    for (const wake of waiters) wake();
  }

  private wantMetadata(topic: string): void {
    if (this.metadataInFlight.has(topic)) return;
    this.metadataWanted.add(topic);
    if (this.metadataScheduled) return;
    this.metadataScheduled = true;
    queueMicrotask(() => void this.refreshMetadata());
  }

  /** One metadata request for every topic wanted this tick; answers unblock the intake. */
  private async refreshMetadata(): Promise<void> {
    const wanted = [...this.metadataWanted];
    this.metadataWanted.clear();
    for (const name of wanted) this.metadataInFlight.add(name);
    let answered: Map<string, number | RunnelError>;
    try {
      const response = await this.connection.request("metadata", { topics: wanted, autoCreate: true });
      answered = parseMetadata(response, wanted);
      this.router.learn(response);
    } catch (error) {
      const failure = toRunnelError(error);
      answered = new Map(wanted.map((name) => [name, failure]));
    } finally {
      this.metadataScheduled = false;
      for (const name of wanted) this.metadataInFlight.delete(name);
    }
    const nowMs = Date.now();
    for (const name of wanted) {
      const topic = this.topics.get(name) ?? new TopicState(name);
      this.topics.set(name, topic);
      const answer = answered.get(name)!;
      if (typeof answer === "number") {
        topic.partitionCount = answer;
        topic.error = null;
      } else if (topic.partitionCount === 0) {
        // A refresh that fails keeps the partition count it had; records failed here were never sent.
        topic.error = new RunnelError(answer.code, answer.message, { cause: answer, details: { ...answer.details, sent: false } });
      }
      topic.fetchedAtMs = nowMs;
    }
    this.pumpIntake();
    // Errors answer the sends that were waiting; a later send asks the broker again.
    for (const name of wanted) if (this.topics.get(name)?.error && this.topics.get(name)?.partitions.length === 0) this.topics.delete(name);
    this.wakeProgress();
    if (this.metadataWanted.size > 0 && !this.metadataScheduled) {
      this.metadataScheduled = true;
      queueMicrotask(() => void this.refreshMetadata());
    }
  }
}

/** Partition counts of the wanted topics, or the error explaining why a topic has none. */
function parseMetadata(response: WireMap, wanted: readonly string[]): Map<string, number | RunnelError> {
  const found = new Map<string, number | RunnelError>();
  for (const [index, item] of readArray(response.topics, "metadata", "topics").entries()) {
    const topic = readMap(item, "metadata", `topics[${index}]`);
    if (typeof topic.name !== "string") throw malformed("metadata", `topics[${index}].name is not a string`);
    if (topic.error !== undefined) {
      found.set(topic.name, brokerError(topic.error, `topic ${topic.name}`));
      continue;
    }
    const count = readArray(topic.partitions, "metadata", `topics[${index}].partitions`).length;
    found.set(topic.name, count > 0 ? count : new RunnelError("UNKNOWN_TOPIC", `topic ${topic.name} has no partitions`));
  }
  for (const name of wanted) {
    if (!found.has(name)) {
      found.set(name, new RunnelError("UNKNOWN_TOPIC", `topic '${name}' does not exist; create it first (runnel topics create ${name})`));
    }
  }
  return found;
}

function bounded(value: number, min: number, max: number, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new RunnelError("INVALID_CONFIG", `${name} must be a number in ${min}..${max}; got ${String(value)}`);
  }
  return value;
}
