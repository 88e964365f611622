/**
 * Topic administration over Kafka beyond create/delete: CreatePartitions (key 37), AlterConfigs
 * (key 33) and IncrementalAlterConfigs (key 44), on the core operations the native protocol uses;
 * validateOnly honoured, errors per resource, DescribeConfigs showing the change. kafkajs 2.2.4's
 * admin (createPartitions, alterConfigs, describeConfigs) and raw requests at each version.
 */
import { loadKafkajs } from "../../support/kafkajs.ts";
import { describe, expect, test } from "bun:test";
import type { KafkaStruct } from "../../../src/listeners/kafka/codec.ts";
import { API_KEYS } from "../../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../../src/listeners/kafka/errors.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { RawKafka } from "./raw-kafka.ts";

interface KafkajsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  createPartitions(options: { validateOnly?: boolean; topicPartitions: Array<{ topic: string; count: number }> }): Promise<boolean>;
  alterConfigs(options: { validateOnly: boolean; resources: Array<{ type: number; name: string; configEntries: Array<{ name: string; value: string }> }> }): Promise<{ resources: Array<{ errorCode: number; resourceName: string }> }>;
  describeConfigs(options: { includeSynonyms: boolean; resources: Array<{ type: number; name: string; configNames?: string[] }> }): Promise<{ resources: Array<{ errorCode: number; configEntries: Array<{ configName: string; configValue: string; isDefault: boolean }> }> }>;
  fetchTopicMetadata(options: { topics: string[] }): Promise<{ topics: Array<{ name: string; partitions: unknown[] }> }>;
}

interface KafkajsModule {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number } }) => { admin(): KafkajsAdmin };
}

const kafkajs = await loadKafkajs<KafkajsModule>("the kafkajs admin tests");
const TOPIC = 2;
const BROKER = 4;

async function withAdmin<Result>(kafkaPort: number, use: (admin: KafkajsAdmin) => Promise<Result>): Promise<Result> {
  if (kafkajs === null) throw new Error("kafkajs missing");
  const admin = new kafkajs.Kafka({ clientId: "admin-test", brokers: [`127.0.0.1:${kafkaPort}`], logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 0 } }).admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

async function describedConfig(client: RawKafka, topic: string): Promise<Record<string, string>> {
  const answer = await client.request(API_KEYS.describeConfigs, 4, { resources: [{ resourceType: TOPIC, resourceName: topic, configurationKeys: null }], includeSynonyms: false, includeDocumentation: false });
  const configs = (answer.results as Array<{ configs: Array<{ name: string; value: string }> }>)[0]?.configs ?? [];
  return Object.fromEntries(configs.map(({ name, value }) => [name, value]));
}

function errorsOf(answer: KafkaStruct, list: string): number[] {
  return (answer[list] as Array<{ errorCode: number }>).map((result) => result.errorCode);
}

describe.skipIf(kafkajs === null)("kafkajs admin: partitions and configs", () => {
  test("createPartitions grows a topic (validateOnly first changes nothing), and a smaller count is refused", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("grow", { partitions: 2 });
    const port = test.broker.kafkaPort ?? 0;
    await withAdmin(port, async (admin) => {
      await admin.createPartitions({ validateOnly: true, topicPartitions: [{ topic: "grow", count: 5 }] });
      expect(test.broker.context.log.describeTopic("grow").partitions.length).toBe(2);
      await admin.createPartitions({ topicPartitions: [{ topic: "grow", count: 5 }] });
      expect(test.broker.context.log.describeTopic("grow").partitions.length).toBe(5);
      const metadata = await admin.fetchTopicMetadata({ topics: ["grow"] });
      expect(metadata.topics[0]?.partitions.length).toBe(5);
      await expect(admin.createPartitions({ topicPartitions: [{ topic: "grow", count: 3 }] })).rejects.toThrow(/partitions/);
    });
  });

  test("alterConfigs replaces the topic's settings (validateOnly changes nothing) and describeConfigs shows them", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("tuned", { partitions: 1, config: { "flush.ms": 1000 } });
    await withAdmin(test.broker.kafkaPort ?? 0, async (admin) => {
      const entries = [{ name: "retention.ms", value: "3600000" }, { name: "segment.bytes", value: "1048576" }];
      await admin.alterConfigs({ validateOnly: true, resources: [{ type: TOPIC, name: "tuned", configEntries: entries }] });
      expect(test.broker.context.log.describeTopic("tuned").config["retention.ms"]).not.toBe(3_600_000);
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: TOPIC, name: "tuned", configEntries: entries }] });
      const config = test.broker.context.log.describeTopic("tuned").config;
      expect([config["retention.ms"], config["segment.bytes"]]).toEqual([3_600_000, 1_048_576]);
      // Not listed: back to the default (AlterConfigs replaces the whole set, as in Kafka).
      expect(config["flush.ms"]).toBe(test.broker.context.config.flushMs);
      const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC, name: "tuned", configNames: ["retention.ms", "segment.bytes"] }] });
      const shown = described.resources[0]?.configEntries.map((entry) => [entry.configName, entry.configValue, entry.isDefault]);
      expect(shown).toEqual([["retention.ms", "3600000", false], ["segment.bytes", "1048576", false]]);
      await expect(admin.alterConfigs({ validateOnly: false, resources: [{ type: TOPIC, name: "tuned", configEntries: [{ name: "cleanup.policy", value: "compact" }] }] })).rejects.toThrow();
    });
  });
});

describe("raw requests: CreatePartitions, AlterConfigs, IncrementalAlterConfigs", () => {
  test("CreatePartitions answers each topic on its own, at every version", async () => {
    await using test = await startTestBroker();
    const log = test.broker.context.log;
    log.createTopic("a", { partitions: 1 });
    log.createTopic("b", { partitions: 3 });
    log.createTopic("c", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (let version = 0; version <= 3; version++) {
      const count = 2 + version;
      const answer = await client.request(API_KEYS.createPartitions, version, {
        topics: [
          { name: "a", count, assignments: null },
          { name: "b", count: 2, assignments: null },
          { name: "missing", count: 2, assignments: null },
          { name: "c", count: 1_000_000, assignments: null },
        ],
        timeoutMs: 1000,
        validateOnly: false,
      });
      expect(errorsOf(answer, "results")).toEqual([0, KAFKA_ERROR.INVALID_PARTITIONS, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION, KAFKA_ERROR.INVALID_PARTITIONS]);
      expect(log.describeTopic("a").partitions.length).toBe(count);
    }
    // "b" twice in one request: INVALID_REQUEST for both; manual assignments must name node 0
    const twice = await client.request(API_KEYS.createPartitions, 3, { topics: [{ name: "b", count: 4, assignments: null }, { name: "b", count: 5, assignments: null }], timeoutMs: 1000, validateOnly: false });
    expect(errorsOf(twice, "results")).toEqual([KAFKA_ERROR.INVALID_REQUEST, KAFKA_ERROR.INVALID_REQUEST]);
    const assigned = await client.request(API_KEYS.createPartitions, 1, { topics: [{ name: "b", count: 5, assignments: [{ brokerIds: [0] }, { brokerIds: [0] }] }, { name: "a", count: 7, assignments: [{ brokerIds: [1] }, { brokerIds: [0] }] }], timeoutMs: 1000, validateOnly: false });
    expect(errorsOf(assigned, "results")).toEqual([0, KAFKA_ERROR.INVALID_REPLICA_ASSIGNMENT]);
    expect([log.describeTopic("b").partitions.length, log.describeTopic("a").partitions.length]).toEqual([5, 5]);
  });

  test("AlterConfigs answers per resource: a bad value, an unknown name, a missing topic or a broker setting fail alone", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("ok", { partitions: 1 });
    test.broker.context.log.createTopic("bad", { partitions: 1 });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    for (let version = 0; version <= 2; version++) {
      const answer = await client.request(API_KEYS.alterConfigs, version, {
        resources: [
          { resourceType: TOPIC, resourceName: "ok", configs: [{ name: "retention.ms", value: String(1000 + version) }] },
          { resourceType: TOPIC, resourceName: "bad", configs: [{ name: "segment.bytes", value: "12" }] },
          { resourceType: TOPIC, resourceName: "bad", configs: [{ name: "max.message.bytes", value: "12" }] },
          { resourceType: TOPIC, resourceName: "missing", configs: [] },
          { resourceType: BROKER, resourceName: "0", configs: [{ name: "log.retention.ms", value: "1" }] },
        ],
        validateOnly: false,
      });
      expect(errorsOf(answer, "responses")).toEqual([0, KAFKA_ERROR.INVALID_CONFIG, KAFKA_ERROR.INVALID_CONFIG, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION, KAFKA_ERROR.INVALID_CONFIG]);
      expect((await describedConfig(client, "ok"))["retention.ms"]).toBe(String(1000 + version));
    }
    expect(test.broker.context.log.describeTopic("bad").config["segment.bytes"]).toBe(test.broker.context.config.segmentBytes);
  });

  test("IncrementalAlterConfigs sets and deletes one setting, leaves the others, and honours validateOnly", async () => {
    await using test = await startTestBroker();
    test.broker.context.log.createTopic("inc", { partitions: 1, config: { "flush.ms": 500 } });
    await using client = await RawKafka.connect(test.broker.kafkaPort ?? 0);
    const change = (version: number, configs: KafkaStruct[], validateOnly = false) =>
      client.request(API_KEYS.incrementalAlterConfigs, version, { resources: [{ resourceType: TOPIC, resourceName: "inc", configs }], validateOnly });
    const set = { name: "retention.bytes", configOperation: 0, value: "1048576" };
    expect(errorsOf(await change(1, [set], true), "responses")).toEqual([0]);
    expect((await describedConfig(client, "inc"))["retention.bytes"]).toBe("-1");
    expect(errorsOf(await change(0, [set]), "responses")).toEqual([0]);
    expect(await describedConfig(client, "inc")).toMatchObject({ "retention.bytes": "1048576", "flush.ms": "500" });
    expect(errorsOf(await change(1, [{ name: "flush.ms", configOperation: 1, value: null }]), "responses")).toEqual([0]);
    expect(await describedConfig(client, "inc")).toMatchObject({ "retention.bytes": "1048576", "flush.ms": String(test.broker.context.config.flushMs) });
    // APPEND to a non-list setting, a null SET, an unknown operation, a name twice: refused, nothing changed
    expect(errorsOf(await change(1, [{ name: "retention.ms", configOperation: 2, value: "5" }]), "responses")).toEqual([KAFKA_ERROR.INVALID_CONFIG]);
    expect(errorsOf(await change(1, [{ name: "retention.ms", configOperation: 0, value: null }]), "responses")).toEqual([KAFKA_ERROR.INVALID_REQUEST]);
    expect(errorsOf(await change(1, [{ name: "retention.ms", configOperation: 9, value: "5" }]), "responses")).toEqual([KAFKA_ERROR.INVALID_REQUEST]);
    expect(errorsOf(await change(1, [set, set]), "responses")).toEqual([KAFKA_ERROR.INVALID_REQUEST]);
    expect((await describedConfig(client, "inc"))["retention.ms"]).toBe(String(test.broker.context.config.retentionMs));
  });
});
