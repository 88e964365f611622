/**
 * @module server/handlers/acls
 * ACL management over the native protocol (docs/protocol.md, "ACLs"): `createAcls` adds entries
 * (those already present are not added twice) and answers how many were new; `deleteAcls`
 * removes every entry matching any of its filters and answers them; `describeAcls` answers the
 * entries matching its filter. Each change is durable before it is answered (security/acl-store.ts).
 * Authorization: alter on the cluster to create or delete, describe on the cluster to describe;
 * super-users always pass, so an operator named in `superUsers` can set up the first entries.
 * Non-obvious: with `authorizer: "none"` every principal may manage ACLs, as it may do anything
 * else — entries can be prepared before enforcement is turned on.
 */
import type { RequestOf } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import { requireClusterAccess } from "../access.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

export function handleCreateAcls(context: BrokerContext, request: RequestOf<"createAcls">, id: number, session: Session): Reply {
  requireClusterAccess(context, session, "alter");
  const created = context.acls.add(request.acls);
  context.logger.info({ principal: session.principal.name, created, acls: request.acls }, "ACL entries added");
  return frameReply(id, { created });
}

export function handleDeleteAcls(context: BrokerContext, request: RequestOf<"deleteAcls">, id: number, session: Session): Reply {
  requireClusterAccess(context, session, "alter");
  const deleted = context.acls.remove(request.filters);
  context.logger.info({ principal: session.principal.name, deleted }, "ACL entries removed");
  return frameReply(id, { deleted: deleted.map((entry) => ({ ...entry })) });
}

export function handleDescribeAcls(context: BrokerContext, request: RequestOf<"describeAcls">, id: number, session: Session): Reply {
  requireClusterAccess(context, session, "describe");
  return frameReply(id, { acls: context.acls.list(request.filter).map((entry) => ({ ...entry })) });
}
