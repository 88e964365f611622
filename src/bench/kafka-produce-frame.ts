/**
 * @module bench/kafka-produce-frame
 * The bench's Kafka producer writes each Produce v9 request (one topic, one partition, one batch)
 * by hand around its batch, in the batch buffer's own headroom and tailroom, so the request goes
 * to the socket as one chunk and the batch is never copied — what librdkafka gets from one
 * writev(2) per request, and what the native client does (client/produce-frame.ts). The generic
 * codec path (KafkaWire.request) sends three chunks (head, records, 3-byte tail): three sends,
 * three loopback deliveries and broker wake-ups per request. The bytes are the same; a test
 * decodes them with the broker's codec.
 *
 *   int32 size | int16 apiKey 0 | int16 version 9 | int32 correlationId | int16 clientId length,
 *   clientId | tagged fields: 0 | transactionalId: compact nullable string, 0 = null | int16 acks |
 *   int32 timeoutMs | topicData: uvarint 2 (one) | name: uvarint length+1, UTF-8 |
 *   partitionData: uvarint 2 (one) | int32 index | records: uvarint length+1, <batch> |
 *   tagged fields: 0 (partition), 0 (topic), 0 (request)
 */
import { API_KEYS } from "../listeners/kafka/definitions.ts";

/** Room a batch buffer keeps in front of the batch: the request head with a topic name of up to 249 bytes. */
export const PRODUCE_HEADROOM_BYTES = 320;
/** Room after the batch: the three empty tagged-field sections that end the request. */
export const PRODUCE_TAILROOM_BYTES = 3;
export const PRODUCE_FRAME_VERSION = 9;

const textEncoder = new TextEncoder();

export interface ProduceFrameFields {
  clientId: Uint8Array;
  topic: string;
  partition: number;
  acks: number;
  timeoutMs: number;
}

/** The request's chunks: one view around `batch` when its buffer has the room, else head, batch, tail. */
export function encodeProduceFrame(correlationId: number, fields: ProduceFrameFields, batch: Uint8Array): Uint8Array[] {
  const topic = textEncoder.encode(fields.topic);
  const head = encodeHead(correlationId, fields, topic, batch.length);
  const frameBytes = head.length + batch.length + PRODUCE_TAILROOM_BYTES;
  const inPlace = batch.byteOffset >= head.length && batch.byteOffset + batch.length + PRODUCE_TAILROOM_BYTES <= batch.buffer.byteLength;
  if (!inPlace) {
    setSize(head, frameBytes);
    return [head, batch, new Uint8Array(PRODUCE_TAILROOM_BYTES)];
  }
  const frame = new Uint8Array(batch.buffer, batch.byteOffset - head.length, frameBytes);
  frame.set(head);
  frame.fill(0, head.length + batch.length);
  setSize(frame, frameBytes);
  return [frame];
}

function setSize(frame: Uint8Array, frameBytes: number): void {
  new DataView(frame.buffer, frame.byteOffset, 4).setInt32(0, frameBytes - 4);
}

function encodeHead(correlationId: number, fields: ProduceFrameFields, topic: Uint8Array, recordsBytes: number): Uint8Array {
  const head = new Uint8Array(4 + 2 + 2 + 4 + 2 + fields.clientId.length + 1 + 1 + 2 + 4 + 1 + 5 + topic.length + 1 + 4 + 5);
  const view = new DataView(head.buffer);
  let position = 4; // size: set once the frame is complete
  view.setInt16(position, API_KEYS.produce);
  view.setInt16(position + 2, PRODUCE_FRAME_VERSION);
  view.setInt32(position + 4, correlationId);
  view.setInt16(position + 8, fields.clientId.length);
  position += 10;
  head.set(fields.clientId, position);
  position += fields.clientId.length;
  head[position++] = 0; // request header tagged fields
  head[position++] = 0; // transactionalId: null
  view.setInt16(position, fields.acks);
  view.setInt32(position + 2, fields.timeoutMs);
  position += 6;
  head[position++] = 2; // one topic
  position = uvarint(head, position, topic.length + 1);
  head.set(topic, position);
  position += topic.length;
  head[position++] = 2; // one partition
  view.setInt32(position, fields.partition);
  position += 4;
  position = uvarint(head, position, recordsBytes + 1);
  return head.subarray(0, position);
}

function uvarint(into: Uint8Array, position: number, value: number): number {
  let rest = value;
  while (rest >= 0x80) {
    into[position++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 128);
  }
  into[position++] = rest;
  return position;
}
