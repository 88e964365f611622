/**
 * @module server/handlers/init-producer
 * `initProducer`: gives an idempotent producer its identity. Without fields: a new producer id
 * (never handed out before, across restarts too) with epoch 0. With the `producerId` and
 * `producerEpoch` the producer holds: the same id with the next epoch, which fences batches of
 * the older epoch (INVALID_PRODUCER_EPOCH) and restarts its sequences at 0 on every partition.
 * The producer then stamps every batch with its id, epoch and per-partition base sequence;
 * partitions use them to answer retries with the original offsets (src/log/producer-state.ts).
 *
 * Non-obvious: a claimed id above every id issued so far gets a new identity instead of a bump;
 * an epoch at its i16 limit does too.
 */
import type { RequestOf } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

export function handleInitProducer(context: BrokerContext, request: RequestOf<"initProducer">, id: number): Reply {
  const current: { producerId?: number; producerEpoch?: number } = {};
  if (request.producerId !== undefined) current.producerId = request.producerId;
  if (request.producerEpoch !== undefined) current.producerEpoch = request.producerEpoch;
  const identity = context.producerIds.initialize(current);
  context.logger.debug({ ...identity, bumped: request.producerId === identity.producerId }, "producer initialized");
  return frameReply(id, { producerId: identity.producerId, producerEpoch: identity.producerEpoch });
}
