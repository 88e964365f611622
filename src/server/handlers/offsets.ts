/**
 * @module server/handlers/offsets
 * Consumer-group offsets: `commitOffsets` stores `{topic, partition, offset, metadata}` per group
 * and answers only after the commit is fsynced (broker/offset-store.ts); `fetchOffsets` returns
 * them — `offset: -1, metadata: ""` where nothing is committed; without `partitions`, everything
 * the group has committed.
 * Non-obvious: a commit names an existing partition (UNKNOWN_TOPIC / UNKNOWN_PARTITION per
 * entry otherwise) but its offset is not checked against the log: a group may commit an offset
 * that retention has since deleted, and finds OFFSET_OUT_OF_RANGE on its next fetch. Deleting a
 * topic deletes its committed offsets (handlers/topics.ts); while that runs, a commit naming the
 * topic gets UNKNOWN_TOPIC, and afterwards fetchOffsets answers as for a never-committed one.
 * A commit that names a group member (`memberId` + `generation`) is fenced per entry by the group
 * coordinator (UNKNOWN_MEMBER, COMMIT_FENCED); one without is a tool's and is not.
 * Authorization (authorizer acl): a commit needs read on the group (else the request fails) and
 * read on each entry's topic (else that entry's AUTHORIZATION_FAILED); fetchOffsets needs
 * describe on the group and answers only the topics the principal may describe.
 */
import { RunnelError, toRunnelError } from "../../errors.ts";
import { type RequestOf, toWireError, type WireError } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";
import type { OffsetCommit } from "../../broker/offset-store.ts";
import { checkTopicName, requirePartitionForCommit } from "../topic-rules.ts";
import type { Session } from "../../security/session.ts";
import { authorize, groupResource, isAuthorizationOn, requireAuthorized, topicResource } from "../../security/authorizer.ts";
import { deniedTopics } from "../access.ts";

export async function handleCommitOffsets(context: BrokerContext, request: RequestOf<"commitOffsets">, id: number, session: Session): Promise<Reply> {
  requireAuthorized(context, session, "read", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  const denied = deniedTopics(context, session, "read", request.offsets);
  const results: Array<{ topic: string; partition: number; error?: WireError }> = [];
  const accepted: OffsetCommit[] = [];
  const acceptedIndexes: number[] = [];
  if (request.memberId !== undefined && request.generation === undefined) {
    throw new RunnelError("INVALID_REQUEST", "generation: a commit with a memberId carries the generation of the member's latest heartbeat answer");
  }
  for (const entry of request.offsets) {
    try {
      const refusal = denied?.get(entry.topic);
      if (refusal !== undefined) throw refusal;
      requirePartitionForCommit(context, entry.topic, entry.partition);
      if (request.memberId !== undefined) context.groups.checkCommit(request.group, request.memberId, request.generation ?? -1, entry.topic, entry.partition);
      if (context.offsets.isTopicBeingRemoved(entry.topic)) throw new RunnelError("UNKNOWN_TOPIC", `topic '${entry.topic}' is being deleted`);
      acceptedIndexes.push(results.length);
      accepted.push({ topic: entry.topic, partition: entry.partition, offset: entry.offset, metadata: entry.metadata });
      results.push({ topic: entry.topic, partition: entry.partition });
    } catch (error) {
      results.push({ topic: entry.topic, partition: entry.partition, error: toWireError(toRunnelError(error)) });
    }
  }
  if (accepted.length > 0) {
    try {
      await context.offsets.commit(request.group, accepted);
    } catch (error) {
      const wire = toWireError(toRunnelError(error));
      for (const index of acceptedIndexes) {
        const result = results[index];
        if (result !== undefined) result.error = wire;
      }
    }
  }
  return frameReply(id, { results });
}

export function handleFetchOffsets(context: BrokerContext, request: RequestOf<"fetchOffsets">, id: number, session: Session): Reply {
  requireAuthorized(context, session, "describe", groupResource(request.group));
  context.offsets.requireCoordinator(request.group);
  // No per-entry errors in this answer: an invalid name fails the request, as it does everywhere else.
  for (const { topic } of request.partitions ?? []) checkTopicName(topic);
  const describable = (topic: string) => !isAuthorizationOn(context) || authorize(context, session, "describe", topicResource(topic));
  if (request.partitions === undefined) {
    const offsets = context.offsets
      .fetchAll(request.group)
      .filter((entry) => describable(entry.topic))
      .map((entry) => ({ ...entry }));
    return frameReply(id, { offsets });
  }
  const offsets = request.partitions.filter(({ topic }) => describable(topic)).map(({ topic, partition }) => {
    const committed = context.offsets.fetch(request.group, topic, partition);
    return { topic, partition, offset: committed?.offset ?? -1, metadata: committed?.metadata ?? "" };
  });
  return frameReply(id, { offsets });
}
