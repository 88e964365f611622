/**
 * @module listeners/kafka/handlers/delete-topics
 * DeleteTopics (key 20), versions 0-6 (4+ flexible; v6 names topics in structs that may carry a
 * topic id instead). Topics are deleted by name, one after another, through the native
 * deleteTopic handler so both protocols share its order (committed offsets, then the log).
 * A topic given only by id gets UNKNOWN_TOPIC_ID (100): Runnel keeps no topic ids yet.
 */
import { handleDeleteTopic } from "../../../server/handlers/topics.ts";
import type { Session } from "../../../security/session.ts";
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

const ZERO_UUID = new Uint8Array(16);

export async function handleDeleteTopics(context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const names: Array<string | null> = version >= 6 ? (request.topics as Array<{ name: string | null }>).map((topic) => topic.name) : (request.topicNames as string[]);
  const responses: KafkaStruct[] = [];
  for (const name of names) responses.push(await deleteOne(context, name, info.session));
  return { throttleTimeMs: 0, responses };
}

/** Needs delete on the topic (TOPIC_AUTHORIZATION_FAILED otherwise), checked by the native handler. */
async function deleteOne(context: KafkaContext, name: string | null, session: Session): Promise<KafkaStruct> {
  if (name === null) return { name: null, topicId: ZERO_UUID, errorCode: KAFKA_ERROR.UNKNOWN_TOPIC_ID, errorMessage: "topic ids are not supported; delete by name" };
  try {
    await handleDeleteTopic(context.broker, { topic: name }, 0, session);
    return { name, topicId: ZERO_UUID, errorCode: 0, errorMessage: null };
  } catch (error) {
    const { errorCode, errorMessage } = kafkaErrorOf(error);
    return { name, topicId: ZERO_UUID, errorCode, errorMessage };
  }
}
