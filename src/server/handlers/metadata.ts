/**
 * @module server/handlers/metadata
 * `metadata`: topics with their partitions' log start and next offsets. Without `topics`, every
 * topic; with it, those named, in that order — an unknown one gets an entry with `error`
 * (UNKNOWN_TOPIC) instead of `partitions`. With `autoCreate: true` (what producers send) a
 * named topic that is missing is created first, when the broker's `autoCreateTopics` is on, so a
 * producer can learn the partition count of a topic its first send creates.
 */
import { toRunnelError } from "../../errors.ts";
import { type RequestOf, toWireError } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";
import { ensureTopic, requireTopic } from "../topic-rules.ts";

export function handleMetadata(context: BrokerContext, request: RequestOf<"metadata">, id: number): Reply {
  const names = request.topics ?? context.log.listTopics().sort();
  const topics = names.map((name) => {
    try {
      if (request.autoCreate && request.topics !== undefined) ensureTopic(context, name);
      else requireTopic(context, name);
      const description = context.log.describeTopic(name);
      const partitions = description.partitions.map((info) => ({
        partition: info.partition,
        logStartOffset: info.logStartOffset,
        nextOffset: info.nextOffset,
      }));
      return { name, partitions };
    } catch (error) {
      return { name, error: toWireError(toRunnelError(error)) };
    }
  });
  return frameReply(id, { topics });
}
