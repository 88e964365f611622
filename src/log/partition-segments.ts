/**
 * @module log/partition-segments
 * A partition's segments as one ordered list: oldest first, never empty once opened, the last
 * one active (open for appends). Pure helpers over that list, shared by the partition, its
 * recovery on open (partition-recovery.ts) and its durability work (partition-durability.ts).
 */
import type { LogSink } from "./api.ts";
import { toRunnelError } from "../errors.ts";
import type { Segment } from "./segment.ts";

/** The segment appends go to: the newest. */
export function activeSegment(segments: readonly Segment[]): Segment {
  return segments[segments.length - 1]!;
}

/** The segment holding `offset` (logStartOffset <= offset < nextOffset), by binary search of the bases. */
export function segmentFor(segments: readonly Segment[], offset: number): Segment {
  let low = 0;
  let high = segments.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (segments[middle]!.baseOffset <= offset) low = middle;
    else high = middle - 1;
  }
  // An empty segment shares its base with the next offset; step past it.
  while (offset >= segments[low]!.nextOffset && low < segments.length - 1) low++;
  return segments[low]!;
}

/** Closes every segment; a failure is logged and the others are still closed. */
export function closeSegments(segments: readonly Segment[], where: { topic: string; index: number; logger: LogSink }): void {
  for (const segment of segments) {
    try {
      segment.close();
    } catch (error) {
      where.logger.error({ topic: where.topic, partition: where.index, segment: segment.baseOffset, error: toRunnelError(error).message }, "segment close failed");
    }
  }
}
