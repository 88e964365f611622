/**
 * @module cluster/high-watermark-checkpoint
 * The high watermarks of a cluster broker's partitions, kept across a restart in one file per
 * data directory (Kafka's `replication-offset-checkpoint`):
 *
 *     {"version":1,"highWatermarks":[["orders",0,1200],["orders",1,980]]}
 *
 * Written atomically (Storage.writeFileAtomic: temp file, fsync, rename, directory fsync) every
 * `highWatermarkCheckpointIntervalMs` when a value changed, and at a clean stop. Read once at
 * start: a partition's first high watermark is the checkpointed one capped at its log end, so
 * consumers of a restarted follower, or of a new leader, read at once what was committed before
 * instead of waiting for every ISR member to fetch again.
 *
 * Non-obvious: the file only says what consumers may read. It never decides what a log keeps —
 * a follower truncates by leader epoch alone (KIP-101: truncating to a stale high watermark lost
 * committed records in Kafka). A checkpointed value is at most the high watermark when written,
 * which every later leader's log holds; so capping it at the log end is all the check it needs.
 */
import { z } from "zod";
import type { Storage } from "../log/storage.ts";

export const HIGH_WATERMARK_FILE = "replication-offset-checkpoint";
/** Largest checkpoint read back (about 40 bytes an entry: a million partitions fit). */
export const HIGH_WATERMARK_FILE_BYTES_MAX = 64 * 1024 * 1024;

const fileSchema = z.object({
  version: z.literal(1),
  highWatermarks: z.array(z.tuple([z.string().min(1).max(4096), z.int().min(0), z.int().min(0).max(Number.MAX_SAFE_INTEGER)])),
});

export interface CheckpointEntry {
  topic: string;
  partition: number;
  highWatermark: number;
}

export type CheckpointRead = { entries: CheckpointEntry[]; problem: null } | { entries: []; problem: string };

/** The checkpoint of `dataDir`; a missing file is no entries, an unusable one no entries and the reason. */
export function readHighWatermarks(storage: Storage, dataDir: string): CheckpointRead {
  const path = `${dataDir}/${HIGH_WATERMARK_FILE}`;
  const sizeBytes = storage.fileSize(path);
  if (sizeBytes === null) return { entries: [], problem: null };
  if (sizeBytes > HIGH_WATERMARK_FILE_BYTES_MAX) return { entries: [], problem: `${HIGH_WATERMARK_FILE} is ${sizeBytes} bytes, over ${HIGH_WATERMARK_FILE_BYTES_MAX}` };
  const bytes = storage.readFile(path);
  if (bytes === null) return { entries: [], problem: null };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { entries: [], problem: `${HIGH_WATERMARK_FILE} is not JSON` };
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) return { entries: [], problem: `${HIGH_WATERMARK_FILE} is invalid: ${parsed.error.issues[0]?.message ?? "?"}` };
  return { entries: parsed.data.highWatermarks.map(([topic, partition, highWatermark]) => ({ topic, partition, highWatermark })), problem: null };
}

/** The file's text for `entries` (sorted, so an unchanged set gives the same text). */
export function encodeHighWatermarks(entries: readonly CheckpointEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  return `${JSON.stringify({ version: 1, highWatermarks: sorted.map((entry) => [entry.topic, entry.partition, entry.highWatermark]) })}\n`;
}

export function writeHighWatermarks(storage: Storage, dataDir: string, text: string): void {
  storage.writeFileAtomic(`${dataDir}/${HIGH_WATERMARK_FILE}`, text);
}
