/**
 * @module listeners/kafka/context
 * What a Kafka handler may use: the broker's protocol-neutral context (log, offsets, producer
 * ids, notifier, config) and this listener's identity as Metadata reports it. A handler returns
 * the response body as a plain object for the codec, or `null` for no response at all
 * (Produce with acks=0).
 */
import type { BrokerContext } from "../../server/context.ts";
import type { KafkaStruct } from "./codec.ts";
import type { Session } from "../../security/session.ts";

export interface KafkaContext {
  readonly broker: BrokerContext;
  /** This broker's node id (one node: 0); also the controller id Metadata reports. */
  readonly nodeId: number;
  /** Host and port Metadata and FindCoordinator tell clients to connect to. */
  readonly advertisedHost: string;
  readonly advertisedPort: number;
  readonly clusterId: string;
  /** Aborted when the listener stops: requests waiting on other clients then answer at once. */
  readonly stopping: AbortSignal;
}

/** What a handler may read of the request header. */
export interface KafkaRequestInfo {
  readonly clientId: string | null;
  /** Who the connection is (security/session.ts): requests are authorized as its principal. */
  readonly session: Session;
}

export type KafkaHandler = (context: KafkaContext, request: KafkaStruct, version: number, info: KafkaRequestInfo) => KafkaStruct | null | Promise<KafkaStruct | null>;
