/**
 * @module cli/output
 * What the client commands (topics, produce, consume) share about talking to a shell:
 * the one-line failure message with what to try, exit codes, and the live count and rate
 * drawn on stderr when it is a terminal. Data never goes to stderr; diagnostics never to stdout.
 */
import { RunnelError } from "../errors.ts";
import { UsageError } from "./args.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * A reader that closes our stdout early (`runnel topics list | head -1`) got what it wanted, so
 * every command then ends at once, quietly, with exit code 0 — not a stack trace, and not 141
 * (128 + SIGPIPE), which `set -o pipefail` scripts would take for a failure. Bun ignores SIGPIPE,
 * so a write to the closed pipe surfaces as an EPIPE 'error' event on process.stdout; with no
 * listener it would crash the process. main.ts installs this once for every command.
 * (consume writes through Bun.stdout.writer and ends on EPIPE by itself, also with 0.)
 */
export function exitQuietlyWhenStdoutCloses(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT_OK);
    process.stderr.write(`runnel: cannot write to stdout: ${error.message}\n`);
    process.exit(EXIT_FAILURE);
  });
}

/** Extra advice for codes whose message alone does not say what to do. */
const HINTS: Partial<Record<string, string>> = {
  UNKNOWN_TOPIC: "'runnel topics list' shows the topics there are; 'runnel topics create' makes one",
  TOPIC_EXISTS: "pick another name, or delete it first with 'runnel topics delete'",
  INVALID_PARTITIONS: "see the broker's partitionsPerTopicMax ('runnel serve --help')",
  MESSAGE_TOO_LARGE: "send smaller messages, or raise the broker's batchBytesMax / frameBytesMax",
  STORAGE_FULL: "free disk space on the broker",
  SHUTTING_DOWN: "the broker is stopping; try again once it is back",
  TOO_MANY_CONNECTIONS: "the broker is at its connection limit; try again later",
};

/** Prints `runnel <command>: <what went wrong> (<what to try>)` on stderr; returns the exit code. */
export function reportFailure(command: string, error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`runnel ${command}: ${error.message}. Try 'runnel ${command} --help'.\n`);
    return EXIT_USAGE;
  }
  let line: string;
  if (error instanceof RunnelError) {
    const hint = HINTS[error.code];
    line = `${error.message}${hint ? ` (${hint})` : ""} [${error.code}]`;
  } else {
    line = error instanceof Error ? error.message : String(error);
  }
  process.stderr.write(`runnel ${command}: ${line.replaceAll("\n", " ")}\n`);
  return error instanceof RunnelError && error.code === "INVALID_CONFIG" ? EXIT_USAGE : EXIT_FAILURE;
}

/**
 * A live "12,345 messages  4,321/s" line on stderr, redrawn a few times a second, only when
 * stderr is a terminal (in a pipe or a log file it would be noise).
 */
export class Progress {
  private count = 0;
  private readonly startedMs = Date.now();
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private drawn = false;

  constructor(
    /** Singular ("message"): the line says "1 message", "2 messages". */
    private readonly noun: string,
    enabled: boolean = process.stderr.isTTY === true,
  ) {
    if (enabled) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
  }

  add(count = 1): void {
    this.count += count;
  }

  get total(): number {
    return this.count;
  }

  private draw(): void {
    const seconds = Math.max(0.001, (Date.now() - this.startedMs) / 1000);
    const rate = Math.round(this.count / seconds);
    process.stderr.write(`\r\x1b[2K${plural(this.count, this.noun)}  ${rate.toLocaleString("en-US")}/s`);
    this.drawn = true;
  }

  /** Stops redrawing; with `summary`, leaves a final line (terminal only). */
  stop(summary?: string): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    if (this.drawn) process.stderr.write("\r\x1b[2K");
    if (summary !== undefined) {
      const seconds = (Date.now() - this.startedMs) / 1000;
      process.stderr.write(`${summary} in ${seconds.toFixed(2)} s\n`);
    }
  }
}

/** "1 message", "2,000 messages": a count with its noun, plural unless exactly one. */
export function plural(count: number, noun: string): string {
  return `${count.toLocaleString("en-US")} ${noun}${count === 1 ? "" : "s"}`;
}
