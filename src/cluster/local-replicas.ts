/**
 * @module cluster/local-replicas
 * Keeps this broker's log in step with the topics etcd assigns it: a topic with a partition
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
  // Topics whose local copy is being grown: a change that comes meanwhile is applied after it.
  const growing = new Set<string>();
  const ensure = (topic: string): void => {
    const partitions = view.partitionCount(topic);
    const config = view.topicConfig(topic);
    if (partitions === undefined || config === undefined) return;
    if (context.log.hasTopic(topic)) {
      if (growing.has(topic)) return;
      const grown = applyTopicChange(context, topic, partitions, config);
      if (grown === null) return;
      growing.add(topic);
      void grown.then((done) => {
        growing.delete(topic);
        // Another change may have come meanwhile (not after a failure: that would spin).
        if (done) ensure(topic);
      });
      return;
    }
    if (!isAssignedHere(view, topic)) return;
    ensureLocalTopic(context, topic, partitions, config).catch((error: unknown) =>
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
  for (const topic of view.topicNames()) ensure(topic);
  return view.subscribe((event) => {
    if (event.kind === "partition" || event.kind === "topic") ensure(event.topic);
    else if (event.kind === "topicDeleted") remove(event.topic);
  });
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
 * The local copy catches up with the cluster's record: missing partitions added (then the data
 * plane learns of them), config overrides applied when they differ from the local ones. A
 * partition count below the local one is left alone: partitions are never removed.
 */
function applyTopicChange(context: BrokerContext, topic: string, partitions: number, config: Readonly<Record<string, unknown>>): Promise<boolean> | null {
  const local = context.log.describeTopic(topic);
  const report = (what: string) => (error: unknown) => context.logger.error({ topic, error: toRunnelError(error).message }, what);
  if (Object.entries(config).some(([name, value]) => (local.config as unknown as Record<string, unknown>)[name] !== value)) {
    try {
      context.log.alterTopicConfig(topic, config as Partial<TopicConfig>);
    } catch (error) {
      report("could not apply the cluster's topic config to the local copy")(error);
    }
  }
  if (partitions <= local.partitions.length) return null;
  return context.log.addPartitionsAsync(topic, partitions).then(
    () => {
      context.replication?.refreshTopic(topic);
      context.groups.topicsChanged();
      return true;
    },
    (error: unknown) => {
      report("could not add the cluster's new partitions to the local copy")(error);
      return false;
    },
  );
}

function isAssignedHere(view: ClusterView, topic: string): boolean {
  const count = view.partitionCount(topic);
  if (count === undefined) return false;
  for (let partition = 0; partition < count; partition += 1) {
    if (view.partitionState(topic, partition)?.replicas.includes(view.brokerId) === true) return true;
  }
  return false;
}
