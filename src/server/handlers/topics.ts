/**
 * @module server/handlers/topics
 * Topic administration: `createTopic`, `deleteTopic`, `describeTopic`, `createPartitions`,
 * `alterTopicConfig`. Each answers with the topic's description (`deleteTopic` with `{}`).
 * The broker's limits (name rule, topicsMax, partitionsPerTopicMax) are checked here; the log
 * manager validates the config values and persists them.
 * Non-obvious: createPartitions takes the new TOTAL count and can only grow a topic
 * (INVALID_PARTITIONS otherwise) — keyed messages would map to other partitions after it.
 * deleteTopic also deletes every group's committed offsets of the topic (as Kafka does), so a
 * topic created again under the same name starts with none — see handleDeleteTopic for the order.
 * createTopic, createPartitions and deleteTopic are applied off the event loop (the log's
 * createTopicAsync / addPartitionsAsync; the offset store's queue): their replies are marked
 * appliedLater, so their connection applies nothing after them until they are. Creates are
 * admitted first by topic-rules.ts (topicsMax, partitionsMax, the creation rate: THROTTLED).
 * Authorization (server/access.ts) comes first of all: create on the topic or the cluster for
 * createTopic and createPartitions, delete / describe / alter on the topic for the others.
 * Cluster mode (docs/cluster.md): every operation but describeTopic goes through the cluster view
 * (cluster/cluster-topic-admin.ts) and every replica applies it; describeTopic of a topic the view
 * has and the local log not yet (this broker is a replica whose copy is being created) is
 * NOT_LEADER, retriable; of one this broker holds no replica of, it is described from the view.
 */
import type { ClusterView } from "../../cluster/cluster-view.ts";
import { alterTopicConfigInCluster, createTopicInCluster, describeFromView, growTopicInCluster, isReplicaHere } from "../../cluster/cluster-topic-admin.ts";
import { refuseInternalTopic } from "../../cluster/offsets-topic.ts";
import { RunnelError, toRunnelError } from "../../errors.ts";
import type { TopicConfig, TopicDescription } from "../../log/api.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import { requireCreateTopic, requireTopicAccess } from "../access.ts";
import { appliedLater, type BrokerContext, frameReply, type Reply } from "../context.ts";
import { admitPartitions, checkPartitionCount, checkTopicName, checkTopicRoom, requireTopic, toWireTopic } from "../topic-rules.ts";

export function handleCreateTopic(context: BrokerContext, request: RequestOf<"createTopic">, id: number, session: Session): Promise<Reply> {
  requireCreateTopic(context, session, request.topic);
  checkTopicName(request.topic);
  refuseInternalTopic(request.topic, "created");
  checkPartitionCount(context, request.partitions);
  if (context.cluster !== null) return appliedLater(createInCluster(context, context.cluster, request, id));
  if ((request.replicationFactor ?? 1) > 1 || (request.minInsyncReplicas ?? 1) > 1) {
    throw new RunnelError("INVALID_CONFIG", "a replication factor or minInsyncReplicas above 1 needs cluster mode (runnel serve --cluster ...)");
  }
  if (context.log.hasTopic(request.topic)) throw new RunnelError("TOPIC_EXISTS", `topic '${request.topic}' already exists`);
  checkTopicRoom(context);
  admitPartitions(context, request.partitions);
  const options: { partitions: number; config?: Partial<TopicConfig> } = { partitions: request.partitions };
  if (request.config !== undefined) options.config = request.config as Partial<TopicConfig>;
  // The log logs "topic created", once.
  return appliedLater(context.log.createTopicAsync(request.topic, options).then((description) => topicReply(context, id, description)));
}

/**
 * Cluster mode: the topic goes into the cluster's store (placement over the live brokers;
 * TOPIC_EXISTS there), answered once this broker's view names every partition's leader and its
 * own log has the topic; the other replicas create theirs when their view brings it
 * (cluster/local-replicas.ts).
 */
async function createInCluster(context: BrokerContext, view: ClusterView, request: RequestOf<"createTopic">, id: number): Promise<Reply> {
  const replication = { replicationFactor: request.replicationFactor ?? 1, minInsyncReplicas: request.minInsyncReplicas ?? 1 };
  admitPartitions(context, request.partitions);
  return topicReply(context, id, await createTopicInCluster(context, view, request.topic, request.partitions, replication, request.config ?? {}));
}

/**
 * Offsets first, then the log, in one step of the offset store's write queue: commits accepted
 * before are written and removed with the rest, and none for the topic is accepted until the log
 * is gone. A crash between the two leaves the topic without committed offsets and unacknowledged
 * (a retry finishes it) — never offsets that outlive the topic and greet one created again.
 * A second deleteTopic of the same topic while one runs gets UNKNOWN_TOPIC.
 */
export function handleDeleteTopic(context: BrokerContext, request: RequestOf<"deleteTopic">, id: number, session: Session): Promise<Reply> {
  requireTopicAccess(context, session, "delete", request.topic);
  refuseInternalTopic(request.topic, "deleted");
  if (context.cluster !== null) return appliedLater(deleteInCluster(context, context.cluster, request, id));
  requireTopic(context, request.topic);
  return appliedLater(deleteTopic(context, request, id));
}

/** Cluster mode: out of etcd first (every replica deletes its copy on the watch), then here. */
async function deleteInCluster(context: BrokerContext, view: ClusterView, request: RequestOf<"deleteTopic">, id: number): Promise<Reply> {
  const deleted = await view.deleteTopic(request.topic);
  if (!context.log.hasTopic(request.topic) || context.offsets.isTopicBeingRemoved(request.topic)) {
    if (!deleted) requireTopic(context, request.topic);
    return frameReply(id, {});
  }
  return deleteTopic(context, request, id);
}

async function deleteTopic(context: BrokerContext, request: RequestOf<"deleteTopic">, id: number): Promise<Reply> {
  try {
    // Answered once the files are unlinked, so their space is free when the client hears back
    // (a producer waiting on a full disk resumes at once; disk-full.test.ts).
    let removal: Promise<void> = Promise.resolve();
    await context.offsets.removeTopic(request.topic, () => {
      removal = context.log.deleteTopicAsync(request.topic);
    });
    await removal;
  } catch (error) {
    if (toRunnelError(error).code !== "STORAGE_FULL" || !context.log.hasTopic(request.topic)) throw error;
    await deleteOnFullDisk(context, request.topic);
  }
  context.groups.topicsChanged();
  // The log logs "topic deleted", once.
  return frameReply(id, {});
}

/**
 * The offsets file could not be rewritten for lack of space, and deleting a topic is how an
 * operator frees space: delete the data first, then the offsets in the room that made. Should
 * that fail too, or the broker stop in between, the next start forgets the offsets of topics
 * that no longer exist (server/broker.ts).
 */
async function deleteOnFullDisk(context: BrokerContext, topic: string): Promise<void> {
  await context.log.deleteTopicAsync(topic);
  context.logger.warn({ topic }, "disk full: deleted the topic's data before its committed offsets");
  await context.offsets.removeTopic(topic);
}

export function handleDescribeTopic(context: BrokerContext, request: RequestOf<"describeTopic">, id: number, session: Session): Reply {
  requireTopicAccess(context, session, "describe", request.topic);
  const view = context.cluster;
  if (view !== null && !context.log.hasTopic(request.topic) && view.partitionCount(request.topic) !== undefined) {
    if (isReplicaHere(view, request.topic)) throw notYetHere(request.topic);
    return frameReply(id, { topic: toWireTopic(describeFromView(context, view, request.topic)) });
  }
  requireTopic(context, request.topic);
  return frameReply(id, { topic: toWireTopic(context.log.describeTopic(request.topic)) });
}

/** A replica whose local copy of a new topic is still being created: retriable, the copy comes within moments. */
function notYetHere(topic: string): RunnelError {
  return new RunnelError("NOT_LEADER", `topic '${topic}' was just created and this broker's copy of it is not ready yet; retry shortly`);
}

export function handleCreatePartitions(context: BrokerContext, request: RequestOf<"createPartitions">, id: number, session: Session): Promise<Reply> {
  requireCreateTopic(context, session, request.topic);
  refuseInternalTopic(request.topic, "given partitions");
  if (context.cluster !== null && context.cluster.partitionCount(request.topic) !== undefined) return createPartitionsInCluster(context, context.cluster, request, id);
  requireTopic(context, request.topic);
  checkPartitionCount(context, request.partitions);
  const current = context.log.describeTopic(request.topic).partitions.length;
  if (request.partitions <= current) {
    throw new RunnelError("INVALID_PARTITIONS", `topic '${request.topic}' has ${current} partitions; the new total must be larger`);
  }
  admitPartitions(context, request.partitions - current);
  return appliedLater(context.log.addPartitionsAsync(request.topic, request.partitions).then((description) => topicReply(context, id, description)));
}

/** Cluster mode: the count is the cluster's (the store refuses a total not above it, INVALID_PARTITIONS). */
function createPartitionsInCluster(context: BrokerContext, view: ClusterView, request: RequestOf<"createPartitions">, id: number): Promise<Reply> {
  const current = view.partitionCount(request.topic) ?? 0;
  checkPartitionCount(context, request.partitions);
  if (request.partitions <= current) throw new RunnelError("INVALID_PARTITIONS", `topic '${request.topic}' has ${current} partitions; the new total must be larger`);
  admitPartitions(context, request.partitions - current);
  return appliedLater(growTopicInCluster(context, view, request.topic, request.partitions).then((description) => topicReply(context, id, description)));
}

/** A topic created or grown: groups subscribed to it rebalance at once (not at their next partition-count check). */
function topicReply(context: BrokerContext, id: number, description: TopicDescription): Reply {
  context.groups.topicsChanged();
  return frameReply(id, { topic: toWireTopic(description) });
}

export function handleAlterTopicConfig(context: BrokerContext, request: RequestOf<"alterTopicConfig">, id: number, session: Session): Reply | Promise<Reply> {
  requireTopicAccess(context, session, "alter", request.topic);
  refuseInternalTopic(request.topic, "altered");
  const view = context.cluster;
  if (view !== null && view.partitionCount(request.topic) !== undefined) {
    const config = request.config as Partial<TopicConfig>;
    return appliedLater(alterTopicConfigInCluster(context, view, request.topic, config).then((description) => frameReply(id, { topic: toWireTopic(description) })));
  }
  requireTopic(context, request.topic);
  return frameReply(id, { topic: toWireTopic(context.log.alterTopicConfig(request.topic, request.config as Partial<TopicConfig>)) });
}
