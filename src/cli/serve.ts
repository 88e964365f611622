/**
 * @module cli/serve
 * `runnel serve`: load the configuration (defaults < --config FILE < RUNNEL_* env < flags), start
 * the broker, log one start line (address, data dir, topics, recovery), and on SIGINT/SIGTERM
 * stop cleanly: stop accepting, answer in-flight requests, flush, write the clean-shutdown
 * marker, exit 0. A bad option stops start-up with one line on stderr and exit code 2.
 */
import { ConfigError, type Config, describeOptions, loadConfig, parseFlags } from "../config.ts";
import { createLogger } from "../logger.ts";
import { nativeStatus } from "../native/libc.ts";
import { startBroker } from "../server/broker.ts";

const HELP = `usage: runnel serve [options]

Runs the broker. Every option can also come from a JSON config file (--config FILE) and from
RUNNEL_* environment variables; precedence: defaults < config file < environment < flags.

common options:
  --host HOST          address to listen on (default 127.0.0.1)
  --port PORT          TCP port (default 9600; 0 picks a free port, printed in the start line)
  --data-dir DIR       where topics and consumer offsets live (default ./data)
  --config FILE        JSON file of options, e.g. {"port": 9700, "autoCreateTopics": false}
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help           this text

examples:
  runnel serve
  runnel serve --port 9700 --data-dir /var/lib/runnel
  RUNNEL_FRAME_BYTES_MAX=33554432 runnel serve --config runnel.json
  npm start -- --port 9700 --data-dir /tmp/x

all options (flag, environment variable, default, allowed):
`;

function readConfig(argv: string[]): Config | "help" {
  const parsed = parseFlags(argv, new Set(["--config"]), new Set(["--help", "-h"]));
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
  const logger = createLogger(config.logLevel);
  let broker: Awaited<ReturnType<typeof startBroker>>;
  try {
    broker = await startBroker({ config, logger });
  } catch (error) {
    logger.fatal({ err: error }, "broker failed to start");
    process.stderr.write(`runnel serve: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
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
    },
    `runnel listening on ${broker.host}:${broker.port}`,
  );
  return waitForSignal(async (signal) => {
    logger.info({ signal }, "shutting down");
    await broker.stop();
    logger.info({}, "stopped cleanly");
  });
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
