/**
 * @module cluster/local-replicas
 * Keeps this broker's log in step with the topics the cluster view (etcd) assigns it: a topic with a partition
 * replicated here is created in the local log (all its partitions: the log manager holds whole
 * topics; the ones not assigned here stay empty), and a topic deleted from the cluster is deleted
 * here too, committed offsets first (as the deleteTopic handler does). A topic record that
 * changed is applied to the local copy: a larger partition count adds the partitions here (the
 * data plane then takes their roles: followers start fetching), other config overrides replace
 * the local ones. Copying records between replicas is the data plane's work, not this file's.
 */
import { toRunnelError } from "../errors.ts";
import type { BrokerContext } from "../server/context.ts";
import type { ClusterView } from "./cluster-view.ts";
import type { TopicConfig, TopicDescription } from "../log/api.ts";

/** Starts following; returns the function that stops it. */
export function followAssignments(view: ClusterView, context: BrokerContext): () => void {
  const ensure = (topic: string): void => {
    const partitions = view.partitionCount(topic);
    const config = view.topicConfig(topic);
    if (partitions === undefined || config === undefined) return;
    if (context.log.hasTopic(topic)) return applyTopicChange(context, topic, partitions, config);
    if (!isAssignedHere(view, topic)) return;
    ensureLocalTopic(context, topic, partitions, config).then(
      // A change that came while the copy was being made (more partitions, a config) is applied now.
      () => ensure(topic),
      (error: unknown) => context.logger.error({ topic, error: toRunnelError(error).message }, "could not create an assigned topic in the local log"),
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
    for (let partition = 0; partition < (view.partitionCount(topic) ?? 0); partition++) {
      if (view.partitionState(topic, partition)?.replicas.includes(view.brokerId) === false) queueMicrotask(() => releaseRemovedReplica(view, context, topic, partition));
    }
  }
  return view.subscribe((event) => {
    if (event.kind === "partition") {
      ensure(event.topic);
      // After every listener of this event ran: the replica manager has stopped fetching it.
      if (!event.state.replicas.includes(view.brokerId)) queueMicrotask(() => releaseRemovedReplica(view, context, event.topic, event.partition));
    } else if (event.kind === "topic") ensure(event.topic);
    else if (event.kind === "topicDeleted") remove(event.topic);
  });
}

/**
 * A reassignment took this broker out of a partition's replicas: its local copy is emptied
 * (Partition.truncateTo the log start: crash-safe, segments deleted). Only once etcd says so (the
 * event is the stored state), never while this broker leads or fetches it. The topic itself stays
 * in the local log even when no partition of it is left here: group commits sent to this broker
 * are checked against the local topic (docs/cluster.md, "Adding a broker and moving partitions").
 */
function releaseRemovedReplica(view: ClusterView, context: BrokerContext, topic: string, index: number): void {
  const state = view.partitionState(topic, index);
  if (state === undefined || state.replicas.includes(view.brokerId) || state.leader === view.brokerId) return;
  if (view.partitionCount(topic) === undefined || !context.log.hasTopic(topic) || context.replication?.isLeader(topic, index) === true) return;
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

/**
 * The local copy catches up with the cluster's record: config overrides applied when they differ
 * from the local ones, missing partitions added (growLocalTopic).
 */
function applyTopicChange(context: BrokerContext, topic: string, partitions: number, config: Readonly<Record<string, unknown>>): void {
  const local = context.log.describeTopic(topic);
  const report = (what: string) => (error: unknown) => context.logger.error({ topic, error: toRunnelError(error).message }, what);
  if (Object.entries(config).some(([name, value]) => (local.config as unknown as Record<string, unknown>)[name] !== value)) {
    try {
      context.log.alterTopicConfig(topic, config as Partial<TopicConfig>);
    } catch (error) {
      report("could not apply the cluster's topic config to the local copy")(error);
    }
  }
  if (partitions > local.partitions.length) growLocalTopic(context, topic, partitions).catch(report("could not add the cluster's new partitions to the local copy"));
}

/** Growths under way, per log and topic: the createPartitions handler and the follower share them. */
const growing = new WeakMap<BrokerContext["log"], Map<string, Promise<TopicDescription>>>();

/**
 * The local copy with at least `total` partitions, grown now when it has fewer (one growth at a
 * time per topic; a count below the local one is left alone: partitions are never removed). The
 * data plane then takes the new partitions' roles: followers start fetching.
 */
export function growLocalTopic(context: BrokerContext, topic: string, total: number): Promise<TopicDescription> {
  let pending = growing.get(context.log);
  if (pending === undefined) {
    pending = new Map();
    growing.set(context.log, pending);
  }
  const earlier = pending.get(topic) ?? Promise.resolve(context.log.describeTopic(topic));
  const next = earlier
    .catch(() => context.log.describeTopic(topic))
    .then(async () => {
      const current = context.log.describeTopic(topic);
      if (current.partitions.length >= total) return current;
      const grown = await context.log.addPartitionsAsync(topic, total);
      context.replication?.refreshTopic(topic);
      context.groups.topicsChanged();
      return grown;
    });
  pending.set(topic, next);
  const tail = pending;
  void next.then(
    () => tail.get(topic) === next && tail.delete(topic),
    () => tail.get(topic) === next && tail.delete(topic),
  );
  return next;
}

function isAssignedHere(view: ClusterView, topic: string): boolean {
  const count = view.partitionCount(topic);
  if (count === undefined) return false;
  for (let partition = 0; partition < count; partition += 1) {
    if (view.partitionState(topic, partition)?.replicas.includes(view.brokerId) === true) return true;
  }
  return false;
}
