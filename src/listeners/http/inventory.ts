/**
 * @module listeners/http/inventory
 * Reads of the broker's state shared by `/metrics` and the console API: topics with their
 * partitions, groups with lag, disk figures. Everything here runs at scrape or poll time, never
 * on the data path. A topic deleted between the listing and the read is skipped, not an error.
 */
import * as fs from "node:fs";
import type { GroupDirectory, GroupSummary } from "../../broker/groups.ts";
import type { PartitionInfo, TopicDescription } from "../../log/api.ts";
import type { BrokerContext } from "../../server/context.ts";

/** The topic's description, or null when it vanished meanwhile. */
export function describeQuietly(context: BrokerContext, topic: string): TopicDescription | null {
  try {
    return context.log.describeTopic(topic);
  } catch {
    return null;
  }
}

export interface PartitionLag {
  topic: string;
  partition: number;
  committedOffset: number;
  /** -1 when the partition no longer exists. */
  logEndOffset: number;
  /** Messages between the committed offset and the log end; 0 when the partition is gone. */
  lag: number;
}

export interface GroupLag extends GroupSummary {
  partitions: PartitionLag[];
  lagTotal: number;
}

/** The log end offset of a partition, or -1 when it is gone. */
function logEndOffset(context: BrokerContext, topic: string, partition: number): number {
  try {
    return context.log.partition(topic, partition).nextOffset;
  } catch {
    return -1;
  }
}

/** A group's committed offsets with the lag of each partition. */
export function groupLag(context: BrokerContext, groups: GroupDirectory, name: string): GroupLag | null {
  const summary = groups.describe(name);
  if (summary === null) return null;
  let lagTotal = 0;
  const partitions = summary.offsets.map((entry) => {
    const end = logEndOffset(context, entry.topic, entry.partition);
    const lag = end < 0 ? 0 : Math.max(0, end - entry.offset);
    lagTotal += lag;
    return { topic: entry.topic, partition: entry.partition, committedOffset: entry.offset, logEndOffset: end, lag };
  });
  return { ...summary, partitions, lagTotal };
}

export interface DiskFigures {
  totalBytes: number;
  freeBytes: number;
}

/** The file system holding the data dir; null where statfs fails. */
export function diskOf(dataDir: string): DiskFigures | null {
  try {
    const stats = fs.statfsSync(dataDir);
    return { totalBytes: stats.blocks * stats.bsize, freeBytes: stats.bavail * stats.bsize };
  } catch {
    return null;
  }
}

/** Sums over a topic's partitions. */
export function topicTotals(partitions: readonly PartitionInfo[]): { sizeBytes: number; messages: number; segments: number } {
  let sizeBytes = 0;
  let messages = 0;
  let segments = 0;
  for (const partition of partitions) {
    sizeBytes += partition.sizeBytes;
    messages += partition.nextOffset - partition.logStartOffset;
    segments += partition.segmentCount;
  }
  return { sizeBytes, messages, segments };
}
