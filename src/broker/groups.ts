/**
 * @module broker/groups
 * What the metrics and the console know of consumer groups, behind one small interface: the
 * running broker's directory (`coordinatedGroups`) joins the group coordinator's membership to
 * the committed-offset store's offsets.
 *
 * Lag is computed where it is read (listeners/http): log end offset minus committed offset.
 * server/broker.ts `showReady` hands the directory to the HTTP listener (`view.groups`);
 * `/metrics` writes `runnel_group_members` for every group whose members are known.
 */
import type { GroupCoordinator } from "./group-coordinator.ts";
import type { CommittedOffsets } from "./offset-store.ts";

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
  /** The coordinator's state: empty, stable or reconciling. */
  state: string;
  /** null when the members are not described (a Kafka classic group), [] for a group without members. */
  members: GroupMember[] | null;
  offsets: GroupOffset[];
}

/** What the HTTP listener reads; implemented by `coordinatedGroups`. */
export interface GroupDirectory {
  groupNames(): string[];
  /** null when the group does not exist. */
  describe(name: string): GroupSummary | null;
}

/**
 * The running broker's directory: a group is listed when it has members or committed offsets;
 * its members and state come from the coordinator (a group the coordinator does not know has
 * no members: "empty"), its offsets from the store.
 */
export function coordinatedGroups(coordinator: GroupCoordinator, offsets: CommittedOffsets): GroupDirectory {
  return {
    groupNames() {
      const names = new Set(offsets.committedGroups());
      for (const group of coordinator.listGroups()) names.add(group.group);
      return [...names];
    },
    describe(name) {
      const entries = sortedOffsets(offsets, name);
      const description = coordinator.describeGroup(name);
      if (description === null) return entries.length === 0 ? null : { name, state: "empty", members: [], offsets: entries };
      const members =
        description.kind === "classic"
          ? null
          : description.memberList.map((member) => ({
              memberId: member.memberId,
              clientId: member.clientId,
              assigned: [...member.assigned, ...member.revoking].flatMap((entry) => entry.partitions.map((partition) => `${entry.topic}/${partition}`)),
            }));
      return { name, state: description.state, members, offsets: entries };
    },
  };
}

function sortedOffsets(offsets: CommittedOffsets, name: string): GroupOffset[] {
  const sorted = offsets.fetchAll(name).map(({ topic, partition, offset }) => ({ topic, partition, offset }));
  sorted.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  return sorted;
}
