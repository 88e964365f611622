/**
 * @module server/handlers/groups
 * Consumer groups over the native protocol (docs/protocol.md, section 4, "Consumer groups"):
 * each op calls the group coordinator (broker/group-coordinator.ts), which holds every rule;
 * these handlers only shape answers. `joinGroup` and `heartbeat` answer the same map: the
 * member's id, generation and epoch, what it holds (`assigned`), what it must give up
 * (`revoke`), and when to heartbeat next; a heartbeat with `waitMs` and no news is held until
 * news or the wait's end (broker/heartbeat-waits.ts). Commit fencing is in handlers/offsets.ts.
 * Non-obvious: `listGroups` and `describeGroup` also show groups that have committed offsets but
 * no members (state "empty", no kind); `deleteGroup` refuses a group with members
 * (GROUP_NOT_EMPTY) and otherwise removes its committed offsets durably.
 */
import { answerHasNews } from "../../broker/group-coordinator.ts";
import { RunnelError } from "../../errors.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

export function handleJoinGroup(context: BrokerContext, request: RequestOf<"joinGroup">, id: number): Reply {
  return frameReply(id, { ...context.groups.join(request) });
}

/** Answers at once when there is news or no `waitMs`; else parks until news or the wait is up, then looks again. */
export function handleHeartbeat(context: BrokerContext, request: RequestOf<"heartbeat">, id: number): Reply | Promise<Reply> {
  const answer = context.groups.heartbeat(request);
  const waitMs = Math.min(request.waitMs, answer.heartbeatIntervalMs);
  if (waitMs <= 0 || answerHasNews(answer, request.owned) || context.isShuttingDown()) return frameReply(id, { ...answer });
  return context.heartbeatWaits.park(request.group, request.memberId, waitMs).then(() => frameReply(id, { ...context.groups.heartbeat(request, false) }));
}

export function handleLeaveGroup(context: BrokerContext, request: RequestOf<"leaveGroup">, id: number): Reply {
  context.groups.leave(request.group, request.memberId);
  return frameReply(id, {});
}

export function handleListGroups(context: BrokerContext, _request: RequestOf<"listGroups">, id: number): Reply {
  const groups: Array<Record<string, unknown>> = context.groups.listGroups().map((summary) => ({ ...summary }));
  const withMembers = new Set(groups.map((summary) => summary.group));
  for (const group of context.offsets.committedGroups()) {
    if (!withMembers.has(group)) groups.push({ group, state: "empty", generation: 0, members: 0 });
  }
  groups.sort((left, right) => (String(left.group) < String(right.group) ? -1 : 1));
  return frameReply(id, { groups });
}

export function handleDescribeGroup(context: BrokerContext, request: RequestOf<"describeGroup">, id: number): Reply {
  const described = context.groups.describeGroup(request.group);
  if (described === null) return frameReply(id, { group: request.group, state: "empty", generation: 0, members: [] });
  const { memberList, members: _count, assignor, ...summary } = described;
  return frameReply(id, { ...summary, ...(assignor === null ? {} : { assignor }), members: memberList });
}

export async function handleDeleteGroup(context: BrokerContext, request: RequestOf<"deleteGroup">, id: number): Promise<Reply> {
  if (context.groups.hasMembers(request.group)) {
    throw new RunnelError("GROUP_NOT_EMPTY", `group '${request.group}' has members; it can be deleted once every member has left or expired`);
  }
  await context.offsets.removeGroup(request.group);
  return frameReply(id, {});
}
