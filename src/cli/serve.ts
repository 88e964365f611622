/**
 * @module cli/serve
 * `runnel serve`: load the configuration (defaults < --config FILE < RUNNEL_* env < flags), start
 * the broker, log one start line (address, data dir, topics, recovery), and on SIGINT/SIGTERM
 * stop cleanly: stop accepting, answer in-flight requests, flush, write the clean-shutdown
 * marker, exit 0. SIGHUP reloads the config (cli/reload.ts) and never stops the broker.
 * A bad option stops start-up with one line on stderr and exit code 2; a broker that cannot
 * start (port in use, unusable data dir) says why in one line (cli/startup-failure.ts), exit 1.
 * A non-loopback address with authentication none is refused (exit 2) unless --allow-anonymous
 * (cli/anonymous-exposure.ts).
 */
import { ConfigError, type Config, describeOptions, loadConfig, parseFlags } from "../config.ts";
import { createLogger, type Logger } from "../logger.ts";
import { nativeStatus } from "../native/libc.ts";
import { type Broker, startBroker } from "../server/broker.ts";
import { gcProbeDirectory, startBrokerGcProbe } from "../bench/gc-probe.ts";
import { loadTlsSettings, type TlsSettings, TLS_OPTIONS, tlsListeners } from "../server/tls.ts";
import { applyReload, logReload } from "./reload.ts";
import { describeStartupFailure } from "./startup-failure.ts";
import { anonymousExposure } from "./anonymous-exposure.ts";

const HELP = `usage: runnel serve [options]

Runs the broker. Every option can also come from a JSON config file (--config FILE) and from
RUNNEL_* environment variables; precedence: defaults < config file < environment < flags.

common options:
  --host HOST          address to listen on (default 127.0.0.1)
  --port PORT          TCP port (default 9600; 0 picks a free port, printed in the start line)
  --data-dir DIR       where topics and consumer offsets live (default ./data)
  --config FILE        JSON file of options, e.g. {"port": 9700, "autoCreateTopics": false}
  --http-port PORT     HTTP listener for /metrics, /health, /ready and the console at / (default
                       --port + 1, so 9601 beside the default --port; a free port when --port is 0;
                       -1 turns it off)
  --authentication M   none (default) or scram: clients must authenticate as a user of
                       'runnel users' (docs/security.md)
  --allow-anonymous    listen beyond 127.0.0.1 with --authentication none (refused otherwise)
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (default info)
  --log-format FORMAT  pretty (for a person), json, or auto: pretty when stdout is a terminal
  --cluster URL        join a cluster coordinated by etcd: etcd://host:port[,host:port]/name
                       (docs/cluster.md); needs --broker-id N, unique among live brokers
  -h, --help           this text

signals:
  SIGTERM, SIGINT      stop cleanly (answer in-flight requests, flush, clean-shutdown marker)
  SIGHUP               reload the config; live options apply at once, others are logged as
                       needing a restart (docs/operations.md, "Signals and reload")

examples:
  runnel serve
  runnel serve --port 9700 --data-dir /var/lib/runnel
  RUNNEL_FRAME_BYTES_MAX=33554432 runnel serve --config runnel.json
  npm start -- --port 9700 --data-dir /tmp/x
  runnel serve --cluster etcd://127.0.0.1:2379/prod --broker-id 1

all options (flag, environment variable, default, allowed):
`;

/** `--allow-anonymous` alone means true (as a switch); `--allow-anonymous false` still works. */
function expandSwitches(argv: string[]): string[] {
  return argv.flatMap((argument, index) => (argument === "--allow-anonymous" && !/^(true|false|on|off|yes|no|1|0)$/i.test(argv[index + 1] ?? "") ? [argument, "true"] : [argument]));
}

function readConfig(argv: string[]): Config | "help" {
  const parsed = parseFlags(expandSwitches(argv), new Set(["--config"]), new Set(["--help", "-h"]));
  if (parsed.extra.has("--help") || parsed.extra.has("-h")) return "help";
  const configFile = parsed.extra.get("--config");
  return loadConfig({
    flags: parsed.flags,
    env: process.env,
    ...(typeof configFile === "string" ? { configFile } : {}),
  });
}

export async function run(argv: string[]): Promise<number> {
  let config: Config;
  try {
    const loaded = readConfig(argv);
    if (loaded === "help") {
      process.stdout.write(`${HELP}${describeOptions().join("\n")}\n`);
      return 0;
    }
    config = loaded;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`runnel serve: ${error.message}\n`);
    return 2;
  }
  const exposure = anonymousExposure(config);
  if (exposure !== null) {
    process.stderr.write(`runnel serve: ${exposure}\n`);
    return 2;
  }
  const logger = createLogger(config.logLevel, { format: config.logFormat });
  let broker: Awaited<ReturnType<typeof startBroker>> | null = null;
  // Installed first: a SIGHUP (e.g. the terminal closed) during start-up must not kill it.
  process.on("SIGHUP", () => reload(argv, config, broker, logger));
  try {
    broker = await startBroker({ config, logger });
  } catch (error) {
    // The one line says what to do; the stack is for a developer, at debug level only.
    logger.debug({ err: error }, "broker failed to start");
    process.stderr.write(`runnel serve: ${describeStartupFailure(error, config)}\n`);
    return 1;
  }
  const running = broker;
  // `runnel bench e2e` with RUNNEL_BENCH_GC set: stamps of this process's collections (bench/gc-probe.ts).
  const gcDirectory = gcProbeDirectory();
  const stopGcProbe = gcDirectory === null ? null : startBrokerGcProbe(gcDirectory);
  // Handlers first, start line second: whoever waits for that line may send SIGTERM at once.
  const stopped = waitForSignal(async (signal) => {
    logger.info({ signal }, "shutting down");
    stopGcProbe?.();
    await running.stop();
    logger.info({}, "stopped cleanly");
  });
  logStartLine(broker, config, logger);
  return stopped;
}

function logStartLine(broker: Broker, config: Config, logger: Logger): void {
  const recovery = broker.recovery;
  logger.info(
    {
      address: `${broker.host}:${broker.port}`,
      host: broker.host,
      port: broker.port,
      dataDir: config.dataDir,
      topics: broker.context.log.listTopics().length,
      recovery: { clean: recovery.clean, fresh: recovery.fresh, partitions: recovery.partitions, truncations: recovery.truncations.length, durationMs: recovery.durationMs },
      sendPath: broker.context.zeroCopy ? "sendfile" : `copy (${nativeStatus.reason ?? "zeroCopy is off"})`,
      bufferedBytesMax: broker.context.memory.bytesMax,
      http: broker.http === null ? "off" : `${broker.http.host}:${broker.http.port}`,
      kafka: broker.kafkaPort === null ? "off" : `${config.kafkaHost}:${broker.kafkaPort}`,
      // TLS connections send fetched records by the copy path whatever sendPath says.
      tls: tlsListeners(config),
    },
    `runnel listening on ${broker.host}:${broker.port}`,
  );
}

/** SIGHUP: re-read the sources; apply live options to `config` (the broker's own object). */
function reload(argv: string[], config: Config, broker: Broker | null, logger: Logger): void {
  if (broker === null) {
    logger.warn({ signal: "SIGHUP" }, "SIGHUP during start-up ignored; send it again once the broker is listening");
    return;
  }
  let next: Config | "help";
  try {
    next = readConfig(argv);
  } catch (error) {
    logger.error({ signal: "SIGHUP", error: error instanceof Error ? error.message : String(error) }, "config reload failed; the broker keeps its current config");
    return;
  }
  if (next === "help") return;
  // TLS files are checked before any live option changes: a bad one keeps the whole TLS setup.
  let tls: TlsSettings;
  try {
    tls = loadTlsSettings(next);
  } catch (error) {
    logger.error({ signal: "SIGHUP", error: error instanceof Error ? error.message : String(error) }, "TLS reload failed; every listener keeps its current certificates");
    for (const key of TLS_OPTIONS) next[key] = config[key];
    logReload(applyReload(config, next, logger), logger);
    return;
  }
  logReload(applyReload(config, next, logger), logger);
  try {
    const changed = broker.reloadTls(tls);
    if (changed.length > 0) logger.info({ listeners: changed }, `TLS reloaded: ${changed.join(", ")} serve the new certificates to new connections`);
  } catch (error) {
    logger.error({ signal: "SIGHUP", error: error instanceof Error ? error.message : String(error) }, "TLS reload failed while replacing a listener");
  }
}

/** Resolves with exit code 0 after the first SIGINT/SIGTERM has been handled. */
function waitForSignal(onSignal: (signal: string) => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let handled = false;
    const handler = (signal: string) => {
      if (handled) return;
      handled = true;
      onSignal(signal).then(
        () => resolve(0),
        (error: unknown) => {
          process.stderr.write(`runnel serve: shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
          resolve(1);
        },
      );
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}
