/**
 * @module listeners/kafka/handlers/init-producer-id
 * InitProducerId (key 22), versions 0-4 (2+ flexible). An idempotent Kafka producer gets its id
 * and epoch from the same allocator as native producers (broker/producer-ids.ts), so its batches
 * go through the same per-partition producer state (sequence checks, retries answered with the
 * original offsets). v3+ may name the id and epoch it holds: it gets the next epoch, as native
 * initProducer does. A transactional id is refused (INVALID_REQUEST, 42): no transactions yet.
 */
import type { KafkaStruct } from "../codec.ts";
import type { KafkaContext } from "../context.ts";
import { KAFKA_ERROR } from "../errors.ts";

export function handleInitProducerId(context: KafkaContext, request: KafkaStruct, version: number): KafkaStruct {
  if (request.transactionalId !== null) {
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.INVALID_REQUEST, producerId: -1, producerEpoch: -1 };
  }
  const current: { producerId?: number; producerEpoch?: number } = {};
  if (version >= 3 && (request.producerId as number) >= 0 && (request.producerEpoch as number) >= 0) {
    current.producerId = request.producerId as number;
    current.producerEpoch = request.producerEpoch as number;
  }
  const identity = context.broker.producerIds.initialize(current);
  return { throttleTimeMs: 0, errorCode: 0, producerId: identity.producerId, producerEpoch: identity.producerEpoch };
}
