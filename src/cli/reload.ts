/**
 * @module cli/reload
 * What `runnel serve` does on SIGHUP (the daemon convention; also what a closed terminal sends):
 * read the configuration again from the same sources (config file, environment, flags), apply
 * the options that can change while the broker runs, and log what changed and what waits for a
 * restart. A config that no longer validates is logged and ignored: the broker keeps the one it
 * has. SIGHUP never stops the broker.
 *
 * An option is live-safe when the broker reads it from `context.config` each time it uses it
 * (never copied at start) and a new value cannot break a promise already given to a client.
 * So `requestsInFlightMax` and `frameBytesMax` (told to clients in `hello`), the timeouts (they
 * size the sweep timer), topic defaults (copied into the log manager) and anything about
 * sockets, files or the log format need a restart.
 */
import type { Config, ConfigKey } from "../config.ts";
import type { Logger } from "../logger.ts";

/** Applied on SIGHUP; docs/operations.md "Reload" lists the same. */
export const LIVE_OPTIONS: readonly ConfigKey[] = [
  "logLevel",
  "autoCreateTopics",
  "defaultPartitions",
  "topicsMax",
  "partitionsPerTopicMax",
  "fetchWaitMsMax",
  "connectionsMax",
  "outboundQueueBytesMax",
  "shutdownTimeoutMs",
  // TLS files: serve.ts re-reads them on every SIGHUP and replaces the listeners whose certificates changed.
  "tlsCert",
  "tlsKey",
  "tlsCa",
  "kafkaTlsCert",
  "kafkaTlsKey",
  "kafkaTlsCa",
  "httpTlsCert",
  "httpTlsKey",
  "httpTlsCa",
  // Read from context.config on every authorization check (security/super-users.ts).
  "superUsers",
];

export interface ReloadOutcome {
  /** Live options whose new value is now in force: key -> [old, new]. */
  applied: Partial<Record<ConfigKey, [unknown, unknown]>>;
  /** Options whose value changed in the sources but takes effect only after a restart. */
  needRestart: Partial<Record<ConfigKey, [unknown, unknown]>>;
}

/**
 * Copies the live options of `next` into `current` (the object the broker reads from), sets the
 * logger's level, and sorts every other difference into `needRestart`.
 */
export function applyReload(current: Config, next: Config, logger: Logger): ReloadOutcome {
  const outcome: ReloadOutcome = { applied: {}, needRestart: {} };
  for (const key of Object.keys(next) as ConfigKey[]) {
    if (current[key] === next[key]) continue;
    const change: [unknown, unknown] = [current[key], next[key]];
    if (LIVE_OPTIONS.includes(key)) {
      Object.assign(current, { [key]: next[key] });
      outcome.applied[key] = change;
    } else {
      outcome.needRestart[key] = change;
    }
  }
  logger.level = current.logLevel;
  return outcome;
}

/** Logs a reload's outcome: one info line, plus a warning when something needs a restart. */
export function logReload(outcome: ReloadOutcome, logger: Logger): void {
  const applied = Object.keys(outcome.applied);
  const pending = Object.keys(outcome.needRestart);
  logger.info({ applied: outcome.applied, live: LIVE_OPTIONS }, applied.length === 0 ? "config reloaded: no live option changed" : `config reloaded: applied ${applied.join(", ")}`);
  if (pending.length > 0) logger.warn({ needRestart: outcome.needRestart }, `config reloaded: ${pending.join(", ")} changed but take effect only after a restart`);
}
