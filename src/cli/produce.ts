/**
 * @module cli/produce
 * `runnel produce --topic T`: every stdin line becomes one message (the newline, and a `\r`
 * before it, are not part of it). Lines are cut out of the stdin chunks as views, handed to the
 * producer (which encodes each once into its batch) and never decoded as text, so any bytes
 * round-trip.
 *
 * - Memory stays bounded whatever the input: reading stdin pauses while the producer's buffer
 *   is full, and a line longer than the broker takes is refused as soon as that much of it has
 *   been read (its parts are joined once, at its end, never re-copied per chunk).
 * - Every line's outcome is counted through one shared callback (no promise or closure per
 *   line). The first failure stops reading; what is buffered settles within the delivery
 *   timeout; one line then says how many messages were acknowledged, failed (fate unknown) and
 *   never sent, and the exit code is 1.
 * - SIGINT/SIGTERM: reading stops, what is buffered is flushed (bounded by the delivery
 *   timeout; a second signal stops at once), the acknowledged count is printed, exit 130/143.
 * - Live progress only where it cannot collide with typing: stderr a terminal, stdin not.
 */
import { DEFAULT_BROKER } from "../client/connection.ts";
import { type Durability, Producer, type ProducerMessage } from "../client/producer.ts";
import { RunnelError } from "../errors.ts";
import { topicPartitionCounts } from "../client/offsets.ts";
import { TLS_FLAGS, TLS_HELP, UsageError, choiceFlag, clientTlsOf, tlsOption, intFlag, parseArgs, required, SASL_FLAGS, SASL_HELP, saslOption } from "./args.ts";
import { EXIT_OK, Progress, plural, reportFailure } from "./output.ts";

const DELIVERY_TIMEOUT_MS_DEFAULT = 30_000;

const HELP = `usage: runnel produce --topic TOPIC [options] < lines

Sends each line of stdin as one message (without its line ending, \\n or \\r\\n), or one
message with --value. Exits 0 once every message is acknowledged. The first message that
fails stops reading stdin; the exit code is then 1 and one line on stderr says how many
messages were acknowledged, failed (may or may not be stored) and never sent. A line longer
than the broker takes in one message (its batch limit) stops the run the same way, as soon
as that much of it is read. Ctrl-C (SIGINT) stops reading, waits for what is already sent
(a second Ctrl-C: not even that), prints the acknowledged count and exits 130.

options:
  -t, --topic TOPIC        topic to send to (required; a broker that auto-creates topics,
                           the default, creates it on first use)
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER}); in a cluster, several
                           (a:9600,b:9600): the first that answers finds the partition leaders
${TLS_HELP}${SASL_HELP}  --key-separator SEP      split each line at the first SEP: key before it, value after
  --key KEY                the key of every message
  --value VALUE            send one message with this value instead of reading stdin
  -p, --partition N        send to partition N (default: by key hash, or sticky when keyless)
  --durability LEVEL       none, written (default: in the page cache), synced (fdatasync) or
                           replicated (a cluster's in-sync replicas hold it; a single node: written)
  --linger-ms MS           how long a batch waits to fill (default 5)
  --batch-bytes BYTES      batch size bound (default 65536)
  --delivery-timeout-ms MS how long a message may stay unacknowledged, retries and waiting
                           for an unreachable broker included, before it fails (default ${DELIVERY_TIMEOUT_MS_DEFAULT})
  -h, --help               this text

examples:
  echo hello | runnel produce --topic greetings
  seq 1 100000 | runnel produce --topic numbers --durability synced
  printf 'user-1:signed up\\nuser-2:paid\\n' | runnel produce --topic events --key-separator :
  runnel produce --topic events --key user-1 --value 'signed up' --broker 10.0.0.5:9600
  runnel produce --topic orders --durability replicated --broker 10.0.0.5:9600,10.0.0.6:9600
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...SASL_FLAGS,
  topic: { type: "string", short: "t" },
  broker: { type: "string", short: "b" },
  "key-separator": { type: "string" },
  key: { type: "string" },
  value: { type: "string" },
  partition: { type: "string", short: "p" },
  durability: { type: "string" },
  "linger-ms": { type: "string" },
  "batch-bytes": { type: "string" },
  "delivery-timeout-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const EMPTY = new Uint8Array(0);
/** Room left in a batch for its header and one record's envelope, beside the line's bytes. */
const RECORD_OVERHEAD_BYTES = 1024;
const EXIT_SIGINT = 130;
const EXIT_SIGTERM = 143;

interface Options {
  topic: string;
  keySeparator: Uint8Array | null;
  key: string | undefined;
  value: string | undefined;
  partition: number | undefined;
}

/** Counts outcomes; keeps the first failure to report. One shared callback: no closure per line. */
class Tally {
  sent = 0;
  acked = 0;
  /** Sent to the broker and not acknowledged: may or may not be stored. */
  failed = 0;
  /** Failed before the producer wrote them anywhere: certainly not stored. */
  neverSent = 0;
  firstError: RunnelError | null = null;
  constructor(private readonly progress: Progress) {}
  readonly onDone = (error: RunnelError | null): void => {
    if (error === null) {
      this.acked += 1;
      this.progress.add();
      return;
    }
    if (error.details?.sent === false) this.neverSent += 1;
    else this.failed += 1;
    this.firstError ??= error;
  };

  /** "3 messages acknowledged, 2 failed (...), 5 never sent". */
  outcome(): string {
    const parts = [`${plural(this.acked, "message")} acknowledged`];
    if (this.failed > 0) parts.push(`${this.failed.toLocaleString("en-US")} failed (may or may not be stored)`);
    if (this.neverSent > 0) parts.push(`${this.neverSent.toLocaleString("en-US")} never sent`);
    const unsettled = this.sent - this.acked - this.failed - this.neverSent;
    if (unsettled > 0) parts.push(`${unsettled.toLocaleString("en-US")} not yet answered`);
    return parts.join(", ");
  }
}

/**
 * SIGINT and SIGTERM while producing: the first stops reading (`stopped` resolves, and the wait
 * at hand is cut short through `interrupt`), the second stops at once with `onSecond`'s report.
 *
 * Non-obvious: the read loop must not `Promise.race` each chunk against `stopped`. A race
 * leaves a reaction on `stopped` that holds the race's promise, and so its chunk, until
 * `stopped` settles: every chunk of the input would stay in memory.
 */
class StopSignal {
  signal: "SIGINT" | "SIGTERM" | null = null;
  readonly stopped: Promise<typeof STOPPED>;
  /** Cuts short the wait the read loop is in (a pending read, or waiting for buffer room). */
  interrupt: () => void = () => undefined;
  private wake: () => void = () => undefined;
  constructor(private readonly onSecond: (signal: "SIGINT" | "SIGTERM") => void) {
    this.stopped = new Promise((resolve) => (this.wake = () => resolve(STOPPED)));
    process.on("SIGINT", this.onSigint);
    process.on("SIGTERM", this.onSigterm);
  }
  private readonly onSigint = (): void => this.receive("SIGINT");
  private readonly onSigterm = (): void => this.receive("SIGTERM");
  private receive(signal: "SIGINT" | "SIGTERM"): void {
    if (this.signal !== null) return this.onSecond(signal);
    this.signal = signal;
    this.wake();
    this.interrupt();
  }
  dispose(): void {
    process.off("SIGINT", this.onSigint);
    process.off("SIGTERM", this.onSigterm);
  }
}
const STOPPED = Symbol("stopped");

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
      ...tlsOption(clientTlsOf(flags)), ...saslOption(flags),
      connectTimeoutMs: 5_000,
      durability: choiceFlag(flags.durability, "durability", ["none", "written", "synced", "replicated"] as Durability[], "written"),
      lingerMs: intFlag(flags["linger-ms"], "linger-ms", 5, 0, 60_000),
      batchBytes: intFlag(flags["batch-bytes"], "batch-bytes", 64 * 1024, 1, 64 * 1024 * 1024),
      deliveryTimeoutMs: intFlag(flags["delivery-timeout-ms"], "delivery-timeout-ms", DELIVERY_TIMEOUT_MS_DEFAULT, 1, 24 * 3_600_000),
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

/** How reading stdin ended. */
type ReadEnd = { kind: "eof" } | { kind: "stopped" } | { kind: "failed" } | { kind: "too-long"; lineNumber: number; lineBytesMax: number };

async function produce(producer: Producer, options: Options): Promise<number> {
  const interactive = options.value === undefined && process.stdin.isTTY === true;
  // A live count on the terminal the user is typing into would share the line being typed.
  const progress = new Progress("message", process.stderr.isTTY === true && !interactive);
  const tally = new Tally(progress);
  const stop = new StopSignal((signal) => {
    progress.stop();
    process.stderr.write(`${interactive ? "\n" : ""}runnel produce: stopped by a second ${signal}: ${tally.outcome()}\n`);
    process.exit(signal === "SIGINT" ? EXIT_SIGINT : EXIT_SIGTERM);
  });
  let end: ReadEnd = { kind: "eof" };
  const startedMs = Date.now();
  try {
    // Fail fast and clearly when the broker or the topic is not there, before reading stdin
    // (a broker that auto-creates topics creates it here, as the first send would).
    const connected = await Promise.race([topicPartitionCounts(producer.connection, [options.topic], { autoCreate: true }), stop.stopped]);
    if (connected === STOPPED) end = { kind: "stopped" };
    else if (options.value !== undefined) send(producer, options, tally, options.key ?? null, options.value);
    else {
      if (interactive) process.stderr.write("reading messages from stdin, one per line (Ctrl-D to end, Ctrl-C to stop)\n");
      end = await readLines(producer, options, tally, stop);
    }
    // Bounded: every record buffered fails by its delivery timeout if not acknowledged before.
    await producer.flush();
  } finally {
    stop.dispose();
    progress.stop();
  }
  return report(options, tally, end, stop, interactive, Date.now() - startedMs);
}

function report(options: Options, tally: Tally, end: ReadEnd, stop: StopSignal, interactive: boolean, elapsedMs: number): number {
  if (stop.signal !== null) {
    process.stderr.write(`${interactive ? "\n" : ""}runnel produce: stopped by ${stop.signal}: ${tally.outcome()} to ${options.topic}\n`);
    return stop.signal === "SIGINT" ? EXIT_SIGINT : EXIT_SIGTERM;
  }
  if (end.kind === "too-long") {
    const limit = end.lineBytesMax.toLocaleString("en-US");
    throw new RunnelError(
      "MESSAGE_TOO_LARGE",
      `line ${end.lineNumber.toLocaleString("en-US")} is longer than ${limit} bytes, the most the broker takes in one message; it and the lines after it were not sent (${tally.outcome()})`,
    );
  }
  const first = tally.firstError;
  if (first !== null) {
    const unread = end.kind === "failed" ? "; stdin was not read to its end" : "";
    throw new RunnelError(first.code, `${tally.outcome()}${unread}. The first failure: ${first.message}`, { cause: first });
  }
  if (process.stderr.isTTY) process.stderr.write(`${plural(tally.acked, "message")} sent to ${options.topic} in ${(elapsedMs / 1000).toFixed(2)} s\n`);
  return EXIT_OK;
}

function send(producer: Producer, options: Options, tally: Tally, key: Uint8Array | string | null, value: Uint8Array | string): void {
  const message: ProducerMessage = { key, value };
  if (options.partition !== undefined) message.partition = options.partition;
  tally.sent += 1;
  producer.sendWithCallback(options.topic, message, tally.onDone);
}

/**
 * The pieces of a line that spans stdin chunks: kept as views and joined once, at the line's
 * end (copying the growing line at every chunk would be quadratic in its length).
 */
class Carry {
  private parts: Uint8Array[] = [];
  bytes = 0;
  add(part: Uint8Array): void {
    this.parts.push(part);
    this.bytes += part.length;
  }
  /** The carried pieces followed by `tail`, as one array; empties the carry. */
  join(tail: Uint8Array): Uint8Array {
    const line = new Uint8Array(this.bytes + tail.length);
    let offset = 0;
    for (const part of this.parts) {
      line.set(part, offset);
      offset += part.length;
    }
    line.set(tail, offset);
    this.parts = [];
    this.bytes = 0;
    return line;
  }
}

/**
 * Streams stdin, cutting lines out of each chunk. Stops at the end of input, on a signal, at
 * the first failed message, or at a line longer than the broker takes.
 */
async function readLines(producer: Producer, options: Options, tally: Tally, stop: StopSignal): Promise<ReadEnd> {
  const lineBytesMax = Math.max(1, producer.recordBytesMax - RECORD_OVERHEAD_BYTES);
  const reader = Bun.stdin.stream().getReader();
  // A signal cancels the read in progress: it then ends as if stdin had.
  const cancelRead = (): void => void reader.cancel().catch(() => undefined);
  stop.interrupt = cancelRead;
  const carry = new Carry();
  let lineNumber = 0;
  try {
    for (;;) {
      const next = await reader.read();
      if (stop.signal !== null) return { kind: "stopped" };
      if (next.done) break;
      const chunk = next.value;
      let start = 0;
      for (let newline = chunk.indexOf(NEWLINE); newline >= 0; newline = chunk.indexOf(NEWLINE, start)) {
        lineNumber += 1;
        if (carry.bytes + newline - start > lineBytesMax + 1) return { kind: "too-long", lineNumber, lineBytesMax };
        const piece = chunk.subarray(start, newline);
        if (!sendLine(producer, options, tally, carry.bytes > 0 ? carry.join(piece) : piece, lineNumber, lineBytesMax)) return { kind: "too-long", lineNumber, lineBytesMax };
        start = newline + 1;
      }
      if (start < chunk.length) carry.add(chunk.subarray(start));
      // Checked while the line is still incomplete: an endless line is refused once it is too long.
      if (carry.bytes > lineBytesMax + 1) return { kind: "too-long", lineNumber: lineNumber + 1, lineBytesMax };
      if (tally.firstError !== null) return { kind: "failed" };
      if (producer.saturated) {
        // Backpressure: no more stdin until the producer's buffer has room (or a signal).
        await new Promise<void>((resolve) => {
          stop.interrupt = resolve;
          void producer.ready().then(resolve);
        });
        stop.interrupt = cancelRead;
      }
      if (stop.signal !== null) return { kind: "stopped" };
    }
    if (carry.bytes > 0 && !sendLine(producer, options, tally, carry.join(EMPTY), lineNumber + 1, lineBytesMax)) return { kind: "too-long", lineNumber: lineNumber + 1, lineBytesMax };
    return { kind: "eof" };
  } finally {
    stop.interrupt = () => undefined;
    cancelRead();
  }
}

/** Sends one line; false (and nothing sent) when it is longer than `lineBytesMax`. */
function sendLine(producer: Producer, options: Options, tally: Tally, line: Uint8Array, lineNumber: number, lineBytesMax: number): boolean {
  // CRLF input: the \r is part of the line ending, not of the message.
  if (line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN) line = line.subarray(0, line.length - 1);
  if (line.length > lineBytesMax) return false;
  const separator = options.keySeparator;
  if (separator === null) {
    send(producer, options, tally, options.key ?? null, line);
    return true;
  }
  const at = indexOf(line, separator);
  if (at < 0) throw new UsageError(`line ${lineNumber} has no key separator; every line must look like KEY${new TextDecoder().decode(separator)}VALUE`);
  send(producer, options, tally, line.subarray(0, at), line.subarray(at + separator.length));
  return true;
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
