/**
 * @module config
 * Every broker option, declared once: one zod schema with each option's bounds and default.
 * Values come from four layers, later ones winning: defaults < config file (JSON) < RUNNEL_*
 * environment variables < command-line flags. Names map mechanically between the layers:
 * `frameBytesMax` is `"frameBytesMax"` in the file, `RUNNEL_FRAME_BYTES_MAX` in the
 * environment and `--frame-bytes-max` on the command line.
 *
 * A bad value stops start-up with one line that names the option, the value, where it came
 * from and what is allowed (`ConfigError`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { z } from "zod";
import { GiB, KiB, LIMITS, MiB } from "./limits.ts";
import { LOG_FORMATS, LOG_LEVELS } from "./logger.ts";
import type { TopicConfig } from "./log/api.ts";
import { PREALLOCATE_BYTES_LIMIT, PREALLOCATE_BYTES_MAX_DEFAULT } from "./log/preallocation.ts";
import { FETCH_HEAD_RESERVE_BYTES, WIRE_LIMITS } from "./protocol/messages.ts";
import { parseClusterUrl } from "./cluster/cluster-url.ts";
import { BROKER_ID_MAX } from "./cluster/etcd-layout.ts";

function isClusterUrl(value: string): boolean {
  try {
    parseClusterUrl(value);
    return true;
  } catch {
    return false;
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The native port's default; the HTTP listener's is this + 1 (httpPortOf). */
const NATIVE_PORT_DEFAULT = 9600;

const int = (min: number, max: number, fallback: number) => z.int().min(min).max(max).default(fallback);
/** -1 (meaning "off") or a value in [min, max]. */
const intOrOff = (min: number, max: number, fallback: number) =>
  z.int().min(-1).max(max).refine((value) => value === -1 || value >= min, `must be -1 or at least ${min}`).default(fallback);

export const configSchema = z
  .object({
    host: z.string().min(1).max(255).default("127.0.0.1"),
    port: int(0, 65_535, NATIVE_PORT_DEFAULT),
    dataDir: z.string().min(1).max(4096).default("./data"),
    logLevel: z.enum(LOG_LEVELS).default("info"),
    /** Log lines as JSON, or pretty for a person; auto = pretty when stdout is a terminal. */
    logFormat: z.enum(LOG_FORMATS).default("auto"),
    /** Largest frame (either direction). Also reported to clients by `hello`. */
    frameBytesMax: int(1 * MiB + 1 * KiB, LIMITS.frameBytesMax, 16 * MiB),
    /** Largest record batch a produce may carry. */
    batchBytesMax: int(1 * KiB, LIMITS.batchBytesMax, 4 * MiB),
    connectionsMax: int(1, 1_000_000, 10_000),
    /** Requests read but not yet answered, per connection; reading pauses at the bound. */
    requestsInFlightMax: int(1, 100_000, 256),
    /** In-memory response bytes queued per connection before reading pauses. */
    outboundQueueBytesMax: int(64 * KiB, 1 * GiB, 8 * MiB),
    /**
     * Broker-wide budget for bytes held for clients: partially received frames (and reused
     * assembly buffers) plus queued response bytes. 0 = auto: 1/16 of the machine's memory,
     * bounded to [64 MiB, 1 GiB] and at least 2 x frameBytesMax (bufferedBytesBudget).
     */
    bufferedBytesMax: int(0, 64 * GiB, 0),
    /** Close a connection with no traffic and nothing in flight for this long; 0 = never. */
    idleTimeoutMs: int(0, 7 * DAY_MS, 10 * 60 * 1000),
    /** Close a connection that holds a partial frame for this long. */
    frameTimeoutMs: int(50, 3_600_000, 30_000),
    /** A fetch's maxWaitMs is clamped to this. */
    fetchWaitMsMax: int(0, WIRE_LIMITS.maxWaitMsMax, 30_000),
    /** Long-polling fetches parked at once, broker-wide; beyond it fetches answer at once. */
    fetchWaitersMax: int(0, 1_000_000, 10_000),
    autoCreateTopics: z.boolean().default(true),
    /** Partitions of a topic created by a produce (auto-creation). */
    defaultPartitions: int(1, LIMITS.partitionsPerTopicMax, 1),
    topicsMax: int(1, LIMITS.topicsMax, 10_000),
    partitionsPerTopicMax: int(1, LIMITS.partitionsPerTopicMax, 1_000),
    /** Partitions the broker holds in all, counting those being created. */
    partitionsMax: int(1, LIMITS.topicsMax * 10, 100_000),
    /** New topics one request (metadata autoCreate, produce) may create; the rest get LIMIT_EXCEEDED. */
    topicCreatesPerRequestMax: int(1, LIMITS.topicsMax, 256),
    /** Partition creations per second, broker-wide (token bucket); beyond it THROTTLED. */
    partitionCreatesPerSecond: int(1, 1_000_000, 2_000),
    /** Partition creations the bucket holds when idle (the burst allowed at once). */
    partitionCreatesBurst: int(1, 10_000_000, 10_000),
    /** Consumer-group offsets held (group x topic x partition), broker-wide. */
    committedOffsetsMax: int(1, 10_000_000, 1_000_000),
    /** Consumer groups with members, broker-wide (membership is held in memory). */
    groupsMax: int(1, 1_000_000, 10_000),
    /** Members of one consumer group. */
    groupMembersMax: int(1, 100_000, 1_000),
    /** The session timeouts a group member may ask for; one asking none gets 10 s, clamped into these. */
    groupSessionTimeoutMsMin: int(10, 3_600_000, 1_000),
    groupSessionTimeoutMsMax: int(10, 3_600_000, 300_000),
    /**
     * How often group members heartbeat when nothing moves (at most a third of a member's session
     * timeout); also how long the broker may hold an idle member's heartbeat. Rebalances do not
     * wait for it: a held heartbeat is answered as soon as its member has news.
     */
    groupHeartbeatIntervalMs: int(10, 60_000, 3_000),
    /** Cluster mode: partitions of the internal `__consumer_offsets` topic (fixed once the topic exists; a group's coordinator is the leader of one of them). */
    offsetsTopicPartitions: int(1, 1_000, 16),
    /** Cluster mode: how often a group coordinator writes a snapshot of its groups' offsets to `__consumer_offsets` (older records then age out after 3 intervals). */
    offsetsSnapshotIntervalMs: int(1_000, DAY_MS, 3_600_000),
    /** Topic defaults (each topic may override; see createTopic's config). */
    retentionMs: intOrOff(1, Number.MAX_SAFE_INTEGER, 7 * DAY_MS),
    retentionBytes: intOrOff(1, Number.MAX_SAFE_INTEGER, -1),
    segmentBytes: int(LIMITS.segmentBytesMin, LIMITS.segmentBytesMax, 1 * GiB),
    segmentMs: int(1, Number.MAX_SAFE_INTEGER, 7 * DAY_MS),
    /** Background flush policy (fdatasync after N messages / every M ms; -1 = off). */
    flushMessages: intOrOff(1, Number.MAX_SAFE_INTEGER, -1),
    flushMs: intOrOff(1, Number.MAX_SAFE_INTEGER, 5_000),
    retentionCheckIntervalMs: int(100, DAY_MS, 5 * 60 * 1000),
    openSegmentsMax: int(16, 1_000_000, 1_024),
    /**
     * Largest step of disk blocks reserved ahead of an active segment's end (fallocate
     * KEEP_SIZE, cuts pwrite's kernel cost on ext4; docs/storage.md); 0 = off.
     */
    preallocateBytesMax: int(0, PREALLOCATE_BYTES_LIMIT, PREALLOCATE_BYTES_MAX_DEFAULT),
    /** Send fetched records with sendfile (true) or the copy path (false). */
    zeroCopy: z.boolean().default(true),
    /**
     * Threads that own native connections (docs/architecture.md "Using every core"). 1: the main
     * thread does everything, as always. N > 1: N Bun Workers share the port (reusePort) and do
     * framing and socket I/O (sendfile included); the main thread keeps the log.
     */
    networkWorkers: int(1, 64, 1),
    /** On SIGINT/SIGTERM, wait at most this long for in-flight requests. */
    shutdownTimeoutMs: int(0, 600_000, 10_000),
    /**
     * HTTP listener (metrics, health, console; src/listeners/http/). -1 = off. Unset, it is the
     * native port + 1 (9601 beside the default 9600), or a free port when `port` is 0, so a second
     * broker never collides (httpPortOf). A value given is used as it is.
     */
    httpPort: z.int().min(-1).max(65_535).optional(),
    httpHost: z.string().min(1).max(255).default("127.0.0.1"),
    /**
     * Kafka wire-protocol listener (docs/kafka.md); -1 turns it off. With `port` 0 (a free port,
     * as tests and embedded brokers use) the Kafka listener takes a free port too.
     */
    kafkaPort: intOrOff(0, 65_535, 9092),
    kafkaHost: z.string().min(1).max(255).default("127.0.0.1"),
    /** Host Kafka clients are told to connect to (Metadata, FindCoordinator); empty = kafkaHost. */
    kafkaAdvertisedHost: z.string().max(255).default(""),
    /** Port Kafka clients are told to connect to; 0 = the port the Kafka listener got. */
    kafkaAdvertisedPort: int(0, 65_535, 0),
    /**
     * TLS for every listener (docs/security.md): PEM certificate (chain) and private key files;
     * empty = plaintext. With `tlsCa` too, listeners require a client certificate signed by it.
     * Re-read on SIGHUP.
     */
    tlsCert: z.string().max(4096).default(""),
    tlsKey: z.string().max(4096).default(""),
    tlsCa: z.string().max(4096).default(""),
    /** Per-listener overrides of tlsCert/tlsKey/tlsCa; empty = the shared value, "none" = without it. */
    kafkaTlsCert: z.string().max(4096).default(""),
    kafkaTlsKey: z.string().max(4096).default(""),
    kafkaTlsCa: z.string().max(4096).default(""),
    httpTlsCert: z.string().max(4096).default(""),
    httpTlsKey: z.string().max(4096).default(""),
    httpTlsCa: z.string().max(4096).default(""),
    /**
     * Users every authorization check lets through (docs/security.md), comma-separated user names;
     * empty = none. Re-read on SIGHUP.
     */
    superUsers: z.string().max(4096).default(""),
    /**
     * Authorization (docs/security.md): "none" lets every request through; "acl" checks each one
     * against the ACL in the data dir (acls.json; super-users always pass). Re-read on SIGHUP.
     */
    authorizer: z.enum(["none", "acl"]).default("none"),
    /**
     * Authentication on every listener (docs/security.md): "none" trusts every peer; "scram" makes
     * native clients run the `authenticate` op, Kafka clients SASL (SCRAM-SHA-256/512, PLAIN) and
     * HTTP clients send Basic credentials, checked against the users in `<dataDir>/users.json`.
     */
    authentication: z.enum(["none", "scram"]).default("none"),
    /** Kafka SASL PLAIN sends the password in the clear: refused on a listener without TLS unless this is true. */
    saslPlainOverPlaintext: z.boolean().default(false),
    /** Fewest PBKDF2 iterations a stored SCRAM verifier may have (createUser refuses fewer). */
    scramIterationsMin: int(4096, 1_000_000, 4096),
    /** Failed authentications one address may make at once before it is refused (token bucket size). */
    authFailuresBurst: int(1, 1_000_000, 10),
    /** Failed authentications per minute one address regains (token bucket refill). */
    authFailuresPerMinute: int(1, 1_000_000, 6),
    /** `runnel serve` refuses a non-loopback address with authentication none unless this is true. */
    allowAnonymous: z.boolean().default(false),
    // Replication (cluster mode only, docs/cluster.md; a single node never reads these).
    /** A follower that has not caught up with the leader's log end for this long leaves the ISR. */
    replicaLagTimeMaxMs: int(100, 600_000, 10_000),
    /** Bytes one replica fetch asks for (at least one batch is always sent). */
    replicaFetchBytesMax: int(1024, 64 * MiB, MiB),
    /** How long a caught-up follower's fetch waits at the leader for new data. */
    replicaFetchWaitMs: int(0, 30_000, 500),
    /** How long a `replicated` produce (Kafka acks=-1) waits for the ISR before TIMEOUT. */
    replicatedAckTimeoutMs: int(1, 600_000, 30_000),
    /** How often the high watermarks are checkpointed (when one changed) to `replication-offset-checkpoint`. */
    highWatermarkCheckpointIntervalMs: int(100, 3_600_000, 5_000),
    /**
     * Cluster mode (docs/cluster.md): `etcd://host:port[,host:port]/name` joins that cluster,
     * coordinated by etcd; empty = a single node, no etcd.
     */
    cluster: z.string().max(4096).default("").refine((value) => value === "" || isClusterUrl(value), "must be etcd://host:port[,host:port]/name or etcds://... for TLS (name: 1-64 of [a-zA-Z0-9._-])"),
    /**
     * Cluster mode: the host this broker registers in etcd, the one other brokers' replica
     * fetchers and native clients connect to (Kafka's advertised.listeners; a container, NAT, a
     * proxy); empty = kafkaAdvertisedHost, else the native listener's address.
     */
    advertisedHost: z.string().max(255).default(""),
    /** Cluster mode: the native port registered in etcd; 0 = the port the native listener got. */
    advertisedPort: int(0, 65_535, 0),
    /** This broker's id in the cluster, unique among live brokers; -1 = unset (required with `cluster`). */
    brokerId: z.int().min(-1).max(BROKER_ID_MAX).default(-1),
    /**
     * The broker's etcd lease: a broker silent this long loses its partitions. Whole seconds
     * (etcd's unit), at least 2000. 3000 elects new leaders ~3.5 s after a broker dies, leaving clients time to follow within 5 s (docs/cluster.md).
     */
    clusterLeaseTtlMs: int(2000, 60_000, 3000).refine((value) => value % 1000 === 0, "must be a whole number of seconds (a multiple of 1000)"),
    /** A broker stops leading this long before its lease could expire in etcd (self-fencing). */
    clusterFenceMarginMs: int(100, 30_000, 1000),
    /**
     * With `authentication: "scram"`: the user this broker's replica fetcher authenticates as at
     * the leaders (a super-user, or granted alter on the cluster with `authorizer: "acl"`).
     */
    clusterUser: z.string().max(255).default(""),
    /** File holding `clusterUser`'s password (its first line), read at start. */
    clusterPasswordFile: z.string().max(4096).default(""),
    /**
     * With a TLS native listener, the CA the replica fetcher checks other brokers' certificates
     * against; empty = `tlsCa` when set, else the system's CAs (docs/cluster.md, "Securing a cluster").
     */
    clusterTlsCa: z.string().max(4096).default(""),
    /** With an `etcds://` cluster URL: the CA that signed etcd's certificate; empty = the system's CAs. */
    clusterEtcdCa: z.string().max(4096).default(""),
    /** With `etcds://`: the client certificate (PEM) shown to an etcd run with --client-cert-auth. */
    clusterEtcdCert: z.string().max(4096).default(""),
    /** The private key of `clusterEtcdCert`. */
    clusterEtcdKey: z.string().max(4096).default(""),
    /** The etcd user this broker authenticates as (etcd's authentication on); empty = none. */
    clusterEtcdUser: z.string().max(255).default(""),
    /** File holding `clusterEtcdUser`'s password (its first line), read at start. */
    clusterEtcdPasswordFile: z.string().max(4096).default(""),
    /**
     * A broker whose data directory is new but which etcd counts as the last in-sync replica of
     * some partition refuses to start (it would lead them empty); true lets it, losing their records.
     */
    clusterAcceptDataLoss: z.boolean().default(false),
    /**
     * Controlled shutdown (docs/cluster.md, "Rolling restart"): on SIGTERM/SIGINT a cluster broker
     * waits at most this long for the controller to move its leaderships and ISR seats away before
     * it stops anyway; 0 = stop at once (the lease revocation moves leadership).
     */
    controlledShutdownTimeoutMs: int(0, 600_000, 30_000),
    /** The controller moves leadership back to each partition's preferred leader (first replica) by itself. */
    autoLeaderRebalanceEnable: z.boolean().default(true),
    /** How often the controller checks for leadership off the preferred leaders; an imbalance seen at two checks in a row is moved. */
    leaderImbalanceCheckIntervalMs: int(100, 3_600_000, 30_000),
  })
  .strict()
  .superRefine((config, context) => {
    if (config.batchBytesMax + FETCH_HEAD_RESERVE_BYTES > config.frameBytesMax) {
      context.addIssue({
        code: "custom",
        path: ["batchBytesMax"],
        message: `must be at most frameBytesMax - ${FETCH_HEAD_RESERVE_BYTES} (frameBytesMax is ${config.frameBytesMax})`,
      });
    }
    if (config.bufferedBytesMax !== 0 && config.bufferedBytesMax < config.frameBytesMax) {
      context.addIssue({
        code: "custom",
        path: ["bufferedBytesMax"],
        message: `must be 0 (auto) or at least frameBytesMax (${config.frameBytesMax}), so that one largest frame fits`,
      });
    }
    if (config.cluster !== "" && config.brokerId === -1) {
      context.addIssue({ code: "custom", path: ["brokerId"], message: "must be set (0 or more, unique in the cluster) when cluster is" });
    }
    if (config.clusterFenceMarginMs + config.clusterLeaseTtlMs / 4 >= config.clusterLeaseTtlMs) {
      context.addIssue({ code: "custom", path: ["clusterFenceMarginMs"], message: `must be below 3/4 of clusterLeaseTtlMs (${config.clusterLeaseTtlMs}): keepalives go every TTL/4` });
    }
    if (config.groupSessionTimeoutMsMin > config.groupSessionTimeoutMsMax) {
      context.addIssue({ code: "custom", path: ["groupSessionTimeoutMsMin"], message: `must be at most groupSessionTimeoutMsMax (${config.groupSessionTimeoutMsMax})` });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** Bounds of the automatic buffered-bytes budget (bufferedBytesMax = 0). */
export const BUFFERED_BYTES_AUTO_MIN = 64 * MiB;
export const BUFFERED_BYTES_AUTO_MAX = 1 * GiB;

/**
 * The buffered-bytes budget in bytes: bufferedBytesMax, or when it is 0, 1/16 of `totalMemoryBytes`
 * bounded to [64 MiB, 1 GiB], and never below two largest frames.
 */
export function bufferedBytesBudget(config: Pick<Config, "bufferedBytesMax" | "frameBytesMax">, totalMemoryBytes: number = os.totalmem()): number {
  if (config.bufferedBytesMax > 0) return config.bufferedBytesMax;
  const auto = Math.min(BUFFERED_BYTES_AUTO_MAX, Math.max(BUFFERED_BYTES_AUTO_MIN, Math.floor(totalMemoryBytes / 16)));
  return Math.max(auto, 2 * config.frameBytesMax);
}
/**
 * The port the HTTP listener binds: null when off. The default 9601 is the companion of the
 * default native port; a broker moved off 9600 (a second broker on the host, a test on port 0)
 * gets a free HTTP port instead (printed in the start line) unless httpPort says otherwise.
 */
export function httpPortOf(config: Pick<Config, "httpPort" | "port">): number | null {
  if (config.httpPort === -1) return null;
  if (config.httpPort !== undefined) return config.httpPort;
  return config.port === 0 || config.port === 65_535 ? 0 : config.port + 1;
}
export type ConfigKey = keyof Config;

// zod 4: superRefine adds a check to the object schema itself, so its shape is still at hand.
const shape = configSchema.shape;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export function envName(key: string): string {
  return `RUNNEL_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

const CONFIG_KEYS = Object.keys(shape) as ConfigKey[];
const KEY_BY_FLAG = new Map(CONFIG_KEYS.map((key) => [flagName(key), key]));

function innerSchema(key: ConfigKey): z.ZodType {
  const field = shape[key] as z.ZodType;
  return field instanceof z.ZodDefault || field instanceof z.ZodOptional ? (field.unwrap() as z.ZodType) : field;
}

/** What an option accepts, in words, for error messages and --help. */
export function describeAllowed(key: ConfigKey): string {
  const schema = innerSchema(key);
  if (schema instanceof z.ZodNumber) {
    const off = key === "retentionMs" || key === "retentionBytes" || key === "flushMessages" || key === "flushMs" || key === "httpPort" ? "-1 (off) or " : "";
    const min = off === "" ? schema.minValue : key === "httpPort" ? 0 : 1;
    return `${off}an integer from ${min} to ${schema.maxValue}`;
  }
  if (schema instanceof z.ZodBoolean) return "true or false";
  if (schema instanceof z.ZodEnum) return `one of ${schema.options.join(", ")}`;
  return "a non-empty string";
}

/** Turns an env/flag string into the option's type; leaves it a string when it does not parse. */
function coerce(key: ConfigKey, text: string): unknown {
  const schema = innerSchema(key);
  if (schema instanceof z.ZodNumber) {
    const trimmed = text.trim();
    return /^-?\d+$/.test(trimmed) ? Number(trimmed) : text;
  }
  if (schema instanceof z.ZodBoolean) {
    const lower = text.trim().toLowerCase();
    if (["true", "on", "1", "yes"].includes(lower)) return true;
    if (["false", "off", "0", "no"].includes(lower)) return false;
    return text;
  }
  return text;
}

export interface ConfigSources {
  /** Parsed command-line options (already split from argv), by option key. */
  flags?: Partial<Record<ConfigKey, string>>;
  env?: Record<string, string | undefined>;
  /** Path of a JSON config file. */
  configFile?: string;
}

type Layer = { values: Record<string, unknown>; origin: (key: string) => string };

function fileLayer(path: string): Layer {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object of options`);
  }
  for (const key of Object.keys(parsed)) {
    if (!Object.hasOwn(shape, key)) throw new ConfigError(`unknown option '${key}' in config file ${path}; known options: ${CONFIG_KEYS.join(", ")}`);
  }
  return { values: parsed as Record<string, unknown>, origin: (key) => `config file ${path}, key ${key}` };
}

function envLayer(env: Record<string, string | undefined>): Layer {
  const values: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const text = env[envName(key)];
    if (text !== undefined && text !== "") values[key] = coerce(key, text);
  }
  return { values, origin: (key) => `environment ${envName(key as ConfigKey)}` };
}

function flagLayer(flags: Partial<Record<ConfigKey, string>>): Layer {
  const values: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const text = flags[key];
    if (text !== undefined) values[key] = coerce(key, text);
  }
  return { values, origin: (key) => `flag ${flagName(key as ConfigKey)}` };
}

/** Merges the layers and validates once; throws ConfigError with one line on a bad value. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const layers: Layer[] = [];
  if (sources.configFile !== undefined) layers.push(fileLayer(sources.configFile));
  layers.push(envLayer(sources.env ?? {}));
  layers.push(flagLayer(sources.flags ?? {}));
  const merged: Record<string, unknown> = {};
  const originOf = new Map<string, string>();
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      merged[key] = value;
      originOf.set(key, layer.origin(key));
    }
  }
  const result = configSchema.safeParse(merged);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = String(issue?.path[0] ?? "?") as ConfigKey;
  const value = JSON.stringify(merged[key] ?? null);
  const allowed = issue?.code === "custom" ? issue.message : describeAllowed(key);
  throw new ConfigError(`invalid option ${key}=${value} (from ${originOf.get(key) ?? "defaults"}): ${allowed}`);
}

export interface ParsedFlags {
  /** Option values by key, still strings (coerced by loadConfig). */
  flags: Partial<Record<ConfigKey, string>>;
  /** Command-specific flags: valued ones map to their value, switches to true. */
  extra: Map<string, string | true>;
}

/**
 * Splits `--name value` / `--name=value` into option strings. `valued` and `switches` name the
 * command's own flags (e.g. --config FILE, --help). Throws ConfigError on an unknown flag.
 */
export function parseFlags(argv: readonly string[], valued: ReadonlySet<string> = new Set(), switches: ReadonlySet<string> = new Set()): ParsedFlags {
  const parsed: ParsedFlags = { flags: {}, extra: new Map() };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] ?? "";
    if (switches.has(argument)) {
      parsed.extra.set(argument, true);
      continue;
    }
    const equals = argument.indexOf("=");
    const name = equals > 0 ? argument.slice(0, equals) : argument;
    const key = KEY_BY_FLAG.get(name);
    if (key === undefined && !valued.has(name)) throw new ConfigError(`unknown flag '${argument}'; try --help`);
    const value = equals > 0 ? argument.slice(equals + 1) : argv[index + 1];
    if (equals < 0) index++;
    if (value === undefined) throw new ConfigError(`flag ${name} needs a value${key === undefined ? "" : ` (${describeAllowed(key)})`}`);
    if (key === undefined) parsed.extra.set(name, value);
    else parsed.flags[key] = value;
  }
  return parsed;
}

/** The topic defaults the log manager applies to new topics. */
export function topicDefaultsOf(config: Config): TopicConfig {
  return {
    "retention.ms": config.retentionMs,
    "retention.bytes": config.retentionBytes,
    "segment.bytes": config.segmentBytes,
    "segment.ms": config.segmentMs,
    "flush.messages": config.flushMessages,
    "flush.ms": config.flushMs,
  };
}

/** Every option with its default and what it accepts, for `runnel serve --help`. */
export function describeOptions(): string[] {
  const defaults = configSchema.parse({});
  return CONFIG_KEYS.map((key) => `  ${flagName(key).padEnd(30)}${envName(key).padEnd(36)}${defaults[key] === undefined ? "default: derived (see above)" : `default ${JSON.stringify(defaults[key])}`}; ${describeAllowed(key)}`);
}
