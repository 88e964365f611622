/**
 * @module logger
 * One pino logger factory, writing to stdout in one of two formats:
 * - `json`: pino's own lines, one JSON object each, for log collectors (journald, files, pipes);
 * - `pretty`: `2026-12-07T16:50:05.798Z INFO  runnel listening on 127.0.0.1:9600 port=9600 ...`,
 *   for a person at a terminal. `auto` (the default) picks pretty when stdout is a terminal.
 * Pretty-printing happens in this process, in a small destination stream that reformats pino's
 * JSON lines: pino's transports (worker threads, pino-pretty) fail inside a
 * `bun build --compile` binary ("unable to determine transport target").
 *
 * A broker that can no longer write its log (the terminal closed: EIO; the reader of a pipe
 * left: EPIPE) keeps serving and drops the log lines, rather than dying on an unhandled
 * 'error' event.
 */
import pino, { type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ["auto", "pretty", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Nested objects are flattened to dotted keys this deep; deeper ones print as JSON. */
const FLATTEN_DEPTH_MAX = 3;
/** Fields pino adds that a person at a terminal does not need on every line. */
const OMITTED_FIELDS = new Set(["level", "time", "msg", "name", "pid", "hostname"]);
const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const LEVEL_COLORS: Record<number, string> = { 10: "\x1b[90m", 20: "\x1b[36m", 30: "\x1b[32m", 40: "\x1b[33m", 50: "\x1b[31m", 60: "\x1b[35m" };
const RESET = "\x1b[0m";

export interface LoggerOptions {
  format?: LogFormat;
  /** Where lines go; stdout by default. Tests pass a collector. */
  destination?: pino.DestinationStream;
  /** For `auto`: is the destination a terminal? Defaults to stdout's answer. */
  isTerminal?: boolean;
}

export function createLogger(level: LogLevel = "info", destinationOrOptions?: pino.DestinationStream | LoggerOptions): Logger {
  const options: LoggerOptions = destinationOrOptions === undefined ? {} : "write" in destinationOrOptions ? { destination: destinationOrOptions } : destinationOrOptions;
  const isTerminal = options.isTerminal ?? (options.destination === undefined && process.stdout.isTTY === true);
  const pretty = options.format === "pretty" || (options.format === "auto" && isTerminal);
  const sink = options.destination ?? stdoutDestination(pretty);
  const destination = pretty ? prettyDestination(sink, isTerminal && !process.env.NO_COLOR) : sink;
  return pino({ level, base: { name: "runnel" }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * stdout through sonic-boom: asynchronous for JSON (the fast path), synchronous for a terminal
 * (lines appear in order with what else is printed). Write errors stop logging, not the broker.
 */
function stdoutDestination(sync: boolean): pino.DestinationStream {
  const stream = pino.destination({ dest: 1, sync });
  stream.on("error", () => {
    stream.write = () => true;
  });
  return stream;
}

/** Reformats each JSON line pino writes into one human-readable line, then passes it on. */
export function prettyDestination(sink: pino.DestinationStream, colors: boolean): pino.DestinationStream {
  return {
    write(chunk: string) {
      let out = "";
      for (const line of chunk.split("\n")) if (line !== "") out += `${formatPrettyLine(line, colors)}\n`;
      sink.write(out);
    },
  };
}

/** `time LEVEL msg key=value ...`, an error's stack on the lines below; junk passes unchanged. */
export function formatPrettyLine(jsonLine: string, colors = false): string {
  let entry: unknown;
  try {
    entry = JSON.parse(jsonLine);
  } catch {
    return jsonLine;
  }
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return jsonLine;
  const record = entry as Record<string, unknown>;
  const levelNumber = typeof record.level === "number" ? record.level : 30;
  const levelName = (LEVEL_NAMES[levelNumber] ?? String(record.level)).padEnd(5);
  const level = colors ? `${LEVEL_COLORS[levelNumber] ?? ""}${levelName}${RESET}` : levelName;
  const stacks: string[] = [];
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (!OMITTED_FIELDS.has(key)) flatten(key, value, 1, pairs, stacks);
  }
  const head = [String(record.time ?? ""), level, String(record.msg ?? "")].join(" ");
  const tail = stacks.map((stack) => `\n    ${stack.replaceAll("\n", "\n    ")}`).join("");
  return `${head}${pairs.length > 0 ? `  ${pairs.join(" ")}` : ""}${tail}`;
}

function flatten(key: string, value: unknown, depth: number, pairs: string[], stacks: string[]): void {
  if (key.endsWith("stack") && typeof value === "string") {
    stacks.push(value);
    return;
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value) && depth < FLATTEN_DEPTH_MAX) {
    for (const [inner, innerValue] of Object.entries(value)) flatten(`${key}.${inner}`, innerValue, depth + 1, pairs, stacks);
    return;
  }
  pairs.push(`${key}=${formatValue(value)}`);
}

/** Bare when unambiguous (`port=9600`, `dataDir=/var/lib/runnel`), else JSON (`msg="a b"`). */
function formatValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" && !Number.isInteger(value)) return String(Math.round(value * 1000) / 1000);
  return JSON.stringify(value) ?? String(value);
}
