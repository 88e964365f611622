/**
 * @module log/preallocation
 * Reserves disk blocks ahead of the active segment's end with fallocate(FALLOC_FL_KEEP_SIZE),
 * so that the append's pwrite lands on blocks that are already allocated. On ext4 that moves
 * the delayed-allocation work (block reservation, quota, extent-status inserts) out of every
 * pwrite into one call per step: 1 GiB in 64 KiB pwrites cost 0.23-0.64 s of system time plain
 * and 0.16-0.17 s with preallocation on the development machine (docs/storage.md).
 *
 * KEEP_SIZE leaves the file size alone, so reads, recovery and every size the log reports never
 * see the reservation. It is given back with `ftruncate(fd, size)` when the segment rolls or
 * closes, and on open when a crash left some behind.
 *
 * Sizing, so that thousands of quiet partitions reserve nothing: no reservation until the
 * segment holds PREALLOCATE_STEP_MIN_BYTES; from then on each step reserves as much as the
 * segment already holds, clamped to [PREALLOCATE_STEP_MIN_BYTES, bytesMax] and never past
 * segment.bytes. A partition therefore reserves at most min(active segment size, bytesMax)
 * beyond its data.
 *
 * Preallocation is only a speed-up, so it never fails an append: a file system without
 * fallocate turns it off for the log manager (logged once); a full disk or any other error
 * skips it for the rest of that segment and lets the pwrite decide.
 */
import { KiB, MiB } from "../limits.ts";
import { SyscallError } from "../native/libc.ts";
import { toRunnelError } from "../errors.ts";
import type { LogSink } from "./api.ts";
import type { Storage } from "./storage.ts";

/** The reservation step's upper bound when the caller sets none. */
export const PREALLOCATE_BYTES_MAX_DEFAULT = 16 * MiB;
/** A segment holding less than this reserves nothing; steps are at least this big. */
export const PREALLOCATE_STEP_MIN_BYTES = 1 * MiB;
/** Upper bound of the option: bigger steps buy nothing once fallocate calls are rare. */
export const PREALLOCATE_BYTES_LIMIT = 1024 * MiB;
/**
 * On open, a file occupying more than its size rounded up to a block plus this much still holds
 * a crashed broker's reservation. The slack covers extent-tree blocks, which st_blocks counts.
 */
const LEFTOVER_SLACK_BYTES = 64 * KiB;
const BLOCK_BYTES = 4 * KiB;

/** errnos that say the file system (not this file, not this moment) cannot preallocate. */
const UNSUPPORTED_ERRNOS = new Set(["EOPNOTSUPP", "ENOSYS", "EINVAL"]);

/**
 * Where the reservation should end before writing [position, writeEnd) into a segment whose
 * reservation ends at `reservedEnd`; `reservedEnd` itself when nothing should be reserved.
 */
export function reservationEnd(position: number, writeEnd: number, reservedEnd: number, segmentBytesLimit: number, bytesMax: number): number {
  const stepMin = Math.min(PREALLOCATE_STEP_MIN_BYTES, bytesMax);
  if (bytesMax <= 0 || writeEnd <= reservedEnd || position < stepMin) return reservedEnd;
  const step = Math.min(Math.max(position, stepMin), bytesMax);
  const from = Math.max(reservedEnd, position);
  const end = Math.min(Math.max(from + step, writeEnd), Math.max(segmentBytesLimit, writeEnd));
  return Math.max(end, reservedEnd);
}

/** One per log manager: the policy, and whether its file system supports fallocate at all. */
export class Preallocator {
  private supported = true;

  constructor(
    private readonly storage: Storage,
    private readonly logger: LogSink,
    readonly bytesMax: number,
  ) {
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 0 || bytesMax > PREALLOCATE_BYTES_LIMIT) {
      throw new RangeError(`preallocateBytesMax must be an integer from 0 to ${PREALLOCATE_BYTES_LIMIT}, got ${bytesMax}`);
    }
  }

  /** Whether appends should try to reserve at all. */
  get enabled(): boolean {
    return this.supported && this.bytesMax > 0;
  }

  /** See reservationEnd(). */
  endFor(position: number, writeEnd: number, reservedEnd: number, segmentBytesLimit: number): number {
    return this.enabled ? reservationEnd(position, writeEnd, reservedEnd, segmentBytesLimit, this.bytesMax) : reservedEnd;
  }

  /**
   * Reserves [from, to) of `fd`. False when the segment should stop trying: the disk is full
   * (the pwrite will say so), preallocation is unsupported, or it failed in another way (warned).
   */
  reserve(fd: number, from: number, to: number, path: string): boolean {
    try {
      if (this.storage.preallocate(fd, from, to - from)) return true;
      this.turnOff(path, "the platform has no fallocate");
      return false;
    } catch (error) {
      if (error instanceof SyscallError && UNSUPPORTED_ERRNOS.has(error.errnoName)) {
        this.turnOff(path, `fallocate failed with ${error.errnoName}`);
      } else if (toRunnelError(error).code !== "STORAGE_FULL") {
        this.logger.warn({ file: path, error: toRunnelError(error).message }, "segment preallocation failed; appends to this segment go on without it");
      }
      return false;
    }
  }

  /**
   * Gives back the blocks reserved past `sizeBytes` (the file's size). Never throws: a failure
   * only leaves them reserved until the segment is reopened or deleted (warned).
   */
  release(fd: number, sizeBytes: number, path: string): void {
    try {
      this.storage.ftruncate(fd, sizeBytes);
    } catch (error) {
      this.logger.warn({ file: path, error: toRunnelError(error).message }, "could not release a segment's preallocated blocks; they stay reserved until it is reopened or deleted");
    }
  }

  /** On open: releases what a crashed broker reserved past `sizeBytes`; true when there was some. */
  releaseLeftover(fd: number, sizeBytes: number, path: string): boolean {
    let allocatedBytes: number;
    try {
      allocatedBytes = this.storage.allocatedBytesOf(fd);
    } catch (error) {
      this.logger.warn({ file: path, error: toRunnelError(error).message }, "could not check a segment for leftover preallocated blocks");
      return false;
    }
    if (allocatedBytes <= Math.ceil(sizeBytes / BLOCK_BYTES) * BLOCK_BYTES + LEFTOVER_SLACK_BYTES) return false;
    this.release(fd, sizeBytes, path);
    return true;
  }

  private turnOff(path: string, why: string): void {
    if (!this.supported) return;
    this.supported = false;
    this.logger.info({ file: path, reason: why }, "segment preallocation is off: the data directory's file system does not support it");
  }
}
