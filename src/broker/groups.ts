/**
 * @module broker/groups
 * What the metrics and the console know of consumer groups, behind one small interface so the
 * group coordinator (membership, generations) can take over later: today the only source is
 * the committed-offset store, which knows groups and their offsets but not their members.
 *
 * Lag is computed where it is read (listeners/http): log end offset minus committed offset.
 *
 * Plugging in a coordinator: implement GroupDirectory (membership from the coordinator, offsets
 * from the store) and hand it to the HTTP listener where server/broker.ts `showReady` sets
 * `view.groups`; `/metrics` then adds `runnel_group_members` and the console shows members.
 */
import type { OffsetStore } from "./offset-store.ts";

export interface GroupMember {
  memberId: string;
  clientId: string;
  /** Partitions the member owns, as "topic/partition". */
  assigned: string[];
}

export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
}

export interface GroupSummary {
  name: string;
  /** "offsets-only" while no coordinator tracks membership; the coordinator adds its states. */
  state: string;
  /** null when membership is unknown (no coordinator), [] for a known-empty group. */
  members: GroupMember[] | null;
  offsets: GroupOffset[];
}

/** Implemented by the committed-offset store today and by the group coordinator later. */
export interface GroupDirectory {
  groupNames(): string[];
  /** null when the group does not exist. */
  describe(name: string): GroupSummary | null;
}

/** The directory of committed offsets alone: groups without members. */
export function committedOffsetGroups(offsets: OffsetStore): GroupDirectory {
  return {
    groupNames: () => offsets.committedGroups(),
    describe(name) {
      const entries = offsets.fetchAll(name);
      if (entries.length === 0) return null;
      const sorted = entries.map(({ topic, partition, offset }) => ({ topic, partition, offset }));
      sorted.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
      return { name, state: "offsets-only", members: null, offsets: sorted };
    },
  };
}
