/**
 * @module cli/produce
 * `runnel produce --topic T`: every stdin line becomes one message (the newline is not part
 * of it). Lines are cut out of the stdin chunks as views, handed to the producer (which
 * encodes each once into its batch) and never decoded as text, so any bytes round-trip.
 * The producer's buffer bound is honoured: reading stdin pauses while it is full.
 */
import { DEFAULT_BROKER } from "../client/connection.ts";
import { type Durability, Producer, type ProducerMessage, type SendResult } from "../client/producer.ts";
import { RunnelError } from "../errors.ts";
import { topicPartitionCounts } from "../client/offsets.ts";
import { UsageError, choiceFlag, intFlag, parseArgs, required } from "./args.ts";
import { EXIT_OK, Progress, reportFailure } from "./output.ts";

const HELP = `usage: runnel produce --topic TOPIC [options] < lines

Sends each line of stdin as one message (without its newline), or one message with --value.

options:
  -t, --topic TOPIC        topic to send to (required; a broker that auto-creates topics,
                           the default, creates it on first use)
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER})
  --key-separator SEP      split each line at the first SEP: key before it, value after
  --key KEY                the key of every message
  --value VALUE            send one message with this value instead of reading stdin
  -p, --partition N        send to partition N (default: by key hash, or sticky when keyless)
  --durability LEVEL       none, written (default: in the page cache) or synced (fdatasync)
  --linger-ms MS           how long a batch waits to fill (default 5)
  --batch-bytes BYTES      batch size bound (default 65536)
  -h, --help               this text

examples:
  echo hello | runnel produce --topic greetings
  seq 1 100000 | runnel produce --topic numbers --durability synced
  printf 'user-1:signed up\\nuser-2:paid\\n' | runnel produce --topic events --key-separator :
  runnel produce --topic events --key user-1 --value 'signed up' --broker 10.0.0.5:9600
`;

const FLAGS = {
  topic: { type: "string", short: "t" },
  broker: { type: "string", short: "b" },
  "key-separator": { type: "string" },
  key: { type: "string" },
  value: { type: "string" },
  partition: { type: "string", short: "p" },
  durability: { type: "string" },
  "linger-ms": { type: "string" },
  "batch-bytes": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const NEWLINE = 0x0a;

interface Options {
  topic: string;
  keySeparator: Uint8Array | null;
  key: string | undefined;
  value: string | undefined;
  partition: number | undefined;
}

/** Counts answers; keeps the first failure to report. Shared callbacks: no closure per line. */
class Tally {
  sent = 0;
  acked = 0;
  failed = 0;
  firstError: RunnelError | null = null;
  constructor(private readonly progress: Progress) {}
  readonly onAck = (_result: SendResult): void => {
    this.acked += 1;
    this.progress.add();
  };
  readonly onFail = (error: RunnelError): void => {
    this.failed += 1;
    this.firstError ??= error;
  };
}

export async function run(argv: string[]): Promise<number> {
  let producer: Producer | null = null;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (flags.help) {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const options = readOptions(flags);
    producer = new Producer({
      broker: flags.broker ?? DEFAULT_BROKER,
      clientId: "runnel-cli-produce",
      connectTimeoutMs: 5_000,
      durability: choiceFlag(flags.durability, "durability", ["none", "written", "synced"] as Durability[], "written"),
      lingerMs: intFlag(flags["linger-ms"], "linger-ms", 5, 0, 60_000),
      batchBytes: intFlag(flags["batch-bytes"], "batch-bytes", 64 * 1024, 1, 64 * 1024 * 1024),
    });
    return await produce(producer, options);
  } catch (error) {
    return reportFailure("produce", error);
  } finally {
    await producer?.close().catch(() => undefined);
  }
}

function readOptions(flags: ReturnType<typeof parseArgs<typeof FLAGS>>["flags"]): Options {
  const separator = flags["key-separator"];
  if (separator === "") throw new UsageError("--key-separator must not be empty");
  if (separator !== undefined && flags.key !== undefined) throw new UsageError("use --key or --key-separator, not both");
  return {
    topic: required(flags.topic, "topic"),
    keySeparator: separator === undefined ? null : new TextEncoder().encode(separator),
    key: flags.key,
    value: flags.value,
    partition: flags.partition === undefined ? undefined : intFlag(flags.partition, "partition", 0, 0, 9_999),
  };
}

async function produce(producer: Producer, options: Options): Promise<number> {
  const progress = new Progress("messages");
  const tally = new Tally(progress);
  // Fail fast and clearly when the broker or the topic is not there, before reading stdin
  // (a broker that auto-creates topics creates it here, as the first send would).
  await topicPartitionCounts(producer.connection, [options.topic], { autoCreate: true });
  if (options.value !== undefined) {
    send(producer, options, tally, options.key ?? null, options.value);
  } else {
    if (process.stdin.isTTY) process.stderr.write("reading messages from stdin, one per line (Ctrl-D to end)\n");
    await readLines(producer, options, tally);
  }
  await producer.flush();
  const summary = `${tally.acked.toLocaleString("en-US")} messages sent to ${options.topic}`;
  progress.stop(tally.failed === 0 ? summary : undefined);
  if (tally.firstError !== null) {
    const first = tally.firstError;
    throw new RunnelError(first.code, `${tally.failed} of ${tally.sent} messages failed; the first: ${first.message}`, { cause: first });
  }
  return EXIT_OK;
}

function send(producer: Producer, options: Options, tally: Tally, key: Uint8Array | string | null, value: Uint8Array | string): void {
  const message: ProducerMessage = { key, value };
  if (options.partition !== undefined) message.partition = options.partition;
  tally.sent += 1;
  producer.send(options.topic, message).then(tally.onAck, tally.onFail);
}

/** Streams stdin, cutting lines out of each chunk; a line split across chunks is joined once. */
async function readLines(producer: Producer, options: Options, tally: Tally): Promise<void> {
  let carry: Uint8Array | null = null;
  let lineNumber = 0;
  for await (const chunk of Bun.stdin.stream()) {
    let start = 0;
    for (let newline = chunk.indexOf(NEWLINE); newline >= 0; newline = chunk.indexOf(NEWLINE, start)) {
      let line: Uint8Array = chunk.subarray(start, newline);
      if (carry !== null) {
        line = concat(carry, line);
        carry = null;
      }
      sendLine(producer, options, tally, line, ++lineNumber);
      start = newline + 1;
    }
    if (start < chunk.length) carry = carry === null ? chunk.slice(start) : concat(carry, chunk.subarray(start));
    if (tally.failed > 0 && tally.firstError && !tally.firstError.retriable) return;
    if (producer.saturated) await producer.ready();
  }
  if (carry !== null && carry.length > 0) sendLine(producer, options, tally, carry, ++lineNumber);
}

function sendLine(producer: Producer, options: Options, tally: Tally, line: Uint8Array, lineNumber: number): void {
  const separator = options.keySeparator;
  if (separator === null) return send(producer, options, tally, options.key ?? null, line);
  const at = indexOf(line, separator);
  if (at < 0) throw new UsageError(`line ${lineNumber} has no key separator; every line must look like KEY${new TextDecoder().decode(separator)}VALUE`);
  send(producer, options, tally, line.subarray(0, at), line.subarray(at + separator.length));
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  const last = haystack.length - needle.length;
  outer: for (let position = haystack.indexOf(first); position >= 0 && position <= last; position = haystack.indexOf(first, position + 1)) {
    for (let offset = 1; offset < needle.length; offset++) if (haystack[position + offset] !== needle[offset]) continue outer;
    return position;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
