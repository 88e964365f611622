/**
 * @module cluster/offsets-replay
 * The records a group coordinator writes to its partition of `__consumer_offsets`, and the state
 * they add up to. Sans-IO: cluster/replicated-offsets.ts appends and reads the log.
 *
 * Each record's key is the group id (the topic id for kind 3, empty for 4 and 6), its value one
 * msgpack array:
 *
 *   [1, group, [[topic, partition, offset, metadata], ...]]   commit
 *   [2, group]                                                group deleted (deleteGroup)
 *   [3, topic]                                                topic deleted: every group's offsets of it
 *   [4, snapshotId]                                           snapshot begins
 *   [5, group, [[topic, partition, offset, metadata], ...]]   snapshot entry: one group's whole state
 *   [6, snapshotId]                                           snapshot ends
 *
 * A snapshot (begin, one entry per group, end) is appended in one event-loop turn and restates
 * the whole partition. Replay keeps the state built so far and, from a begin, a second state
 * built from the snapshot entries plus every record of kinds 1-3 after the begin; at the matching
 * end the second state replaces the first. A snapshot cut short (its leader died while the
 * followers had only its start) is simply never adopted: the records after it went to both
 * states. So once a complete snapshot is in the log, everything before it may be deleted —
 * which is what the topic's time retention does (docs/cluster.md, "Consumer groups").
 */
import { decode, Encoder } from "@msgpack/msgpack";
import type { OffsetCommit } from "../broker/offset-store.ts";

export const RECORD = { commit: 1, groupDeleted: 2, topicDeleted: 3, snapshotBegin: 4, snapshotEntry: 5, snapshotEnd: 6 } as const;

const encoder = new Encoder();

type Row = [string, number, number, string];

function rowsOf(entries: Iterable<OffsetCommit>): Row[] {
  return [...entries].map((entry) => [entry.topic, entry.partition, entry.offset, entry.metadata]);
}

export function encodeCommit(group: string, entries: Iterable<OffsetCommit>): Uint8Array {
  return encoder.encode([RECORD.commit, group, rowsOf(entries)]);
}

export function encodeGroupDeleted(group: string): Uint8Array {
  return encoder.encode([RECORD.groupDeleted, group]);
}

export function encodeTopicDeleted(topic: string): Uint8Array {
  return encoder.encode([RECORD.topicDeleted, topic]);
}

export function encodeSnapshotMark(kind: typeof RECORD.snapshotBegin | typeof RECORD.snapshotEnd, snapshotId: number): Uint8Array {
  return encoder.encode([kind, snapshotId]);
}

export function encodeSnapshotEntry(group: string, entries: Iterable<OffsetCommit>): Uint8Array {
  return encoder.encode([RECORD.snapshotEntry, group, rowsOf(entries)]);
}

function entryKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** Committed offsets of the groups of one partition. */
export class GroupOffsetsState {
  readonly groups = new Map<string, Map<string, OffsetCommit>>();
  entryCount = 0;

  apply(group: string, entries: Iterable<OffsetCommit>): void {
    let offsets = this.groups.get(group);
    if (offsets === undefined) this.groups.set(group, (offsets = new Map()));
    for (const entry of entries) {
      const key = entryKey(entry.topic, entry.partition);
      if (!offsets.has(key)) this.entryCount += 1;
      offsets.set(key, { topic: entry.topic, partition: entry.partition, offset: entry.offset, metadata: entry.metadata });
    }
  }

  /** How many of `entries` the group does not hold yet (each would be a new entry). */
  countNew(group: string, entries: readonly OffsetCommit[]): number {
    const offsets = this.groups.get(group);
    return entries.filter((entry) => offsets?.get(entryKey(entry.topic, entry.partition)) === undefined).length;
  }

  get(group: string, topic: string, partition: number): OffsetCommit | undefined {
    return this.groups.get(group)?.get(entryKey(topic, partition));
  }

  deleteGroup(group: string): void {
    this.entryCount -= this.groups.get(group)?.size ?? 0;
    this.groups.delete(group);
  }

  /** Drops every group's offsets of `topic`; true if there were any. */
  forgetTopic(topic: string): boolean {
    let removed = false;
    for (const [group, offsets] of this.groups) {
      for (const [key, entry] of offsets) {
        if (entry.topic !== topic) continue;
        offsets.delete(key);
        this.entryCount -= 1;
        removed = true;
      }
      if (offsets.size === 0) this.groups.delete(group);
    }
    return removed;
  }

  holdsTopic(topic: string): boolean {
    for (const offsets of this.groups.values()) for (const entry of offsets.values()) if (entry.topic === topic) return true;
    return false;
  }
}

function parseRows(value: unknown): OffsetCommit[] | null {
  if (!Array.isArray(value)) return null;
  const entries: OffsetCommit[] = [];
  for (const row of value as unknown[]) {
    if (!Array.isArray(row) || typeof row[0] !== "string" || typeof row[1] !== "number" || typeof row[2] !== "number" || typeof row[3] !== "string") return null;
    entries.push({ topic: row[0], partition: row[1], offset: row[2], metadata: row[3] });
  }
  return entries;
}

/** Builds a partition's state from its records, in log order. */
export class OffsetsReplay {
  private state = new GroupOffsetsState();
  private pending: GroupOffsetsState | null = null;
  private pendingId = -1;
  /** Records that were not one of the kinds above (skipped, counted for the load's log line). */
  skipped = 0;

  /** Applies one record's value; false (and skipped) when it is not a record of this format. */
  apply(value: Uint8Array | null): boolean {
    let record: unknown;
    try {
      record = value === null ? null : decode(value);
    } catch {
      record = null;
    }
    if (!Array.isArray(record) || !this.applyRecord(record)) {
      this.skipped += 1;
      return false;
    }
    return true;
  }

  /** The state: the last complete snapshot and everything after it (a snapshot cut short is dropped). */
  finish(): GroupOffsetsState {
    this.pending = null;
    return this.state;
  }

  private applyRecord(record: unknown[]): boolean {
    const [kind, name] = record;
    if (kind === RECORD.snapshotBegin && typeof name === "number") {
      this.pending = new GroupOffsetsState();
      this.pendingId = name;
      return true;
    }
    if (kind === RECORD.snapshotEnd && typeof name === "number") {
      if (this.pending !== null && name === this.pendingId) this.state = this.pending;
      this.pending = null;
      return true;
    }
    if (typeof name !== "string") return false;
    if (kind === RECORD.commit || kind === RECORD.snapshotEntry) {
      const entries = parseRows(record[2]);
      if (entries === null) return false;
      if (kind === RECORD.commit) this.state.apply(name, entries);
      this.pending?.apply(name, entries);
      return true;
    }
    if (kind === RECORD.groupDeleted) {
      this.state.deleteGroup(name);
      this.pending?.deleteGroup(name);
      return true;
    }
    if (kind === RECORD.topicDeleted) {
      this.state.forgetTopic(name);
      this.pending?.forgetTopic(name);
      return true;
    }
    return false;
  }
}
