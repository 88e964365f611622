/**
 * @module server/topic-creation
 * Auto-creation of the missing topics one request names (metadata with autoCreate, produce):
 * at most topicCreatesPerRequestMax of them (LIMIT_EXCEEDED for each one past it), each admitted
 * by topic-rules.ts (name, topicsMax, partitionsMax, the creation rate), all created at once off
 * the event loop by the log (createTopicAsync), which group-commits their directory fsyncs.
 * A topic some other request is creating at the same time counts as created once it exists.
 * Cluster mode: the topic is created through the cluster view (placement over the live brokers,
 * replication factor 1: Runnel has no default replication factor option yet), as createTopic does.
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import type { BrokerContext } from "./context.ts";
import { yieldToLoop } from "../log/topic-staging.ts";
import { admitAutoCreate, checkTopicName } from "./topic-rules.ts";
import { createTopicInCluster } from "../cluster/cluster-topic-admin.ts";

/** Longest run of create starts before yielding to other callbacks. */
const START_SLICE_MS = 4;

/** The names among `names` that no topic has yet, each once, in first-seen order. */
export function missingTopics(context: BrokerContext, names: Iterable<string>): string[] {
  const missing: string[] = [];
  let seen: Set<string> | null = null;
  for (const name of names) {
    if (context.log.hasTopic(name)) continue;
    // Cluster mode: a topic the cluster has is not missing, even where this broker holds no replica of it.
    if (context.cluster !== null && context.cluster.partitionCount(name) !== undefined) continue;
    seen ??= new Set();
    if (seen.has(name)) continue;
    seen.add(name);
    missing.push(name);
  }
  return missing;
}

/** Creates the missing topics `names`; resolves with the error of each one not created. */
export async function autoCreateTopics(context: BrokerContext, names: readonly string[]): Promise<Map<string, RunnelError>> {
  const failures = new Map<string, RunnelError>();
  const creates: Array<Promise<void>> = [];
  const createsMax = context.config.topicCreatesPerRequestMax;
  // One error for every name past the cap: building thousands would itself hold the loop.
  let overCap: RunnelError | null = null;
  let sliceStartMs = performance.now();
  for (const name of names) {
    if (performance.now() - sliceStartMs > START_SLICE_MS) {
      // Starting hundreds of creates is itself work: let other clients in between.
      await yieldToLoop();
      sliceStartMs = performance.now();
    }
    if (creates.length >= createsMax) {
      // The name rule still comes first (docs/protocol.md 6.1): an invalid name past the cap is INVALID_TOPIC_NAME.
      const invalid = nameError(name);
      if (invalid !== null) {
        failures.set(name, invalid);
        continue;
      }
      overCap ??= new RunnelError("LIMIT_EXCEEDED", `a request may create at most ${createsMax} topics; the topics past that many were not created (name them again in another request)`, {
        details: { topicCreatesPerRequestMax: createsMax },
      });
      failures.set(name, overCap);
      continue;
    }
    try {
      admitAutoCreate(context, name);
    } catch (error) {
      failures.set(name, toRunnelError(error));
      continue;
    }
    creates.push(createOne(context, name, failures));
  }
  await Promise.all(creates);
  // Groups subscribed to a topic before it existed take its partitions now.
  if (creates.length > 0) context.groups.topicsChanged();
  return failures;
}

function nameError(name: string): RunnelError | null {
  try {
    checkTopicName(name);
    return null;
  } catch (error) {
    return toRunnelError(error);
  }
}

async function createOne(context: BrokerContext, name: string, failures: Map<string, RunnelError>): Promise<void> {
  const view = context.cluster;
  try {
    if (view === null) await context.log.createTopicAsync(name, { partitions: context.config.defaultPartitions });
    else await createTopicInCluster(context, view, name, context.config.defaultPartitions, { replicationFactor: 1, minInsyncReplicas: 1 }, {});
  } catch (error) {
    const failure = toRunnelError(error);
    // Another request created it meanwhile: what this one wanted.
    if (failure.code === "TOPIC_EXISTS" && (context.log.hasTopic(name) || view?.partitionCount(name) !== undefined)) return;
    failures.set(name, failure);
  }
}
