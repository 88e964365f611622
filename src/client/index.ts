/**
 * @module client
 * The Runnel client library (`runnel/client`): Producer, Consumer and Admin, their options
 * and message types, and RunnelError with its stable codes. Everything else under
 * src/client/ is internal and may change.
 *
 *   const producer = new Producer({ broker: "127.0.0.1:9600" });
 *   await producer.send("events", { key: "user-1", value: "signed up" });
 *
 *   const consumer = new Consumer({ broker: "127.0.0.1:9600", groupId: "mailer" }).subscribe("events");
 *   for await (const message of consumer) console.log(message.offset, new TextDecoder().decode(message.value!));
 */
export { Producer } from "./producer.ts";
export type { Durability, ProducerMessage, ProducerOptions, SendResult } from "./producer.ts";
export { Consumer } from "./consumer.ts";
export type { Assignment, ConsumerOptions, Message, OffsetResetPolicy, StartPosition } from "./consumer.ts";
export { GroupConsumer } from "./group-consumer.ts";
export type { GroupConsumerOptions, TopicPartition } from "./group-consumer.ts";
export { Admin } from "./admin.ts";
export type { AdminOptions, PartitionDescription, TopicConfig, TopicDescription, TopicSummary } from "./admin.ts";
export type { BrokerInfo, ConnectionOptions } from "./connection.ts";
export type { ClientTls } from "./link.ts";
export { DEFAULT_BROKER } from "./connection.ts";
export type { ListOffsetsAt, OffsetRequest } from "./offsets.ts";
export { murmur2, partitionForKey } from "./partitioner.ts";
export { ERROR_CODES, RunnelError } from "../errors.ts";
export type { ErrorCode } from "../errors.ts";
