/**
 * @module listeners/kafka/access
 * The group and cluster checks of the Kafka handlers, answered with Kafka's own codes
 * (GROUP_AUTHORIZATION_FAILED 30, CLUSTER_AUTHORIZATION_FAILED 31); topic checks share
 * server/access.ts with the native handlers and map to TOPIC_AUTHORIZATION_FAILED 29 through
 * kafkaErrorOf. The rule itself is security/authorizer.ts.
 */
import { authorize, CLUSTER, groupResource, type Operation } from "../../security/authorizer.ts";
import type { KafkaContext, KafkaRequestInfo } from "./context.ts";
import { KAFKA_ERROR } from "./errors.ts";

/** 0 when the principal may do `operation` on the group, else GROUP_AUTHORIZATION_FAILED. */
export function groupAccessCode(context: KafkaContext, info: KafkaRequestInfo, operation: Operation, group: string): number {
  return authorize(context.broker, info.session, operation, groupResource(group)) ? KAFKA_ERROR.NONE : KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED;
}

/** 0 when the principal may do `operation` on the cluster, else CLUSTER_AUTHORIZATION_FAILED. */
export function clusterAccessCode(context: KafkaContext, info: KafkaRequestInfo, operation: Operation): number {
  return authorize(context.broker, info.session, operation, CLUSTER) ? KAFKA_ERROR.NONE : KAFKA_ERROR.CLUSTER_AUTHORIZATION_FAILED;
}
