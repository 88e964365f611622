/**
 * @module broker/leader-epochs
 * A partition's leader epochs, the one place that knows them (KIP-101/KIP-320). A single node
 * leads every partition in epoch 0 from offset 0, for its whole life: one entry. In cluster mode
 * each lookup is given the partition's `ReplicatedEpochs` (`replicatedEpochsOf`): its real
 * history (the log's leader-epoch checkpoint, log/leader-epoch.ts) and the current epoch the
 * controller set (the view's partition state). The lookups below are Kafka's rules over either.
 */

/** An epoch and the first offset written in it (Kafka's leader-epoch checkpoint entry). */
export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** Kafka's "no epoch" / "no offset" answer (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET). */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

/** A replicated partition's epochs: its history (oldest first) and the epoch it is led in now. */
export interface ReplicatedEpochs {
  readonly history: readonly EpochEntry[];
  readonly current: number;
}

/** What `replicatedEpochsOf` reads of a log partition (log/partition.ts). */
export interface EpochLog {
  readonly leaderEpoch: number;
  epochHistory(): readonly EpochEntry[];
}

/** What `replicatedEpochsOf` reads of the cluster (cluster/cluster-view.ts ClusterView). */
export interface EpochView {
  partitionState(topic: string, partition: number): { readonly leaderEpoch: number } | undefined;
}

/**
 * The epochs of a partition in cluster mode, undefined on a single node (`cluster` null). The
 * current epoch is the controller's (the view's state), which a client's metadata also carries;
 * before the view names the partition, the epoch the log stamps.
 */
export function replicatedEpochsOf(cluster: EpochView | null, topic: string, partition: number, log: EpochLog): ReplicatedEpochs | undefined {
  if (cluster === null) return undefined;
  const history = log.epochHistory();
  const current = cluster.partitionState(topic, partition)?.leaderEpoch ?? log.leaderEpoch;
  return { history, current: Math.max(current, history[history.length - 1]?.epoch ?? 0) };
}

const SINGLE_NODE_HISTORY: readonly EpochEntry[] = [{ epoch: 0, startOffset: 0 }];

/** The epochs a partition has been led in, oldest first. One node: epoch 0 from offset 0. */
export function epochEntriesOf(_topic: string, _partition: number, replicated?: ReplicatedEpochs): readonly EpochEntry[] {
  return replicated?.history ?? SINGLE_NODE_HISTORY;
}

/** The partition's current leader epoch (one node: the newest entry, 0). */
export function currentLeaderEpoch(topic: string, partition: number, replicated?: ReplicatedEpochs): number {
  if (replicated !== undefined) return replicated.current;
  const entries = epochEntriesOf(topic, partition);
  return entries[entries.length - 1]?.epoch ?? 0;
}

/**
 * Checks the epoch a client believes current (OffsetForLeaderEpoch v2+, Fetch v9+,
 * ListOffsets v4+): -1 skips the check; older than ours is "fenced" (the client's leader is
 * stale); newer than ours is "unknown" (this broker has not heard of it yet).
 */
export function checkCurrentLeaderEpoch(topic: string, partition: number, clientEpoch: number, replicated?: ReplicatedEpochs): "ok" | "fenced" | "unknown" {
  if (clientEpoch === UNDEFINED_EPOCH) return "ok";
  const current = currentLeaderEpoch(topic, partition, replicated);
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
export function endOffsetForLeaderEpoch(topic: string, partition: number, requestedEpoch: number, logEndOffset: number, replicated?: ReplicatedEpochs): EpochEntry {
  return endOffsetInHistory(epochEntriesOf(topic, partition, replicated), requestedEpoch, logEndOffset);
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
