/**
 * @module server/handlers/topics
 * Topic administration: `createTopic`, `deleteTopic`, `describeTopic`, `createPartitions`,
 * `alterTopicConfig`. Each answers with the topic's description (`deleteTopic` with `{}`).
 * The broker's limits (name rule, topicsMax, partitionsPerTopicMax) are checked here; the log
 * manager validates the config values and persists them.
 * Non-obvious: createPartitions takes the new TOTAL count and can only grow a topic
 * (INVALID_PARTITIONS otherwise) — keyed messages would map to other partitions after it.
 */
import { RunnelError } from "../../errors.ts";
import type { TopicConfig } from "../../log/api.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";
import { checkPartitionCount, checkTopicName, checkTopicRoom, toWireTopic } from "../topic-rules.ts";

export function handleCreateTopic(context: BrokerContext, request: RequestOf<"createTopic">, id: number): Reply {
  checkTopicName(request.topic);
  checkPartitionCount(context, request.partitions);
  if (context.log.hasTopic(request.topic)) throw new RunnelError("TOPIC_EXISTS", `topic '${request.topic}' already exists`);
  checkTopicRoom(context);
  const options: { partitions: number; config?: Partial<TopicConfig> } = { partitions: request.partitions };
  if (request.config !== undefined) options.config = request.config as Partial<TopicConfig>;
  const description = context.log.createTopic(request.topic, options);
  context.logger.info({ topic: request.topic, partitions: request.partitions }, "topic created");
  return frameReply(id, { topic: toWireTopic(description) });
}

export function handleDeleteTopic(context: BrokerContext, request: RequestOf<"deleteTopic">, id: number): Reply {
  requireTopic(context, request.topic);
  context.log.deleteTopic(request.topic);
  context.logger.info({ topic: request.topic }, "topic deleted");
  return frameReply(id, {});
}

export function handleDescribeTopic(context: BrokerContext, request: RequestOf<"describeTopic">, id: number): Reply {
  requireTopic(context, request.topic);
  return frameReply(id, { topic: toWireTopic(context.log.describeTopic(request.topic)) });
}

export function handleCreatePartitions(context: BrokerContext, request: RequestOf<"createPartitions">, id: number): Reply {
  requireTopic(context, request.topic);
  checkPartitionCount(context, request.partitions);
  const current = context.log.describeTopic(request.topic).partitions.length;
  if (request.partitions <= current) {
    throw new RunnelError("INVALID_PARTITIONS", `topic '${request.topic}' has ${current} partitions; the new total must be larger`);
  }
  return frameReply(id, { topic: toWireTopic(context.log.addPartitions(request.topic, request.partitions)) });
}

export function handleAlterTopicConfig(context: BrokerContext, request: RequestOf<"alterTopicConfig">, id: number): Reply {
  requireTopic(context, request.topic);
  return frameReply(id, { topic: toWireTopic(context.log.alterTopicConfig(request.topic, request.config as Partial<TopicConfig>)) });
}

function requireTopic(context: BrokerContext, topic: string): void {
  if (!context.log.hasTopic(topic)) throw new RunnelError("UNKNOWN_TOPIC", `unknown topic '${topic}'`);
}
