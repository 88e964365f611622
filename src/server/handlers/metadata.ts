/**
 * @module server/handlers/metadata
 * `metadata`: topics with their partitions' log start and next offsets. Without `topics`, every
 * topic; with it, those named, in that order — an unknown one gets an entry with `error`
 * (UNKNOWN_TOPIC) instead of `partitions`. With `autoCreate: true` (what producers send) a
 * named topic that is missing is created first, when the broker's `autoCreateTopics` is on, so a
 * producer can learn the partition count of a topic its first send creates.
 *
 * Non-obvious: creating is asynchronous (off the event loop, server/topic-creation.ts), and the
 * request then holds its connection's later requests until the topics exist (appliedLater).
 * Names past topicCreatesPerRequestMax, or refused by the creation rate, get their own error
 * entry (LIMIT_EXCEEDED, THROTTLED); the others are answered as usual.
 * Authorization (authorizer acl): without `topics`, only the topics the principal may describe
 * are listed; a named one it may not describe gets AUTHORIZATION_FAILED whether it exists or not,
 * and a missing one is auto-created only when the principal may create it.
 * Cluster mode (docs/cluster.md): the answer also lists every live broker (`brokers`), and each
 * partition its `leader`, `leaderEpoch`, `replicas` and `isr` as the cluster view holds them
 * (leader -1 while the partition has none, or the view has no state for it yet). It lists every
 * topic of the cluster, not only this broker's: a topic this broker holds no replica of is
 * described from the view, with logStartOffset and nextOffset -1 (ask its leader: listOffsets).
 */
import { RunnelError, toRunnelError } from "../../errors.ts";
import { yieldToLoop } from "../../log/topic-staging.ts";
import { type RequestOf, toWireError, type WireError } from "../../protocol/messages.ts";
import { appliedLater, type BrokerContext, frameReply, type Reply } from "../context.ts";
import { autoCreateTopics, missingTopics } from "../topic-creation.ts";
import { requireTopic } from "../topic-rules.ts";
import type { Session } from "../../security/session.ts";
import { authorize, isAuthorizationOn, topicResource } from "../../security/authorizer.ts";
import { deniedTopics, mayCreateTopic } from "../access.ts";

const NO_FAILURES: ReadonlyMap<string, RunnelError> = new Map();
/** Topic entries built between checks of the slice's time. */
const DESCRIBE_SLICE_TOPICS = 500;
const DESCRIBE_SLICE_MS = 4;

export function handleMetadata(context: BrokerContext, request: RequestOf<"metadata">, id: number, session: Session): Reply | Promise<Reply> {
  const names = request.topics ?? describableTopics(context, session, allTopics(context));
  const denied = request.topics === undefined || !isAuthorizationOn(context) ? null : deniedTopics(context, session, "describe", names.map((topic) => ({ topic })));
  const refused = denied ?? NO_FAILURES;
  if (request.autoCreate !== true || request.topics === undefined) return describeTopics(context, names, id, refused);
  const missing = missingTopics(context, names).filter((topic) => !refused.has(topic) && mayCreateTopic(context, session, topic));
  if (missing.length === 0) return describeTopics(context, names, id, refused);
  return appliedLater(createThenDescribe(context, names, missing, id, refused));
}

/** This broker's topics, and in a cluster every topic the cluster has, sorted. */
function allTopics(context: BrokerContext): string[] {
  const local = context.log.listTopics();
  if (context.cluster === null) return local.sort();
  return [...new Set([...local, ...context.cluster.topicNames()])].sort();
}

function describableTopics(context: BrokerContext, session: Session, names: string[]): string[] {
  if (!isAuthorizationOn(context)) return names;
  return names.filter((name) => authorize(context, session, "describe", topicResource(name)));
}

/** The slow path, in slices: decoding a large request was already work, so each step yields first. */
async function createThenDescribe(context: BrokerContext, names: readonly string[], missing: readonly string[], id: number, refused: ReadonlyMap<string, RunnelError>): Promise<Reply> {
  await yieldToLoop();
  const failures = await autoCreateTopics(context, missing);
  for (const [topic, refusal] of refused) failures.set(topic, refusal);
  const topics: TopicEntry[] = [];
  let sliceStartMs = performance.now();
  for (let first = 0; first < names.length; first += DESCRIBE_SLICE_TOPICS) {
    if (performance.now() - sliceStartMs > DESCRIBE_SLICE_MS) {
      await yieldToLoop();
      sliceStartMs = performance.now();
    }
    topics.push(...topicEntries(context, names.slice(first, first + DESCRIBE_SLICE_TOPICS), failures));
  }
  await yieldToLoop();
  return frameReply(id, { topics, ...clusterBrokers(context) });
}

function describeTopics(context: BrokerContext, names: readonly string[], id: number, failures: ReadonlyMap<string, RunnelError>): Reply {
  return frameReply(id, { topics: topicEntries(context, names, failures), ...clusterBrokers(context) });
}

/** Cluster mode: `{brokers}` (every live broker); a single node adds nothing. */
function clusterBrokers(context: BrokerContext): { brokers?: ReadonlyArray<{ brokerId: number; host: string; port: number; kafkaPort: number | null }> } {
  const cluster = context.cluster;
  if (cluster === null) return {};
  return { brokers: cluster.brokers().map(({ brokerId, host, port, kafkaPort }) => ({ brokerId, host, port, kafkaPort })) };
}

/** Cluster mode: a partition's leader, epoch, replicas and ISR from the view. */
function clusterPartition(context: BrokerContext, topic: string, partition: number): { leader?: number; leaderEpoch?: number; replicas?: readonly number[]; isr?: readonly number[] } {
  const cluster = context.cluster;
  if (cluster === null) return {};
  const state = cluster.partitionState(topic, partition);
  if (state === undefined) return { leader: -1, leaderEpoch: -1, replicas: [], isr: [] };
  return { leader: state.leader, leaderEpoch: state.leaderEpoch, replicas: state.replicas, isr: state.isr };
}

/** Cluster mode: a topic the cluster has and this broker holds no replica of, from the view; null otherwise. */
function remoteTopicEntry(context: BrokerContext, name: string): TopicEntry | null {
  const cluster = context.cluster;
  if (cluster === null || context.log.hasTopic(name)) return null;
  const count = cluster.partitionCount(name);
  if (count === undefined) return null;
  const partitions = Array.from({ length: count }, (_, partition) => ({ partition, logStartOffset: -1, nextOffset: -1, ...clusterPartition(context, name, partition) }));
  return { name, partitions };
}

type PartitionEntry = { partition: number; logStartOffset: number; nextOffset: number; leader?: number; leaderEpoch?: number; replicas?: readonly number[]; isr?: readonly number[] };
type TopicEntry = { name: string; partitions: PartitionEntry[] } | { name: string; error: WireError };

function topicEntries(context: BrokerContext, names: readonly string[], failures: ReadonlyMap<string, RunnelError>): TopicEntry[] {
  // One wire error per distinct error: thousands of names past the cap share one.
  const wireErrors = new Map<RunnelError, WireError>();
  return names.map((name) => {
    try {
      const failure = failures.get(name);
      if (failure !== undefined) throw failure;
      const remote = remoteTopicEntry(context, name);
      if (remote !== null) return remote;
      requireTopic(context, name);
      const description = context.log.describeTopic(name);
      const partitions = description.partitions.map((info) => ({
        partition: info.partition,
        logStartOffset: info.logStartOffset,
        nextOffset: info.nextOffset,
        ...clusterPartition(context, name, info.partition),
      }));
      return { name, partitions };
    } catch (error) {
      const failure = toRunnelError(error);
      let wire = wireErrors.get(failure);
      if (wire === undefined) {
        wire = toWireError(failure);
        wireErrors.set(failure, wire);
      }
      return { name, error: wire };
    }
  });
}
