/**
 * @module cluster/local-replicas
 * Keeps this broker's log in step with the topics etcd assigns it: a topic with a partition
 * replicated here is created in the local log (all its partitions: the log manager holds whole
 * topics; the ones not assigned here stay empty), and a topic deleted from the cluster is deleted
 * here too, committed offsets first (as the deleteTopic handler does). Copying records between
 * replicas is the data plane's work, not this file's.
 */
import { toRunnelError } from "../errors.ts";
import type { BrokerContext } from "../server/context.ts";
import type { EtcdClusterView } from "./etcd-cluster-view.ts";
import type { TopicConfig, TopicDescription } from "../log/api.ts";

/** Starts following; returns the function that stops it. */
export function followAssignments(view: EtcdClusterView, context: BrokerContext): () => void {
  const ensure = (topic: string) => {
    const record = view.topicRecord(topic);
    if (record === undefined || context.log.hasTopic(topic) || !isAssignedHere(view, topic)) return;
    ensureLocalTopic(context, topic, record.partitions, record.config).catch((error: unknown) =>
      context.logger.error({ topic, error: toRunnelError(error).message }, "could not create an assigned topic in the local log"),
    );
  };
  const remove = (topic: string) => {
    if (!context.log.hasTopic(topic) || context.offsets.isTopicBeingRemoved(topic)) return;
    context.offsets.removeTopic(topic, () => context.log.deleteTopic(topic)).then(
      () => context.groups.topicsChanged(),
      (error: unknown) => context.logger.error({ topic, error: toRunnelError(error).message }, "could not delete a topic the cluster deleted"),
    );
  };
  for (const topic of view.topicNames()) {
    ensure(topic);
    // Moved off while this broker was down: its copy goes now.
    for (let partition = 0; partition < (view.topicRecord(topic)?.partitions ?? 0); partition++) {
      if (view.partitionState(topic, partition)?.replicas.includes(view.brokerId) === false) queueMicrotask(() => releaseRemovedReplica(view, context, topic, partition));
    }
  }
  return view.subscribe((event) => {
    if (event.kind === "partition") {
      ensure(event.topic);
      // After every listener of this event ran: the replica manager has stopped fetching it.
      if (!event.state.replicas.includes(view.brokerId)) queueMicrotask(() => releaseRemovedReplica(view, context, event.topic, event.partition));
    } else if (event.kind === "topicDeleted") remove(event.topic);
  });
}

/**
 * A reassignment took this broker out of a partition's replicas: its local copy is emptied
 * (Partition.truncateTo the log start: crash-safe, segments deleted). Only once etcd says so (the
 * event is the stored state), never while this broker leads or fetches it. The topic itself stays
 * in the local log even when no partition of it is left here: group commits sent to this broker
 * are checked against the local topic (docs/cluster.md, "Adding a broker and moving partitions").
 */
function releaseRemovedReplica(view: EtcdClusterView, context: BrokerContext, topic: string, index: number): void {
  const state = view.partitionState(topic, index);
  if (state === undefined || state.replicas.includes(view.brokerId) || state.leader === view.brokerId) return;
  if (view.topicRecord(topic) === undefined || !context.log.hasTopic(topic) || context.replication?.isLeader(topic, index) === true) return;
  let partition: ReturnType<BrokerContext["log"]["partition"]>;
  try {
    partition = context.log.partition(topic, index);
  } catch {
    return; // not created here
  }
  if (partition.nextOffset <= partition.logStartOffset) return;
  // Leaves the follower role first (the fetcher drops any answer still in flight for it).
  context.replication?.refreshTopic(topic);
  try {
    const records = partition.nextOffset - partition.logStartOffset;
    partition.truncateTo(partition.logStartOffset);
    context.logger.info({ topic, partition: index, records, replicas: state.replicas }, "no longer a replica: local copy of the partition deleted");
  } catch (error) {
    context.logger.error({ topic, partition: index, error: toRunnelError(error).message }, "could not delete the local copy of a partition moved away");
  }
}

/** Creations under way, per log: the createTopic handler and the follower share one. */
const creating = new WeakMap<BrokerContext["log"], Map<string, Promise<TopicDescription>>>();

/** The topic in the local log, created now (once, however many ask at the same time) when missing. */
export function ensureLocalTopic(context: BrokerContext, topic: string, partitions: number, config: Record<string, unknown>): Promise<TopicDescription> {
  let pending = creating.get(context.log);
  if (pending === undefined) {
    pending = new Map();
    creating.set(context.log, pending);
  }
  const running = pending.get(topic);
  if (running !== undefined) return running;
  if (context.log.hasTopic(topic)) return Promise.resolve(context.log.describeTopic(topic));
  const created = context.log.createTopicAsync(topic, { partitions, config: config as Partial<TopicConfig> }).finally(() => pending.delete(topic));
  pending.set(topic, created);
  // The data plane learns of the new partitions (leader epoch, followers fetching) once they exist here.
  void created.then(
    () => {
      context.replication?.refreshTopic(topic);
      context.groups.topicsChanged();
    },
    () => undefined,
  );
  return created;
}

function isAssignedHere(view: EtcdClusterView, topic: string): boolean {
  const record = view.topicRecord(topic);
  if (record === undefined) return false;
  for (let partition = 0; partition < record.partitions; partition += 1) {
    if (view.partitionState(topic, partition)?.replicas.includes(view.brokerId) === true) return true;
  }
  return false;
}
