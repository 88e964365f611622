/**
 * @module server/handlers/list-offsets
 * `listOffsets`: for each partition, the offset at `"earliest"` (log start), `"latest"` (next
 * offset) or a timestamp — the base offset of the first batch whose max timestamp is at or
 * after it, or the next offset when no batch is that recent. Per-partition errors.
 * Non-obvious: timestamps resolve to a batch, so the offset returned may hold records older
 * than asked for; the consumer skips them by their own timestamps.
 */
import { toRunnelError } from "../../errors.ts";
import { type RequestOf, toWireError } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";
import { findPartition } from "../topic-rules.ts";
import type { Session } from "../../security/session.ts";
import { deniedTopics } from "../access.ts";

/** Needs read on each topic (authorizer acl): AUTHORIZATION_FAILED per partition otherwise. */
export function handleListOffsets(context: BrokerContext, request: RequestOf<"listOffsets">, id: number, session: Session): Reply {
  const denied = deniedTopics(context, session, "read", request.partitions);
  const partitions = request.partitions.map(({ topic, partition, at }) => {
    try {
      const refusal = denied?.get(topic);
      if (refusal !== undefined) throw refusal;
      const log = findPartition(context, topic, partition);
      // "latest" is the high watermark: the log end on a single node, what the ISR holds in a cluster.
      const offset = at === "earliest" ? log.logStartOffset : at === "latest" ? log.highWatermark : (log.offsetForTimestamp(at) ?? log.highWatermark);
      return { topic, partition, offset };
    } catch (error) {
      return { topic, partition, error: toWireError(toRunnelError(error)) };
    }
  });
  return frameReply(id, { partitions });
}
