/**
 * @module listeners/kafka/handlers/elect-leaders
 * ElectLeaders (key 43), versions 0-2 (2+ flexible; v1 adds electionType and the top-level
 * errorCode): preferred-leader election (electionType 0) through the same path as the native
 * `electLeaders` (cluster/preferred-election.ts): an election request for the controller, then a
 * wait of at most `timeoutMs` (clamped to 100..600000). `topicPartitions` null = every partition.
 *
 * Per partition: NONE (elected), ELECTION_NOT_NEEDED (84, it led already),
 * PREFERRED_LEADER_NOT_AVAILABLE (80: down, draining or out of the ISR), REQUEST_TIMED_OUT (7),
 * UNKNOWN_TOPIC_OR_PARTITION (3). Unclean elections (electionType 1) are not served:
 * INVALID_REQUEST (42) for each partition. A single node leads every partition it has: each is
 * ELECTION_NOT_NEEDED. Authorization: alter on the cluster, else CLUSTER_AUTHORIZATION_FAILED (31)
 * at the top (v1+) and for every partition.
 */
import { RunnelError } from "../../../errors.ts";
import { electPreferredLeaders, type ElectionOutcome, type ElectionResult, viewElectionSource } from "../../../cluster/preferred-election.ts";
import { clusterAccessCode } from "../access.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";

interface TopicPartitions {
  topic: string;
  partitions: number[];
}

type PartitionAnswer = { partitionId: number; errorCode: number; errorMessage: string | null };

const OUTCOME_CODES: Record<ElectionOutcome, number> = {
  elected: KAFKA_ERROR.NONE,
  alreadyPreferred: KAFKA_ERROR.ELECTION_NOT_NEEDED,
  unavailable: KAFKA_ERROR.PREFERRED_LEADER_NOT_AVAILABLE,
  timedOut: KAFKA_ERROR.REQUEST_TIMED_OUT,
};
const UNCLEAN = 1;

export async function handleElectLeaders(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): Promise<KafkaStruct> {
  const named = request.topicPartitions === null ? null : fieldAs<TopicPartitions[]>(request.topicPartitions);
  const denied = clusterAccessCode(context, info, "alter");
  if (denied !== KAFKA_ERROR.NONE) return answer(denied, everyNamed(named, denied, "electing leaders needs alter on the cluster"));
  if (request.electionType === UNCLEAN) return answer(KAFKA_ERROR.NONE, everyNamed(named, KAFKA_ERROR.INVALID_REQUEST, "unclean leader election is not supported"));
  const timeoutMs = Math.min(600_000, Math.max(100, Number(request.timeoutMs)));
  const source = viewElectionSource(context.broker.cluster);
  if (source === null) return answer(KAFKA_ERROR.NONE, singleNode(context, named));
  if (named === null) return answer(KAFKA_ERROR.NONE, group(await electPreferredLeaders(source, {}, timeoutMs)));
  const perTopic = await Promise.all(
    named.map(async ({ topic, partitions }) => {
      try {
        const results = await electPreferredLeaders(source, { topic, partitions }, timeoutMs);
        const byPartition = new Map(results.map((result) => [result.partition, result]));
        return { topic, partitionResult: partitions.map((partition) => toAnswer(partition, byPartition.get(partition))) };
      } catch (error) {
        const { errorCode, errorMessage } = kafkaErrorOf(error);
        return { topic, partitionResult: partitions.map((partitionId) => ({ partitionId, errorCode, errorMessage })) };
      }
    }),
  );
  return answer(KAFKA_ERROR.NONE, perTopic);
}

function answer(errorCode: number, replicaElectionResults: KafkaStruct[]): KafkaStruct {
  return { throttleTimeMs: 0, errorCode, replicaElectionResults };
}

function toAnswer(partitionId: number, result: ElectionResult | undefined): PartitionAnswer {
  if (result === undefined) return { partitionId, errorCode: KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: "no such partition" };
  return { partitionId, errorCode: OUTCOME_CODES[result.outcome], errorMessage: result.outcome === "elected" ? null : result.outcome };
}

/** Every named partition with one code (null names nothing: no partition is answered). */
function everyNamed(named: TopicPartitions[] | null, errorCode: number, errorMessage: string): KafkaStruct[] {
  return (named ?? []).map(({ topic, partitions }) => ({ topic, partitionResult: partitions.map((partitionId) => ({ partitionId, errorCode, errorMessage })) }));
}

/** Results grouped by topic, in their order. */
function group(results: readonly ElectionResult[]): KafkaStruct[] {
  const byTopic = new Map<string, PartitionAnswer[]>();
  for (const result of results) {
    const list = byTopic.get(result.topic) ?? [];
    list.push(toAnswer(result.partition, result));
    byTopic.set(result.topic, list);
  }
  return [...byTopic].map(([topic, partitionResult]) => ({ topic, partitionResult }));
}

/** A single node leads every partition it has: nothing to elect. */
function singleNode(context: KafkaContext, named: TopicPartitions[] | null): KafkaStruct[] {
  const log = context.broker.log;
  const topics = named ?? log.listTopics().map((topic) => ({ topic, partitions: log.describeTopic(topic).partitions.map((_, index) => index) }));
  return topics.map(({ topic, partitions }) => {
    const count = log.hasTopic(topic) ? log.describeTopic(topic).partitions.length : 0;
    return {
      topic,
      partitionResult: partitions.map((partitionId) =>
        partitionId >= 0 && partitionId < count
          ? { partitionId, errorCode: KAFKA_ERROR.ELECTION_NOT_NEEDED, errorMessage: "a single node leads every partition" }
          : { partitionId, ...kafkaErrorOf(new RunnelError("UNKNOWN_TOPIC", `no partition ${topic}/${partitionId}`)) },
      ),
    };
  });
}
