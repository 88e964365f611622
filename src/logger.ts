/**
 * @module logger
 * One pino logger factory. Plain pino to stdout: pino's transports (worker threads) do not
 * work inside a `bun build --compile` binary, so there is no pretty-printing transport.
 */
import pino, { type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = "info", destination?: pino.DestinationStream): Logger {
  const options = { level, base: { name: "runnel" }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
