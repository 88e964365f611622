/**
 * @module broker/leader-epochs
 * A partition's leader epochs, the one place that knows them (KIP-101/KIP-320). Today a single
 * node leads every partition in epoch 0 from offset 0, for its whole life: one entry. Replication
 * (issue 14) replaces `epochEntriesOf` with the partition's real history; the lookups below are
 * Kafka's rules over any history and need no change.
 */

/** An epoch and the first offset written in it (Kafka's leader-epoch checkpoint entry). */
export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** Kafka's "no epoch" / "no offset" answer (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET). */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

/** The epochs a partition has been led in, oldest first. One node: epoch 0 from offset 0. */
export function epochEntriesOf(_topic: string, _partition: number): readonly EpochEntry[] {
  return [{ epoch: 0, startOffset: 0 }];
}

/** The partition's current leader epoch (the newest entry). */
export function currentLeaderEpoch(topic: string, partition: number): number {
  const entries = epochEntriesOf(topic, partition);
  return entries[entries.length - 1]?.epoch ?? 0;
}

/**
 * Checks the epoch a client believes current (OffsetForLeaderEpoch v2+, Fetch v9+,
 * ListOffsets v4+): -1 skips the check; older than ours is "fenced" (the client's leader is
 * stale); newer than ours is "unknown" (this broker has not heard of it yet).
 */
export function checkCurrentLeaderEpoch(topic: string, partition: number, clientEpoch: number): "ok" | "fenced" | "unknown" {
  if (clientEpoch === UNDEFINED_EPOCH) return "ok";
  const current = currentLeaderEpoch(topic, partition);
  if (clientEpoch < current) return "fenced";
  return clientEpoch > current ? "unknown" : "ok";
}

/**
 * Kafka's LeaderEpochFileCache.endOffsetFor: the end offset of `requestedEpoch` — the start offset
 * of the first epoch after it, or the log end offset when it is the current epoch — and the
 * largest epoch at or below it. A requested epoch above every known one (or -1) is
 * (-1, -1): the client's history is not ours, and it must treat its data as truncated. A requested
 * epoch below the oldest known one answers itself with the oldest epoch's start offset.
 */
export function endOffsetForLeaderEpoch(topic: string, partition: number, requestedEpoch: number, logEndOffset: number): EpochEntry {
  return endOffsetInHistory(epochEntriesOf(topic, partition), requestedEpoch, logEndOffset);
}

/** endOffsetForLeaderEpoch over a given history (oldest first): the rule itself, tested alone. */
export function endOffsetInHistory(entries: readonly EpochEntry[], requestedEpoch: number, logEndOffset: number): EpochEntry {
  const latest = entries[entries.length - 1];
  if (requestedEpoch === UNDEFINED_EPOCH || latest === undefined) return { epoch: UNDEFINED_EPOCH, startOffset: UNDEFINED_EPOCH_OFFSET };
  if (requestedEpoch === latest.epoch) return { epoch: requestedEpoch, startOffset: logEndOffset };
  const higherIndex = entries.findIndex((entry) => entry.epoch > requestedEpoch);
  if (higherIndex === -1) return { epoch: UNDEFINED_EPOCH, startOffset: UNDEFINED_EPOCH_OFFSET };
  const higher = entries[higherIndex] as EpochEntry;
  const floor = higherIndex === 0 ? undefined : entries[higherIndex - 1];
  return { epoch: floor === undefined ? requestedEpoch : floor.epoch, startOffset: higher.startOffset };
}
