/**
 * @module cli/topics
 * `runnel topics create|list|describe|alter|delete`: topic administration from the shell, through
 * the client library's Admin. Tables for people by default; `--format json` for scripts.
 */
import type { Admin, TopicConfig, TopicDescription } from "../client/admin.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { TLS_FLAGS, TLS_HELP, UsageError, choiceFlag, intFlag, parseArgs, SASL_FLAGS, SASL_HELP } from "./args.ts";
import { adminFromFlags } from "./admin-client.ts";
import { EXIT_OK, plural, reportFailure } from "./output.ts";

const HELP = `usage: runnel topics <command> [options]

commands:
  create NAME [--partitions N] [--config KEY=VALUE]...   create a topic
         [--replication-factor N] [--min-insync-replicas N]  (cluster mode: copies of each partition)
  list                                                    list topics, partitions and offsets
  describe NAME                                           partitions, offsets, sizes and config
  alter NAME --config KEY=VALUE [--config KEY=VALUE]...   change a topic's options (others keep theirs)
  delete NAME                                             delete a topic and its data

options:
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER}); in a cluster, several
                           (a:9600,b:9600): the first that answers finds the partition leaders
${TLS_HELP}${SASL_HELP}  --partitions N           partitions of a new topic (default 1)
  --replication-factor N   copies of each partition, on distinct brokers (cluster mode; default 1)
  --min-insync-replicas N  in-sync copies a replicated write needs (cluster mode; default 1)
  --config KEY=VALUE       topic option, repeatable: retention.ms, retention.bytes,
                           segment.bytes, segment.ms, flush.messages, flush.ms
  --format FORMAT          text (default) or json, for list and describe
  -h, --help               this text

examples:
  runnel topics create events --partitions 6
  runnel topics create audit --config retention.ms=604800000 --config flush.messages=1
  runnel topics list
  runnel topics describe events --format json
  runnel topics alter events --config retention.bytes=10737418240 --config retention.ms=86400000
  runnel topics delete events --broker 10.0.0.5:9600
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...SASL_FLAGS,
  broker: { type: "string", short: "b" },
  partitions: { type: "string" },
  "replication-factor": { type: "string" },
  "min-insync-replicas": { type: "string" },
  config: { type: "strings" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const CONFIG_KEYS = new Set(["retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "flush.messages", "flush.ms"]);

export function parseConfig(pairs: readonly string[]): TopicConfig | undefined {
  if (pairs.length === 0) return undefined;
  const config: Record<string, number> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    const key = pair.slice(0, equals);
    const value = Number(pair.slice(equals + 1));
    if (equals < 0 || !CONFIG_KEYS.has(key)) throw new UsageError(`--config takes KEY=VALUE with KEY one of ${[...CONFIG_KEYS].join(", ")}; got '${pair}'`);
    if (pair.slice(equals + 1).trim() === "" || !Number.isInteger(value)) throw new UsageError(`--config ${key} needs a whole number; got '${pair.slice(equals + 1)}'`);
    config[key] = value;
  }
  return config as TopicConfig;
}

export async function run(argv: string[]): Promise<number> {
  let admin: Admin | null = null;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    const [command, name, ...extra] = positionals;
    if (flags.help || command === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (command === undefined) throw new UsageError("a command is needed: create, list, describe, alter or delete");
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    admin = adminFromFlags(flags, "runnel-cli-topics");
    switch (command) {
      case "create": {
        const topic = await admin.createTopic(needName(name, command), {
          partitions: intFlag(flags.partitions, "partitions", 1, 1),
          ...optional("config", parseConfig(flags.config ?? [])),
          ...optional("replicationFactor", flags["replication-factor"] === undefined ? undefined : intFlag(flags["replication-factor"], "replication-factor", 1, 1)),
          ...optional("minInsyncReplicas", flags["min-insync-replicas"] === undefined ? undefined : intFlag(flags["min-insync-replicas"], "min-insync-replicas", 1, 1)),
        });
        process.stdout.write(`created topic ${topic.name} with ${plural(topic.partitions.length, "partition")}\n`);
        return EXIT_OK;
      }
      case "list":
        if (name !== undefined) throw new UsageError(`'topics list' takes no name (got '${name}')`);
        return printList(await admin.listTopics(), format);
      case "describe":
        return printDescription(await admin.describeTopic(needName(name, command)), format);
      case "alter":
        return printAltered(await admin.alterTopicConfig(needName(name, command), needConfig(flags.config ?? [])));
      case "delete":
        await admin.deleteTopic(needName(name, command));
        process.stdout.write(`deleted topic ${name}\n`);
        return EXIT_OK;
      default:
        throw new UsageError(`unknown command '${command}'; use create, list, describe, alter or delete`);
    }
  } catch (error) {
    return reportFailure("topics", error);
  } finally {
    await admin?.close().catch(() => undefined);
  }
}

function optional<Key extends string, Value>(key: Key, value: Value | undefined): { [K in Key]?: Value } {
  return (value === undefined ? {} : { [key]: value }) as { [K in Key]?: Value };
}

function needName(name: string | undefined, command: string): string {
  if (name === undefined) throw new UsageError(`'topics ${command}' needs a topic name`);
  return name;
}

function needConfig(pairs: readonly string[]): TopicConfig {
  const config = parseConfig(pairs);
  if (config === undefined) throw new UsageError(`'topics alter' needs at least one --config KEY=VALUE (keys: ${[...CONFIG_KEYS].join(", ")})`);
  return config;
}

function printAltered(topic: TopicDescription): number {
  const config = Object.entries(topic.config).map(([key, value]) => `${key}=${value}`).join(" ");
  process.stdout.write(`altered topic ${topic.name}: ${config || "(defaults)"}\n`);
  return EXIT_OK;
}

function messages(partitions: ReadonlyArray<{ logStartOffset: number; nextOffset: number }>): number {
  return partitions.reduce((sum, partition) => sum + partition.nextOffset - partition.logStartOffset, 0);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2))).join("")).join("\n") + "\n";
}

function printList(topics: ReadonlyArray<{ name: string; partitions: ReadonlyArray<{ logStartOffset: number; nextOffset: number }> }>, format: "text" | "json"): number {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(topics)}\n`);
    return EXIT_OK;
  }
  if (topics.length === 0) {
    process.stderr.write("no topics yet; create one with 'runnel topics create NAME'\n");
    return EXIT_OK;
  }
  const rows = [["TOPIC", "PARTITIONS", "MESSAGES"], ...topics.map((topic) => [topic.name, String(topic.partitions.length), String(messages(topic.partitions))])];
  process.stdout.write(table(rows));
  return EXIT_OK;
}

function printDescription(topic: TopicDescription, format: "text" | "json"): number {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(topic)}\n`);
    return EXIT_OK;
  }
  const config = Object.entries(topic.config).map(([key, value]) => `${key}=${value}`).join(" ");
  process.stdout.write(`topic ${topic.name}: ${plural(topic.partitions.length, "partition")}, ${plural(messages(topic.partitions), "message")}\nconfig: ${config || "(defaults)"}\n\n`);
  const rows = [
    ["PARTITION", "LOG-START", "NEXT-OFFSET", "BYTES", "SEGMENTS"],
    ...topic.partitions.map((partition) => [String(partition.partition), String(partition.logStartOffset), String(partition.nextOffset), String(partition.sizeBytes ?? "-"), String(partition.segmentCount ?? "-")]),
  ];
  // Cluster mode: where each partition lives (a single node has no leaders to show).
  if (topic.partitions.some((partition) => partition.leader !== undefined)) {
    rows[0]!.push("LEADER", "EPOCH", "REPLICAS", "ISR");
    topic.partitions.forEach((partition, index) => {
      const leader = partition.leader === undefined || partition.leader < 0 ? "none" : String(partition.leader);
      rows[index + 1]!.push(leader, String(partition.leaderEpoch ?? "-"), (partition.replicas ?? []).join(",") || "-", (partition.isr ?? []).join(",") || "-");
    });
  }
  process.stdout.write(table(rows));
  return EXIT_OK;
}
