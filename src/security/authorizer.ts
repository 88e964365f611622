/**
 * @module security/authorizer
 * The one authorization rule every listener's handlers call: may this session's principal do
 * this operation on this resource? With `authorizer: "none"` (the default) everything is allowed,
 * so the single-node quick start is unchanged. With `"acl"`:
 * - a super-user (the `superUsers` option, as security/super-users.ts reads it) always passes;
 * - a matching deny entry refuses, whatever allows it (deny wins);
 * - otherwise a matching allow entry lets it through, and none means refused;
 * - as Kafka does, an allow of read, write, delete or alter also allows describe.
 * An entry matches when its principal is the session's (`User:<name>`, `ANONYMOUS` for a session
 * nobody authenticated) or `*`; its resource type is the one asked about; its name equals the
 * resource's (a literal `*` matches every name), or is a prefix of it for a prefixed entry; and
 * its operation is the one asked about or `all`.
 */
import type { Config } from "../config.ts";
import { RunnelError } from "../errors.ts";
import { type AclEntry, type AclOperation, CLUSTER_RESOURCE_NAME, type ResourceType } from "./acl.ts";
import type { AclStore } from "./acl-store.ts";
import type { Principal, Session } from "./session.ts";
import { superUserNames } from "./super-users.ts";

export type Resource = { readonly type: "topic" | "group"; readonly name: string } | { readonly type: "cluster" };
export type Operation = Exclude<AclOperation, "all">;

export const CLUSTER: Resource = Object.freeze({ type: "cluster" });
export const topicResource = (name: string): Resource => ({ type: "topic", name });
export const groupResource = (name: string): Resource => ({ type: "group", name });

/** What the authorizer reads: the live config (superUsers, authorizer) and the ACL. */
export interface AuthorizerContext {
  readonly config: Pick<Config, "authorizer" | "superUsers">;
  readonly acls: AclStore;
}

/** Operations whose allow also allows describe. */
const IMPLIES_DESCRIBE: ReadonlySet<AclOperation> = new Set(["read", "write", "delete", "alter", "describe", "all"]);

/** `User:alice`; the anonymous principal is `User:ANONYMOUS`, as in Kafka. */
export function principalString(principal: Principal): string {
  return `User:${principal.name}`;
}

export function isAuthorizationOn(context: AuthorizerContext): boolean {
  return context.config.authorizer === "acl";
}

export function authorize(context: AuthorizerContext, session: Session, operation: Operation, resource: Resource): boolean {
  if (context.config.authorizer !== "acl") return true;
  if (isSuper(context.config.superUsers, session)) return true;
  const { own, everyone } = context.acls.entriesFor(principalString(session.principal));
  const ownVerdict = verdictOf(own, operation, resource);
  if (ownVerdict === DENIED) return false;
  const everyoneVerdict = verdictOf(everyone, operation, resource);
  if (everyoneVerdict === DENIED) return false;
  return ownVerdict === ALLOWED || everyoneVerdict === ALLOWED;
}

const DENIED = 0;
const ALLOWED = 1;
const NO_MATCH = 2;

/** DENIED when a matching entry denies (deny wins), else ALLOWED when one allows, else NO_MATCH. */
function verdictOf(entries: readonly AclEntry[], operation: Operation, resource: Resource): number {
  let verdict = NO_MATCH;
  for (const entry of entries) {
    if (!resourceMatches(entry, resource)) continue;
    if (entry.permission === "deny") {
      if (entry.operation === operation || entry.operation === "all") return DENIED;
    } else if (operationAllows(entry.operation, operation)) {
      verdict = ALLOWED;
    }
  }
  return verdict;
}

/** isSuperUser, with the parsed `superUsers` value kept until it changes (SIGHUP): checks run per request. */
let superUsersText = "";
let superUserSet: ReadonlySet<string> = new Set();

function isSuper(superUsers: string, session: Session): boolean {
  if (superUsers === "") return false;
  if (superUsers !== superUsersText) {
    superUsersText = superUsers;
    superUserSet = new Set(superUserNames(superUsers));
  }
  return session.principal.kind === "user" && superUserSet.has(session.principal.name);
}

/** Throws AUTHORIZATION_FAILED naming the principal, operation and resource the caller named. */
export function requireAuthorized(context: AuthorizerContext, session: Session, operation: Operation, resource: Resource): void {
  if (!authorize(context, session, operation, resource)) throw authorizationError(session, operation, resource);
}

export function authorizationError(session: Session, operation: Operation, resource: Resource): RunnelError {
  const what = resource.type === "cluster" ? "the cluster" : `${resource.type} '${resource.name}'`;
  return new RunnelError("AUTHORIZATION_FAILED", `${principalString(session.principal)} may not ${operation} ${what}`, {
    details: { operation, resourceType: resource.type, ...(resource.type === "cluster" ? {} : { resourceName: resource.name }) },
  });
}

function operationAllows(granted: AclOperation, asked: Operation): boolean {
  if (granted === "all" || granted === asked) return true;
  return asked === "describe" && IMPLIES_DESCRIBE.has(granted);
}

function resourceMatches(entry: AclEntry, resource: Resource): boolean {
  if (entry.resourceType !== (resource.type as ResourceType)) return false;
  if (resource.type === "cluster") return entry.resourceName === CLUSTER_RESOURCE_NAME;
  if (entry.patternType === "prefixed") return resource.name.startsWith(entry.resourceName);
  return entry.resourceName === resource.name || entry.resourceName === "*";
}
