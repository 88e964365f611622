/**
 * @module cluster/cluster-topic-admin
 * Topic administration in cluster mode, shared by the native handlers, the Kafka handlers and
 * auto-creation: the change goes to the cluster's store through the ClusterView (etcd: one txn),
 * and the answer is given once this broker's view holds the result, so a client that asks any
 * broker's metadata right after sees the topic with its leaders (as Kafka's CreateTopics answers
 * once the controller wrote the partitions). The broker asked also applies the change to its
 * own log before answering (the others do when their view reports it: cluster/local-replicas.ts).
 *
 * The callers validate first as on a single node (name, partition bounds, config values): a
 * refused request changes nothing in the store.
 */
import { topicDefaultsOf } from "../config.ts";
import { RunnelError } from "../errors.ts";
import type { TopicConfig, TopicDescription } from "../log/api.ts";
import { resolveTopicConfig } from "../log/topic-config.ts";
import type { BrokerContext } from "../server/context.ts";
import type { ClusterView, TopicReplication } from "./cluster-view.ts";
import { ensureLocalTopic, growLocalTopic } from "./local-replicas.ts";

/** How long an answer waits for this broker's view to show the change (etcd's watch: milliseconds). */
export const VIEW_CATCH_UP_WAIT_MS = 10_000;

/** Creates the topic in the cluster, waits until the view names every partition's leader, then the local copy. */
export async function createTopicInCluster(
  context: BrokerContext,
  view: ClusterView,
  topic: string,
  partitions: number,
  replication: TopicReplication,
  config: Record<string, unknown>,
): Promise<TopicDescription> {
  if (replication.minInsyncReplicas > replication.replicationFactor) {
    throw new RunnelError("INVALID_CONFIG", `minInsyncReplicas ${replication.minInsyncReplicas} is more than the replication factor ${replication.replicationFactor}`);
  }
  // Bad values are refused before anything is stored (the replicas could not apply them).
  resolveTopicConfig(clusterBaseConfig(context, view, topic), config);
  await view.createTopic(topic, partitions, replication, config);
  await leadersKnown(view, topic, partitions, VIEW_CATCH_UP_WAIT_MS);
  await ensureLocalTopic(context, topic, partitions, config);
  // A copy started from an earlier, partial view (a watch that split the txn) grows to the count.
  return growLocalTopic(context, topic, partitions);
}

/** Grows the topic in the cluster to `total`; answers with the local copy grown too. */
export async function growTopicInCluster(context: BrokerContext, view: ClusterView, topic: string, total: number): Promise<TopicDescription> {
  await view.createPartitions(topic, total);
  await leadersKnown(view, topic, total, VIEW_CATCH_UP_WAIT_MS);
  if (!context.log.hasTopic(topic)) return ensureLocalTopic(context, topic, total, { ...view.topicConfig(topic) });
  return growLocalTopic(context, topic, total);
}

/**
 * Merges `config` into the topic's overrides in the cluster, validated against the topic's
 * config first (INVALID_CONFIG stores nothing); answers with the topic as this broker then holds it.
 */
export async function alterTopicConfigInCluster(context: BrokerContext, view: ClusterView, topic: string, config: Partial<TopicConfig>): Promise<TopicDescription> {
  resolveTopicConfig(currentConfig(context, view, topic), config);
  await view.alterTopicConfig(topic, config);
  if (context.log.hasTopic(topic)) return context.log.alterTopicConfig(topic, config);
  return describeFromView(context, view, topic);
}

/** The config a cluster topic has, from the local copy or else from its stored overrides. */
export function currentConfig(context: BrokerContext, view: ClusterView, topic: string): TopicConfig {
  if (context.log.hasTopic(topic)) return context.log.describeTopic(topic).config;
  if (view.topicConfig(topic) === undefined) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}'`);
  return clusterBaseConfig(context, view, topic);
}

/** A topic this broker holds no copy of, from the view: offsets -1 (ask its leaders), no files. */
export function describeFromView(context: BrokerContext, view: ClusterView, topic: string): TopicDescription {
  const count = view.partitionCount(topic);
  if (count === undefined) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}'`);
  const partitions = Array.from({ length: count }, (_, partition) => ({ topic, partition, logStartOffset: -1, nextOffset: -1, sizeBytes: 0, segmentCount: 0 }));
  return { name: topic, partitions, config: clusterBaseConfig(context, view, topic) };
}

/** True when the view assigns this broker a replica of some partition of `topic`. */
export function isReplicaHere(view: ClusterView, topic: string): boolean {
  const count = view.partitionCount(topic) ?? 0;
  for (let partition = 0; partition < count; partition += 1) {
    if (view.partitionState(topic, partition)?.replicas.includes(view.brokerId) === true) return true;
  }
  return false;
}

/** The broker's topic defaults overlaid with the topic's stored overrides. */
function clusterBaseConfig(context: BrokerContext, view: ClusterView, topic: string): TopicConfig {
  return resolveTopicConfig(topicDefaultsOf(context.config), view.topicConfig(topic) ?? {});
}

/**
 * Resolves true once the view holds a state with a leader for each of partitions 0..count-1, or
 * false after `boundMs` (the change is stored; clients retry metadata until it shows).
 */
export function leadersKnown(view: ClusterView, topic: string, count: number, boundMs: number): Promise<boolean> {
  const known = () => {
    if ((view.partitionCount(topic) ?? 0) < count) return false;
    for (let partition = 0; partition < count; partition += 1) if ((view.partitionState(topic, partition)?.leader ?? -1) < 0) return false;
    return true;
  };
  if (known()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (result: boolean) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(result);
    };
    const timer = setTimeout(() => finish(false), boundMs);
    const unsubscribe = view.subscribe(() => {
      if (known()) finish(true);
    });
  });
}
