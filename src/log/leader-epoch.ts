/**
 * @module log/leader-epoch
 * A partition's leader-epoch history: for each leader epoch whose batches the log holds, the
 * offset of its first batch (Kafka's leader-epoch checkpoint, KIP-101). With it a leader answers
 * "where does your epoch E end in my log?" (endOffsetFor: Kafka's OffsetForLeaderEpoch), and a
 * follower whose log diverged truncates exactly where the leader's history parts from its own,
 * never at a high watermark it merely remembers.
 *
 * File `<partition dir>/leader-epoch-checkpoint`, written atomically (temp, fsync, rename,
 * directory fsync), one line of JSON:
 *
 *   {"version":1,"epochs":[[0,0],[3,1200],[4,1530]]}     [epoch, startOffset], both ascending
 *
 * When it is written: each time the history changes (an epoch added, a truncation from the
 * end) — once per leader change, never per batch — except for the first entry being epoch 0,
 * the single-node case, which is never written: a missing file means "every batch is epoch 0"
 * because any other epoch writes the file before its first batch is appended. On open, entries
 * at or past the log end are dropped (recovery cut the tail) and the first entry is clamped to
 * the log start (retention). A file that is missing while the last batch says epoch > 0 (it was
 * lost), or unreadable, is rebuilt from the batch headers (scanEpochs), then written.
 */
import { z } from "zod";
import type { Storage } from "./storage.ts";

export const LEADER_EPOCH_FILE = "leader-epoch-checkpoint";

/** Epochs kept: one entry per leader change whose batches are still in the log. */
export const LEADER_EPOCH_ENTRIES_MAX = 100_000;

const checkpointSchema = z.strictObject({
  version: z.literal(1),
  epochs: z
    .array(z.tuple([z.int().min(0).max(0x7fff_ffff), z.int().min(0).max(Number.MAX_SAFE_INTEGER)]))
    .max(LEADER_EPOCH_ENTRIES_MAX),
});

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

/** Kafka's OffsetForLeaderEpoch answer: the largest epoch <= the asked one, and where it ends. */
export interface EpochEnd {
  /** -1 when the asked epoch is newer than any this log knows. */
  readonly epoch: number;
  /** Exclusive end: the start offset of the next epoch, or the log end for the latest; -1 with epoch -1. */
  readonly endOffset: number;
}

export const UNDEFINED_EPOCH_END: EpochEnd = { epoch: -1, endOffset: -1 };

export type EpochFileRead = { entries: EpochEntry[] } | { entries: null; problem: string | null };

export function readEpochFile(storage: Storage, directory: string): EpochFileRead {
  const bytes = storage.readFile(`${directory}/${LEADER_EPOCH_FILE}`);
  if (bytes === null) return { entries: null, problem: null };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { entries: null, problem: `${LEADER_EPOCH_FILE} is not JSON` };
  }
  const parsed = checkpointSchema.safeParse(json);
  if (!parsed.success) return { entries: null, problem: `${LEADER_EPOCH_FILE} is invalid: ${parsed.error.issues[0]?.message ?? "?"}` };
  const entries = parsed.data.epochs.map(([epoch, startOffset]) => ({ epoch, startOffset }));
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.epoch <= entries[i - 1]!.epoch || entries[i]!.startOffset < entries[i - 1]!.startOffset) {
      return { entries: null, problem: `${LEADER_EPOCH_FILE} is not ascending at entry ${i}` };
    }
  }
  return { entries };
}

export function encodeEpochFile(entries: readonly EpochEntry[]): string {
  return `${JSON.stringify({ version: 1, epochs: entries.map((entry) => [entry.epoch, entry.startOffset]) })}\n`;
}

/** The in-memory history, persisted through `storage` beside the segments. */
export class LeaderEpochCache {
  private entries: EpochEntry[];
  /** True once the file holds (or must hold) the history: set at the first write. */
  private persisted: boolean;

  constructor(
    private readonly storage: Storage,
    private readonly directory: string,
    entries: EpochEntry[],
    persisted: boolean,
  ) {
    this.entries = entries;
    this.persisted = persisted;
  }

  /** The latest epoch in the log, or -1 when the log holds no batch. */
  get latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? -1;
  }

  list(): readonly EpochEntry[] {
    return this.entries;
  }

  /**
   * Records that epoch `epoch` starts at `startOffset` (a batch of that epoch is about to be
   * appended there). Nothing happens for an epoch already latest; an older one than the latest
   * is a programmer error (the partition refuses such batches before).
   */
  assign(epoch: number, startOffset: number): void {
    const latest = this.entries.at(-1);
    if (latest !== undefined && epoch <= latest.epoch) {
      if (epoch === latest.epoch) return;
      throw new Error(`leader epoch ${epoch} is older than the latest ${latest.epoch} (at offset ${startOffset})`);
    }
    this.entries.push({ epoch, startOffset });
    if (this.entries.length > LEADER_EPOCH_ENTRIES_MAX) this.entries.shift();
    if (this.persisted || epoch !== 0 || this.entries.length > 1) this.write();
  }

  /** The log was cut at `offset`: epochs starting at or after it are gone. */
  truncateFromEnd(offset: number): void {
    const before = this.entries.length;
    while (this.entries.length > 0 && this.entries.at(-1)!.startOffset >= offset) this.entries.pop();
    if (this.entries.length !== before && this.persisted) this.write();
  }

  /** The log was emptied (Partition.restartAt): no history, and no file until the next epoch. */
  reset(): void {
    this.entries = [];
    this.persisted = false;
    this.storage.unlink(`${this.directory}/${LEADER_EPOCH_FILE}`);
  }

  /**
   * Kafka's OffsetForLeaderEpoch (LeaderEpochFileCache.endOffsetFor): for the latest epoch, the
   * log end; for an older one, the start of the first epoch after it, paired with the largest
   * epoch <= the asked one; for an epoch newer than any known, UNDEFINED_EPOCH_END.
   */
  endOffsetFor(epoch: number, logEndOffset: number): EpochEnd {
    if (epoch < 0 || this.entries.length === 0) return UNDEFINED_EPOCH_END;
    const latest = this.entries.at(-1)!;
    if (epoch >= latest.epoch) return epoch === latest.epoch ? { epoch, endOffset: logEndOffset } : UNDEFINED_EPOCH_END;
    let floor: EpochEntry | undefined;
    for (const entry of this.entries) {
      if (entry.epoch > epoch) return { epoch: floor?.epoch ?? epoch, endOffset: entry.startOffset };
      floor = entry;
    }
    return UNDEFINED_EPOCH_END;
  }

  private write(): void {
    this.storage.writeFileAtomic(`${this.directory}/${LEADER_EPOCH_FILE}`, encodeEpochFile(this.entries));
    this.persisted = true;
  }

  /** Writes the history now (after a rebuild from batches). */
  persist(): void {
    this.write();
  }
}

/**
 * Fits a loaded history to the log recovered on open: drops entries at or past the log end,
 * clamps the first to the log start (retention removed what came before).
 */
export function fitEpochsToLog(entries: EpochEntry[], logStartOffset: number, logEndOffset: number): EpochEntry[] {
  const fitted = entries.filter((entry) => entry.startOffset < logEndOffset);
  let firstKept = 0;
  while (firstKept + 1 < fitted.length && fitted[firstKept + 1]!.startOffset <= logStartOffset) firstKept++;
  const kept = fitted.slice(firstKept);
  if (kept.length > 0 && kept[0]!.startOffset < logStartOffset) kept[0] = { epoch: kept[0]!.epoch, startOffset: logStartOffset };
  return kept;
}

/** Adds one batch's epoch to a history being rebuilt from the log (batches in offset order). */
export function noteBatchEpoch(entries: EpochEntry[], epoch: number, baseOffset: number): void {
  if (epoch < 0) return; // Stored before epochs were stamped by a client that sent -1: no leader to name.
  const latest = entries.at(-1);
  if (latest === undefined || epoch > latest.epoch) entries.push({ epoch, startOffset: baseOffset });
}
