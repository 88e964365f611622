/**
 * @module cli/consume
 * `runnel consume --topic T`: prints messages to stdout, one per line: the raw value bytes
 * (text, the default) or one JSON object per message (json). Stops after --count messages,
 * after --timeout-ms without a message, on SIGINT/SIGTERM, or when stdout closes (e.g. piped
 * into `head`); with --group it commits what it printed before exiting.
 *
 * --group joins the group: processes run with the same group share the topic's partitions (the
 * broker assigns them and moves them as processes come and go). With --partition, or --from an
 * offset or -N, the partitions are read explicitly instead (no membership, as a tool would), and
 * what is printed is committed under the group unfenced.
 *
 * Before anything else it asks the broker for the topic's partitions (and, for --from N or
 * --from -N, their offset range) on a connection of its own: a broker never reached is an
 * error, never an empty topic, and --timeout-ms counts idleness only from then on. Offsets
 * are resolved here, not left to the consumer's out-of-range reset, so an offset past a
 * partition's end starts at its end (and says so on stderr) instead of quietly re-reading
 * from the start.
 */
import { Connection, DEFAULT_BROKER } from "../client/connection.ts";
import type { ClientTls } from "../client/link.ts";
import type { ClientSasl } from "../client/connection.ts";
import { Consumer, type Message, type StartPosition } from "../client/consumer.ts";
import { topicPartitionCounts } from "../client/offsets.ts";
import { LeaderRouter, listOffsetsAtLeaders } from "../client/leader-router.ts";
import { RunnelError } from "../errors.ts";
import { TLS_FLAGS, TLS_HELP, UsageError, choiceFlag, clientTlsOf, tlsOption, intFlag, parseArgs, required, SASL_FLAGS, SASL_HELP, saslOption } from "./args.ts";
import { EXIT_OK, Progress, plural, reportFailure } from "./output.ts";

const HELP = `usage: runnel consume --topic TOPIC [options]

Prints a topic's messages to stdout, one per line.

options:
  -t, --topic TOPIC        topic to read (required)
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER}); in a cluster, several
                           (a:9600,b:9600): the first that answers finds the partition leaders
${TLS_HELP}${SASL_HELP}  -p, --partition N        read only partition N (default: every partition)
  --from POSITION          where to start without a committed offset: earliest (default),
                           latest, an offset (e.g. 1500; past a partition's end: its end, with
                           a note on stderr), -N (N messages before each partition's end, as
                           kcat's -o -N; at most back to its start), or an ISO-8601 time
                           (2024-05-01T12:00:00Z)
  -g, --group GROUP        join the group: processes with the same group share the topic's
                           partitions; resume from its committed offsets and commit what is
                           printed. With --partition, or --from an offset or -N, no membership:
                           those partitions are read (and committed) explicitly
  -n, --count N            exit after N messages
  --timeout-ms MS          exit after MS without a new message, counted once connected
                           (default: wait forever); a broker never reached is an error (exit 1)
  --format FORMAT          text (default: the value's bytes) or json (topic, partition, offset,
                           timestamp, key, value, headers; key/value/headers as UTF-8 text)
  -h, --help               this text

examples:
  runnel consume --topic greetings
  runnel consume --topic events --from latest --format json
  runnel consume --topic numbers --count 10000 > numbers.txt
  runnel consume --topic events --group mailer --from 2024-05-01T00:00:00Z
  runnel consume --topic events --partition 2 --from 1500 --count 1
  runnel consume --topic events --from -10 --timeout-ms 1000
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...SASL_FLAGS,
  topic: { type: "string", short: "t" },
  broker: { type: "string", short: "b" },
  partition: { type: "string", short: "p" },
  from: { type: "string" },
  group: { type: "string", short: "g" },
  count: { type: "string", short: "n" },
  "timeout-ms": { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Format = "text" | "json";

/** Where --from starts: a consumer start position, or N messages before each partition's end. */
export type FromPosition = StartPosition | { beforeEnd: number };

/**
 * --from: a word, a whole number (an offset), -N (messages before the end), or an ISO-8601
 * time (a date at least: Date.parse alone would read '-5' or '1.5' as dates).
 */
export function parseFrom(value: string | undefined): FromPosition {
  if (value === undefined || value === "earliest") return "earliest";
  if (value === "latest") return "latest";
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return { offset: Number(value) };
  if (/^-\d+$/.test(value) && Number.isSafeInteger(-Number(value))) return { beforeEnd: -Number(value) };
  const timestamp = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(timestamp) || timestamp < 0) {
    throw new UsageError(`--from must be earliest, latest, an offset, -N (N messages before the end) or an ISO-8601 time such as 2024-05-01T12:00:00Z; got '${value}'`);
  }
  return { timestamp };
}

const decoder = new TextDecoder();
const text = (bytes: Uint8Array | null): string | null => (bytes === null ? null : decoder.decode(bytes));
const NEWLINE = new Uint8Array([0x0a]);
const EMPTY = new Uint8Array(0);

function toJson(message: Message): string {
  const headers = message.headers === null ? null : Object.fromEntries(Object.entries(message.headers).map(([name, value]) => [name, text(value)]));
  return JSON.stringify({
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: text(message.key),
    value: text(message.value),
    headers,
  });
}

export async function run(argv: string[]): Promise<number> {
  let consumer: Consumer | null = null;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (flags.help) {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const topic = required(flags.topic, "topic");
    const count = intFlag(flags.count, "count", 0, 1);
    const idleMs = intFlag(flags["timeout-ms"], "timeout-ms", 0, 1);
    const format = choiceFlag<Format>(flags.format, "format", ["text", "json"], "text");
    const from = parseFrom(flags.from);
    const partition = flags.partition === undefined ? undefined : intFlag(flags.partition, "partition", 0, 0, 9_999);
    const broker = flags.broker ?? DEFAULT_BROKER;
    const access = { ...tlsOption(clientTlsOf(flags)), ...saslOption(flags) };
    const starts = await resolveStarts({ broker, ...access }, topic, partition, from, flags.group !== undefined);
    consumer = new Consumer({ broker, ...access, clientId: "runnel-cli-consume", connectTimeoutMs: 5_000, ...(typeof from === "object" && "beforeEnd" in from ? {} : { from }), ...(flags.group === undefined ? {} : { groupId: flags.group }) });
    if (starts !== null) consumer.assign(starts.map((start) => ({ topic, partition: start.partition, from: { offset: start.offset } })));
    else if (partition === undefined) consumer.subscribe(topic);
    else consumer.assign([{ topic, partition }]);
    await consume(consumer, { count, idleMs, format, group: flags.group !== undefined });
    return EXIT_OK;
  } catch (error) {
    return reportFailure("consume", error);
  } finally {
    await consumer?.close().catch(() => undefined);
  }
}

/**
 * Connects and checks the topic (and partition) exist, before any idle timer runs; for --from N
 * and -N, each partition's start offset, clamped into its range (null: the consumer resolves
 * `from` itself). Throws BROKER_UNAVAILABLE when the broker cannot be reached.
 */
async function resolveStarts(target: { broker: string; tls?: ClientTls; sasl?: ClientSasl }, topic: string, partition: number | undefined, from: FromPosition, group: boolean): Promise<Array<{ partition: number; offset: number }> | null> {
  const connection = new Connection({ ...target, clientId: "runnel-cli-consume", connectTimeoutMs: 5_000 });
  // In a cluster the offset range is the leader's (a follower's lags behind it).
  const router = new LeaderRouter({ ...target, clientId: "runnel-cli-consume", connectTimeoutMs: 5_000 }, connection);
  try {
    const count = (await topicPartitionCounts(connection, [topic])).get(topic)!;
    if (partition !== undefined && partition >= count) {
      throw new RunnelError("UNKNOWN_PARTITION", `topic ${topic} has ${plural(count, "partition")} (0..${count - 1}); there is no partition ${partition}`);
    }
    if (typeof from !== "object" || "timestamp" in from) return null;
    const partitions = partition === undefined ? Array.from({ length: count }, (_, index) => index) : [partition];
    await router.refresh([topic]);
    const bounds = await listOffsetsAtLeaders(router, partitions.flatMap((p) => [{ topic, partition: p, at: "earliest" as const }, { topic, partition: p, at: "latest" as const }]));
    // With a group, a committed offset wins over --from (see --help): the note says so.
    const unlessCommitted = group ? " unless the group has a committed offset" : "";
    return partitions.map((p, index) => {
      const earliest = Math.max(0, bounds[2 * index]!);
      const end = Math.max(earliest, bounds[2 * index + 1]!);
      if ("beforeEnd" in from) return { partition: p, offset: Math.max(earliest, end - from.beforeEnd) };
      if (from.offset > end) process.stderr.write(`runnel consume: ${topic}/${p} ends at offset ${end}; --from ${from.offset} is past it, starting at the end${unlessCommitted}\n`);
      else if (from.offset < earliest) process.stderr.write(`runnel consume: ${topic}/${p} starts at offset ${earliest}; --from ${from.offset} is before it, starting there${unlessCommitted}\n`);
      return { partition: p, offset: Math.min(end, Math.max(earliest, from.offset)) };
    });
  } finally {
    await Promise.all([router.close(), connection.close()]).catch(() => undefined);
  }
}

interface Limits {
  count: number;
  idleMs: number;
  format: Format;
  group: boolean;
}

async function consume(consumer: Consumer, limits: Limits): Promise<void> {
  const progress = new Progress("message");
  const out = Bun.stdout.writer({ highWaterMark: 256 * 1024 });
  // A signal or the idle timeout closes the consumer, which ends the loop and commits (with a
  // group) every message printed: the loop was waiting for the next one.
  let stopping = false;
  const stop = () => {
    stopping = true;
    void consumer.close().catch(() => undefined);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  const armIdle = () => {
    if (limits.idleMs === 0) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stop, limits.idleMs);
  };
  armIdle();
  let printed = 0;
  let pendingBytes = 0;
  try {
    for await (const message of consumer) {
      armIdle();
      if (limits.format === "json") {
        const line = `${toJson(message)}\n`;
        const result = out.write(line);
        if (typeof result !== "number") await result;
        pendingBytes += line.length;
      } else {
        const value = message.value ?? EMPTY;
        const result = out.write(value);
        if (typeof result !== "number") await result;
        const newline = out.write(NEWLINE);
        if (typeof newline !== "number") await newline;
        pendingBytes += value.length + 1;
      }
      printed += 1;
      progress.add();
      if (pendingBytes >= 256 * 1024) {
        await out.flush();
        pendingBytes = 0;
      }
      if (printed === limits.count) break;
    }
    await out.flush();
    if (limits.group && printed > 0 && !stopping) await consumer.commit();
  } catch (error) {
    if (!isClosedPipe(error)) throw error;
  } finally {
    clearTimeout(idleTimer);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    progress.stop(plural(printed, "message"));
  }
}

/** stdout closed by the reader (`| head`): a normal way for a consumer to end. */
function isClosedPipe(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === "EPIPE";
}
