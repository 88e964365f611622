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
 * Cluster: each op on one group is answered only by the group's coordinator (NOT_COORDINATOR,
 * COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE elsewhere; cluster/replicated-offsets.ts);
 * `findCoordinator` names it; `listGroups` lists the groups this broker coordinates.
 * Authorization (authorizer acl): read on the group to join, heartbeat or leave; describe to
 * describe it; delete to delete it; listGroups lists only the groups the principal may describe.
 */
import { answerHasNews } from "../../broker/group-coordinator.ts";
import { RunnelError } from "../../errors.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";
import type { Session } from "../../security/session.ts";
import { authorize, groupResource, isAuthorizationOn, requireAuthorized } from "../../security/authorizer.ts";

export function handleJoinGroup(context: BrokerContext, request: RequestOf<"joinGroup">, id: number, session: Session): Reply {
  requireAuthorized(context, session, "read", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  return frameReply(id, { ...context.groups.join(request) });
}

/** Answers at once when there is news or no `waitMs`; else parks until news or the wait is up, then looks again. */
export function handleHeartbeat(context: BrokerContext, request: RequestOf<"heartbeat">, id: number, session: Session): Reply | Promise<Reply> {
  requireAuthorized(context, session, "read", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  const answer = context.groups.heartbeat(request);
  const waitMs = Math.min(request.waitMs, answer.heartbeatIntervalMs);
  if (waitMs <= 0 || answerHasNews(answer, request.owned) || context.isShuttingDown()) return frameReply(id, { ...answer });
  return context.heartbeatWaits.park(request.group, request.memberId, waitMs).then(() => frameReply(id, { ...context.groups.heartbeat(request, false) }));
}

export function handleLeaveGroup(context: BrokerContext, request: RequestOf<"leaveGroup">, id: number, session: Session): Reply {
  requireAuthorized(context, session, "read", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  context.groups.leave(request.group, request.memberId);
  return frameReply(id, {});
}

export function handleListGroups(context: BrokerContext, _request: RequestOf<"listGroups">, id: number, session: Session): Reply {
  const groups: Array<Record<string, unknown>> = context.groups.listGroups().map((summary) => ({ ...summary }));
  const withMembers = new Set(groups.map((summary) => summary.group));
  for (const group of context.offsets.committedGroups()) {
    if (!withMembers.has(group)) groups.push({ group, state: "empty", generation: 0, members: 0 });
  }
  groups.sort((left, right) => (String(left.group) < String(right.group) ? -1 : 1));
  if (!isAuthorizationOn(context)) return frameReply(id, { groups });
  return frameReply(id, { groups: groups.filter((summary) => authorize(context, session, "describe", groupResource(String(summary.group)))) });
}

export function handleDescribeGroup(context: BrokerContext, request: RequestOf<"describeGroup">, id: number, session: Session): Reply {
  requireAuthorized(context, session, "describe", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  const described = context.groups.describeGroup(request.group);
  if (described === null) return frameReply(id, { group: request.group, state: "empty", generation: 0, members: [] });
  const { memberList, members: _count, assignor, ...summary } = described;
  return frameReply(id, { ...summary, ...(assignor === null ? {} : { assignor }), members: memberList });
}

export async function handleDeleteGroup(context: BrokerContext, request: RequestOf<"deleteGroup">, id: number, session: Session): Promise<Reply> {
  requireAuthorized(context, session, "delete", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  if (context.groups.hasMembers(request.group)) {
    throw new RunnelError("GROUP_NOT_EMPTY", `group '${request.group}' has members; it can be deleted once every member has left or expired`);
  }
  await context.offsets.removeGroup(request.group);
  return frameReply(id, {});
}

/** The broker coordinating the group: in a cluster the leader of its __consumer_offsets partition, on a single node this one. */
export function handleFindCoordinator(context: BrokerContext, request: RequestOf<"findCoordinator">, id: number, session: Session): Reply {
  requireAuthorized(context, session, "describe", groupResource(request.group));
  const coordinators = context.coordinators ?? null;
  if (coordinators !== null) {
    const { brokerId, host, port } = coordinators.findCoordinator(request.group);
    return frameReply(id, { brokerId, host, port });
  }
  if (context.cluster !== null) throw new RunnelError("COORDINATOR_NOT_AVAILABLE", "this broker has not joined its cluster yet");
  const self = context.advertised ?? { host: context.config.host, port: context.config.port };
  return frameReply(id, { brokerId: context.config.brokerId, host: self.host, port: self.port });
}
