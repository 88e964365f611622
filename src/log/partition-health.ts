/**
 * @module log/partition-health
 * Whether a partition may still be used, and the failure policy that decides it. One object
 * per partition, shared by the partition (append, reads, close) and its durability work
 * (partition-durability.ts), so both see the same state and classify errors the same way.
 *
 * Failure policy: ENOSPC/EDQUOT (STORAGE_FULL) leaves the partition usable (the caller cuts the
 * partial write off); any other I/O error marks it failed (PARTITION_FAILED from then on),
 * because after a failed write or fsync the state of the file is no longer known. Callers pass
 * `fullIsFatal` where STORAGE_FULL does not mean a write cleanly cut off: a failed fdatasync
 * (the kernel may have dropped the pages whatever the errno) or a failed read.
 * EMFILE/ENFILE (out of descriptors) never fails a partition: only an open can meet it, and a
 * failed open leaves the file as it was; the call fails (STORAGE_ERROR) and the next one may
 * find a descriptor free.
 */
import type { LogSink } from "./api.ts";
import { RunnelError, toRunnelError } from "../errors.ts";

export class PartitionHealth {
  private isClosed = false;
  private failureSeen: RunnelError | null = null;

  constructor(
    private readonly topic: string,
    private readonly index: number,
    private readonly logger: LogSink,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  /** The error that failed the partition, or null while it is healthy. */
  get failure(): RunnelError | null {
    return this.failureSeen;
  }

  /** Closed or failed: background work stops and nothing new is written. */
  get stopped(): boolean {
    return this.isClosed || this.failureSeen !== null;
  }

  /** From now on every use is refused with SHUTTING_DOWN. */
  markClosed(): void {
    this.isClosed = true;
  }

  /** Throws SHUTTING_DOWN after close, PARTITION_FAILED after a fatal I/O error. */
  checkUsable(): void {
    if (this.isClosed) throw new RunnelError("SHUTTING_DOWN", `partition ${this.topic}-${this.index} is closed`);
    if (this.failureSeen !== null) {
      throw new RunnelError("PARTITION_FAILED", `partition ${this.topic}-${this.index} failed earlier (${this.failureSeen.message}) and is read-only until a restart`, {
        cause: this.failureSeen,
      });
    }
  }

  /** Classifies a storage error: STORAGE_FULL leaves the partition usable, anything else fails it. */
  storageFailure(error: unknown, what: string, fullIsFatal = false): RunnelError {
    const failure = toRunnelError(error);
    if (isOutOfDescriptors(failure)) {
      this.logger.warn({ topic: this.topic, partition: this.index, error: failure.message }, `${what}: out of file descriptors`);
      return failure;
    }
    if (failure.code === "STORAGE_FULL" && !fullIsFatal) {
      this.logger.warn({ topic: this.topic, partition: this.index, error: failure.message }, `${what}: disk full`);
      return failure;
    }
    if (this.failureSeen === null && !this.isClosed) {
      this.failureSeen = failure;
      this.logger.error({ topic: this.topic, partition: this.index, error: failure.message }, `${what} failed; partition marked failed`);
    }
    return failure;
  }
}

function isOutOfDescriptors(error: RunnelError): boolean {
  const errno = (error as { errnoName?: unknown }).errnoName;
  return errno === "EMFILE" || errno === "ENFILE";
}
