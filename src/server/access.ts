/**
 * @module server/access
 * The authorization checks the native handlers share, over the one rule in
 * security/authorizer.ts. The check comes before any existence check, so a principal that may
 * not touch a topic gets AUTHORIZATION_FAILED whether or not the topic exists: the answer tells
 * nothing about topics it may not describe. Listing answers (metadata, listGroups) leave out what
 * the principal may not describe.
 */
import type { RunnelError } from "../errors.ts";
import { authorizationError, authorize, CLUSTER, isAuthorizationOn, type Operation, requireAuthorized, topicResource } from "../security/authorizer.ts";
import type { Session } from "../security/session.ts";
import type { BrokerContext } from "./context.ts";

export function requireTopicAccess(context: BrokerContext, session: Session, operation: Operation, topic: string): void {
  requireAuthorized(context, session, operation, topicResource(topic));
}

export function requireClusterAccess(context: BrokerContext, session: Session, operation: Operation): void {
  requireAuthorized(context, session, operation, CLUSTER);
}

/** Creating a topic: create on the topic (literal or by prefix) or on the cluster, as in Kafka. */
export function mayCreateTopic(context: BrokerContext, session: Session, topic: string): boolean {
  return authorize(context, session, "create", topicResource(topic)) || authorize(context, session, "create", CLUSTER);
}

export function requireCreateTopic(context: BrokerContext, session: Session, topic: string): void {
  if (!mayCreateTopic(context, session, topic)) throw authorizationError(session, "create", topicResource(topic));
}

/**
 * The topics the entries name that the session may not do `operation` on, each with its error;
 * null when authorization is off (the data path's common case: nothing allocated) or every
 * topic is allowed.
 */
export function deniedTopics(context: BrokerContext, session: Session, operation: Operation, entries: Iterable<{ readonly topic: string }>): Map<string, RunnelError> | null {
  if (!isAuthorizationOn(context)) return null;
  const denied = new Map<string, RunnelError>();
  const allowed = new Set<string>();
  for (const { topic } of entries) {
    if (allowed.has(topic) || denied.has(topic)) continue;
    if (authorize(context, session, operation, topicResource(topic))) allowed.add(topic);
    else denied.set(topic, authorizationError(session, operation, topicResource(topic)));
  }
  return denied.size === 0 ? null : denied;
}
