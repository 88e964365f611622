/**
 * @module client/producer-batches
 * The producer's bookkeeping, apart from its logic (client/producer.ts): a batch on its way
 * (ProducerBatch), a partition's queues (PartitionState), a topic's partitions (TopicState),
 * how a record's outcome is reported (promise or callback), and the check a message passes
 * at the door.
 */
import { BatchBuilder, type BufferPool } from "../format/batch-builder.ts";
import type { RunnelError } from "../errors.ts";
import { PRODUCE_HEADROOM_BYTES, encodeTopicName } from "./produce-frame.ts";
import type { ProducerMessage, SendCallback, SendResult } from "./producer.ts";
import { isMap } from "./wire.ts";

/**
 * How one record's outcome is reported. A `send()` stores its promise's resolve and reject; a
 * `sendWithCallback()` stores its callback in the resolve slot and null in the reject slot (so
 * no closure is made per record).
 */
export type Resolve = (result: SendResult) => void;
export type Reject = (error: RunnelError) => void;
export type Done = Resolve | SendCallback;

export class ProducerBatch {
  builder: BatchBuilder | null;
  bytes: Uint8Array | null = null;
  /** The buffer `bytes` lives in, given back to the pool when the batch settles. */
  storage: Uint8Array | null = null;
  /**
   * Per record: its Done, and its Reject (null: Done is a SendCallback). Taken from the
   * producer's RecordLists when the batch opens and given back, emptied, once it settles (so a
   * batch settled twice by mistake calls nobody the second time).
   */
  resolvers: Done[];
  rejecters: Array<Reject | null>;
  bufferBytes = 0;
  /** When its first record was handed to send(): the delivery timeout counts from here. */
  createdMs = 0;
  attempts = 0;
  /** Whether a request carrying it was ever handed to a connection (else its records certainly were not stored). */
  written = false;
  /** Bun.nanoseconds() when a request carrying it was last handed to the connection (0: never). */
  writtenNs = 0;
  /** The last error a request carrying it failed with (reported when it expires). */
  lastError: RunnelError | null = null;
  recordCount = 0;
  /** Idempotence: the identity generation and base sequence stamped in `bytes` (-1: none). */
  stampGeneration = -1;
  baseSequence = -1;
  /** The generation whose sequence this batch was sent with; -1 until first sent. */
  assignedGeneration = -1;
  lingerTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Its linger is over but its partition had no room in flight: sealed once there is. */
  lingerOver = false;

  constructor(
    readonly state: PartitionState,
    readonly firstSequence: number,
    initialBytes: number,
    pool: BufferPool,
    lists: RecordLists,
  ) {
    this.builder = new BatchBuilder(initialBytes, pool, PRODUCE_HEADROOM_BYTES);
    this.resolvers = lists.takeResolvers();
    this.rejecters = lists.takeRejecters();
  }
}

const NO_RESOLVERS: Done[] = [];
const NO_REJECTERS: Array<Reject | null> = [];
/** Idle lists kept at most (per kind): a few batches' worth settle between two opens. */
const RECORD_LISTS_IDLE_MAX = 64;

/**
 * Settled batches' record lists, emptied and handed to the next batches: a busy producer opens
 * a batch per request, and two fresh lists (and their storage) per batch were a tenth of what
 * it allocated per request (bench/alloc.bench.ts).
 */
export class RecordLists {
  private readonly idleResolvers: Done[][] = [];
  private readonly idleRejecters: Array<Array<Reject | null>> = [];

  takeResolvers(): Done[] {
    return this.idleResolvers.pop() ?? [];
  }

  takeRejecters(): Array<Reject | null> {
    return this.idleRejecters.pop() ?? [];
  }

  /** Takes a settled batch's lists back (after its records were told), leaving it empty ones. */
  giveBack(batch: ProducerBatch): void {
    const { resolvers, rejecters } = batch;
    if (resolvers === NO_RESOLVERS) return;
    batch.resolvers = NO_RESOLVERS;
    batch.rejecters = NO_REJECTERS;
    resolvers.length = 0;
    rejecters.length = 0;
    if (this.idleResolvers.length < RECORD_LISTS_IDLE_MAX) this.idleResolvers.push(resolvers);
    if (this.idleRejecters.length < RECORD_LISTS_IDLE_MAX) this.idleRejecters.push(rejecters);
  }
}

export class PartitionState {
  open: ProducerBatch | null = null;
  /** Sealed batches not in flight, oldest first (failed ones come back to the front). */
  ready: ProducerBatch[] = [];
  /** Batches sent and not yet answered, in send order. */
  readonly inFlight: ProducerBatch[] = [];
  /** Batches answered with an error while others were still in flight; resolved once all are back. */
  failed: Array<{ batch: ProducerBatch; error: RunnelError }> = [];
  retryAtMs = 0;
  /** Idempotence: sequences restart at 0 whenever the producer's identity changes. */
  generation = 0;
  /** Sequence the next batch sent gets. */
  nextSequence = 0;
  /** Sequence predicted for the next batch sealed (so it is stamped once, at seal). */
  sealSequence = 0;

  constructor(
    readonly topic: TopicState,
    readonly partition: number,
  ) {}
}

export class TopicState {
  partitionCount = 0;
  fetchedAtMs = 0;
  error: RunnelError | null = null;
  readonly partitions: PartitionState[] = [];

  /** The name as a msgpack str, for produce-frame. */
  readonly encodedName: Uint8Array;

  constructor(readonly name: string) {
    this.encodedName = encodeTopicName(name);
  }

  partitionState(partition: number): PartitionState {
    return (this.partitions[partition] ??= new PartitionState(this, partition));
  }
}

export interface IntakeEntry {
  topic: string;
  message: ProducerMessage;
  sequence: number;
  resolve: Done;
  reject: Reject | null;
  /** Date.now() at send(): a record waiting here counts towards its delivery timeout. */
  enqueuedMs: number;
}

/** Reports a record's failure through its promise or its callback. */
export function fail(done: Done, reject: Reject | null, error: RunnelError, onThrow: (thrown: unknown) => void): void {
  if (reject !== null) reject(error);
  else callBack(done as SendCallback, error, null, onThrow);
}

/**
 * A record stored at `offset`: a promise gets its own result object; a callback gets `scratch`,
 * refilled (sendWithCallback's contract: no object per record).
 */
export function succeed(done: Done, reject: Reject | null, partition: number, offset: number, scratch: SendResult, onThrow: (thrown: unknown) => void): void {
  if (reject !== null) {
    (done as Resolve)({ partition, offset });
    return;
  }
  scratch.partition = partition;
  scratch.offset = offset;
  callBack(done as SendCallback, null, scratch, onThrow);
}

/** A throwing callback must not leave the producer half way through settling a batch. */
function callBack(callback: SendCallback, error: RunnelError | null, result: SendResult | null, onThrow: (thrown: unknown) => void): void {
  try {
    callback(error, result);
  } catch (thrown) {
    onThrow(thrown);
  }
}

export function rethrowLater(thrown: unknown): void {
  queueMicrotask(() => {
    throw thrown;
  });
}

export interface Invalid {
  code: "INVALID_REQUEST" | "UNKNOWN_PARTITION";
  message: string;
}

function isBytes(value: unknown): boolean {
  return typeof value === "string" || value instanceof Uint8Array;
}

/** Checks a message's shape once, at the door, so nothing malformed reaches the encoder. */
export function checkMessage(message: ProducerMessage, partitionCount: number): Invalid | null {
  if (!isMap(message)) return { code: "INVALID_REQUEST", message: "a message must be an object { value, key?, headers?, timestamp?, partition? }" };
  if (message.value !== null && !isBytes(message.value)) return { code: "INVALID_REQUEST", message: "value must be a string, a Uint8Array or null" };
  if (message.key !== undefined && message.key !== null && !isBytes(message.key)) return { code: "INVALID_REQUEST", message: "key must be a string, a Uint8Array or null" };
  const timestamp = message.timestamp;
  if (timestamp !== undefined && (!Number.isSafeInteger(timestamp) || timestamp < 0)) return { code: "INVALID_REQUEST", message: `timestamp ${String(timestamp)} is not a non-negative integer of ms` };
  const partition = message.partition;
  if (partition !== undefined && (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount)) {
    return { code: "UNKNOWN_PARTITION", message: `partition ${String(partition)} does not exist (the topic has ${partitionCount})` };
  }
  const headers = message.headers;
  if (headers !== undefined && headers !== null) {
    if (!isMap(headers)) return { code: "INVALID_REQUEST", message: "headers must be an object of name -> string | Uint8Array" };
    for (const name in headers) if (!isBytes(headers[name])) return { code: "INVALID_REQUEST", message: `header '${name}' must be a string or a Uint8Array` };
  }
  return null;
}

export function removeInFlight(state: PartitionState, batch: ProducerBatch): void {
  const inFlight = state.inFlight;
  const index = inFlight[0] === batch ? 0 : inFlight.indexOf(batch);
  if (index >= 0) inFlight.splice(index, 1);
}
