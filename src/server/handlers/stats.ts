/**
 * @module server/handlers/stats
 * `stats`: the broker's counters (server/stats.ts) plus uptime, topic count, the send path in
 * use, the number of committed consumer-group offsets and the buffered-bytes budget's use. Cheap; meant for tests and operators.
 */
import type { RequestOf } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import { requireClusterAccess } from "../access.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

/** Needs describe on the cluster (authorizer acl). */
export function handleStats(context: BrokerContext, _request: RequestOf<"stats">, id: number, session: Session): Reply {
  requireClusterAccess(context, session, "describe");
  return frameReply(id, {
    ...context.stats,
    fetchesWaiting: context.notifier.size,
    uptimeMs: Date.now() - context.startedAtMs,
    topics: context.log.listTopics().length,
    committedOffsets: context.offsets.size,
    sendPath: context.zeroCopy ? "sendfile" : "copy",
    bufferedBytes: context.memory.usedBytes,
    bufferedBytesPeak: context.memory.peakBytes,
    bufferedBytesMax: context.memory.bytesMax,
    connectionsWaitingForMemory: context.memory.waiting,
    memoryCollections: context.memory.collections,
    memoryCollectionMsMax: Math.round(context.memory.collectionMsMax * 10) / 10,
  });
}
