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
 */
import { RunnelError, toRunnelError } from "../../errors.ts";
import { type RequestOf, toWireError } from "../../protocol/messages.ts";
import { appliedLater, type BrokerContext, frameReply, type Reply } from "../context.ts";
import { autoCreateTopics, missingTopics } from "../topic-creation.ts";

const NO_FAILURES: ReadonlyMap<string, RunnelError> = new Map();

export function handleMetadata(context: BrokerContext, request: RequestOf<"metadata">, id: number): Reply | Promise<Reply> {
  const names = request.topics ?? context.log.listTopics().sort();
  if (request.autoCreate !== true || request.topics === undefined) return describeTopics(context, names, id, NO_FAILURES);
  const missing = missingTopics(context, names);
  if (missing.length === 0) return describeTopics(context, names, id, NO_FAILURES);
  return appliedLater(autoCreateTopics(context, missing).then((failures) => describeTopics(context, names, id, failures)));
}

function describeTopics(context: BrokerContext, names: readonly string[], id: number, failures: ReadonlyMap<string, RunnelError>): Reply {
  const topics = names.map((name) => {
    try {
      const failure = failures.get(name);
      if (failure !== undefined) throw failure;
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
