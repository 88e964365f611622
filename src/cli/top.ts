/**
 * @module cli/top
 * `runnel top`: a live terminal view of the broker: throughput per topic (busiest first) and lag
 * per consumer group (most behind first), redrawn every interval from the broker's HTTP JSON API
 * (listeners/http/api.ts). Rates are differences of the broker's counters between two polls, so
 * the first screen comes one interval after the start. `--once` prints one screen (two polls an
 * interval apart) and exits, for scripts and tests. Ctrl-C restores the terminal and exits 0.
 *
 * Bounds: it reads at most TOPICS_READ_MAX topics and GROUPS_READ_MAX groups per poll (pages of
 * 200), and shows the `--rows` busiest of each.
 */
import { TLS_FLAGS, UsageError, clientTlsOf, intFlag, parseArgs, SASL_FLAGS, saslOption } from "./args.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel top [options]

A live view of throughput per topic and lag per consumer group, from the broker's HTTP listener.

options:
  --http HOST:PORT     the broker's HTTP listener (default 127.0.0.1:9601; see serve --http-port)
  --interval-ms MS     time between polls (default 2000)
  --rows N             topics and groups shown (default 15)
  --once               print one screen (two polls an interval apart) and exit
  --tls-ca FILE        the HTTP listener serves HTTPS: trust this PEM CA (--tls alone: the system's)
  --tls-cert FILE      PEM client certificate, for a listener that requires one (with --tls-key)
  --tls-key FILE       PEM private key of --tls-cert
  --user NAME          HTTP Basic credentials for a broker with authentication on; the password
                       from RUNNEL_PASSWORD or --password-file FILE
  -h, --help           this text

examples:
  runnel top
  runnel top --http 10.0.0.5:9601 --rows 30
  runnel top --once --interval-ms 1000 > snapshot.txt
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...SASL_FLAGS,
  http: { type: "string" },
  "interval-ms": { type: "string" },
  rows: { type: "string" },
  once: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const PAGE_SIZE = 200;
const TOPICS_READ_MAX = 10_000;
const GROUPS_READ_MAX = 2_000;
const REQUEST_TIMEOUT_MS = 5_000;

interface TopicRow {
  name: string;
  partitions: number;
  messages: number;
  sizeBytes: number;
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
}

interface GroupRow {
  name: string;
  state: string;
  members: unknown[] | null;
  partitions: unknown[];
  lagTotal: number;
}

interface Snapshot {
  atMs: number;
  overview: { version: string; uptimeMs: number; topics: number; groups: number; stats: { connectionsOpen: number } };
  topics: TopicRow[];
  groups: GroupRow[];
}

/** TLS for the HTTP listener, from --tls/--tls-ca/--tls-cert/--tls-key (set once by `run`). */
let httpsTls: ReturnType<typeof clientTlsOf>;
/** `Authorization: Basic ...` from --user (set once by `run`), or none. */
let authorization: Record<string, string> = {};

async function getJson<T>(base: string, path: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), headers: authorization, ...(httpsTls === undefined ? {} : { tls: httpsTls }) });
  } catch (error) {
    throw new Error(`cannot reach the broker's HTTP listener at ${base} (${error instanceof Error ? error.message : String(error)}); is --http right, and is the broker's --http-port on?`);
  }
  if (!response.ok) throw new Error(`${base}${path} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  return (await response.json()) as T;
}

/** Every page of a paged list, up to `max` items. */
async function allPages<T>(base: string, path: string, field: string, max: number): Promise<T[]> {
  const items: T[] = [];
  for (let offset = 0; offset < max; offset += PAGE_SIZE) {
    const page = await getJson<Record<string, unknown>>(base, `${path}?offset=${offset}&limit=${PAGE_SIZE}`);
    const chunk = (page[field] ?? []) as T[];
    items.push(...chunk);
    if (offset + PAGE_SIZE >= Number(page.total ?? 0) || chunk.length === 0) break;
  }
  return items;
}

async function snapshot(base: string): Promise<Snapshot> {
  const [overview, topics, groups] = await Promise.all([
    getJson<Snapshot["overview"]>(base, "/api/overview"),
    allPages<TopicRow>(base, "/api/topics", "topics", TOPICS_READ_MAX),
    allPages<GroupRow>(base, "/api/groups", "groups", GROUPS_READ_MAX),
  ]);
  return { atMs: Date.now(), overview, topics, groups };
}

function compact(value: number): string {
  if (value >= 1e9) return `${(value / 1e9).toFixed(1)}G`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(value > 0 && value < 10 && value % 1 !== 0 ? 1 : 0);
}

function bytes(value: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let amount = value;
  let unit = 0;
  while (amount >= 1024 && unit < units.length - 1) {
    amount /= 1024;
    unit++;
  }
  return `${unit === 0 ? amount : amount.toFixed(1)} ${units[unit]}`;
}

function uptime(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  return `${hours}h ${Math.floor((seconds % 3600) / 60)}m ${seconds % 60}s`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("  ");
  return [line(header), ...rows.map(line)];
}

/** One screen: rates are (current - previous) / elapsed seconds. */
export function renderScreen(previous: Snapshot, current: Snapshot, rowsMax: number): string {
  const seconds = Math.max(0.001, (current.atMs - previous.atMs) / 1000);
  const before = new Map(previous.topics.map((topic) => [topic.name, topic]));
  const rates = current.topics.map((topic) => {
    const old = before.get(topic.name);
    const delta = (field: "messagesIn" | "bytesIn" | "messagesOut") => Math.max(0, (topic[field] - (old?.[field] ?? topic[field])) / seconds);
    return { topic, inMsgs: delta("messagesIn"), inBytes: delta("bytesIn"), outMsgs: delta("messagesOut") };
  });
  rates.sort((a, b) => b.inMsgs - a.inMsgs || b.outMsgs - a.outMsgs || (a.topic.name < b.topic.name ? -1 : 1));
  const groups = [...current.groups].sort((a, b) => b.lagTotal - a.lagTotal || (a.name < b.name ? -1 : 1));
  const overview = current.overview;
  const lines = [
    `runnel ${overview.version}  up ${uptime(overview.uptimeMs)}  topics ${overview.topics}  groups ${overview.groups}  connections ${overview.stats.connectionsOpen}  (every ${seconds.toFixed(1)} s)`,
    "",
    ...table(
      ["TOPIC", "IN MSG/S", "IN B/S", "OUT MSG/S", "MESSAGES", "SIZE", "PARTS"],
      rates.slice(0, rowsMax).map(({ topic, inMsgs, inBytes, outMsgs }) => [topic.name, compact(inMsgs), bytes(inBytes), compact(outMsgs), compact(topic.messages), bytes(topic.sizeBytes), String(topic.partitions)]),
    ),
    ...(rates.length > rowsMax ? [`... ${rates.length - rowsMax} more topics`] : []),
    "",
    ...table(
      ["GROUP", "LAG", "PARTITIONS", "MEMBERS", "STATE"],
      groups.slice(0, rowsMax).map((group) => [group.name, compact(group.lagTotal), String(group.partitions.length), group.members === null ? "?" : String(group.members.length), group.state]),
    ),
    ...(groups.length > rowsMax ? [`... ${groups.length - rowsMax} more groups`] : []),
  ];
  return `${lines.join("\n")}\n`;
}

function baseUrl(address: string): string {
  if (!/^[A-Za-z0-9.\-\[\]:]+:\d+$/.test(address)) throw new UsageError(`--http takes HOST:PORT; got '${address}'`);
  return `${httpsTls === undefined ? "http" : "https"}://${address}`;
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (flags.help) {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    httpsTls = clientTlsOf(flags);
    const sasl = saslOption(flags).sasl;
    if (sasl !== undefined) authorization = { authorization: `Basic ${Buffer.from(`${sasl.user}:${sasl.password}`).toString("base64")}` };
    const base = baseUrl(flags.http ?? "127.0.0.1:9601");
    const intervalMs = intFlag(flags["interval-ms"], "interval-ms", 2_000, 100, 3_600_000);
    const rowsMax = intFlag(flags.rows, "rows", 15, 1, 1_000);
    let previous = await snapshot(base);
    if (flags.once) {
      await Bun.sleep(intervalMs);
      process.stdout.write(renderScreen(previous, await snapshot(base), rowsMax));
      return EXIT_OK;
    }
    return await live(base, intervalMs, rowsMax, previous, (next) => (previous = next));
  } catch (error) {
    return reportFailure("top", error);
  }
}

/** Redraws until Ctrl-C (or SIGTERM); restores the cursor on the way out. */
async function live(base: string, intervalMs: number, rowsMax: number, first: Snapshot, keep: (next: Snapshot) => void): Promise<number> {
  const terminal = process.stdout.isTTY === true;
  let previous = first;
  let stopped = false;
  let wake: () => void = () => {};
  const stop = () => {
    stopped = true;
    wake();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  if (terminal) process.stdout.write("\x1b[?25l"); // hide the cursor while redrawing
  try {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, intervalMs);
      });
      if (stopped) break;
      const current = await snapshot(base);
      const screen = renderScreen(previous, current, rowsMax);
      process.stdout.write(terminal ? `\x1b[H\x1b[2J${screen}` : `${screen}\n`);
      previous = current;
      keep(current);
    }
    return EXIT_OK;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    if (terminal) process.stdout.write("\x1b[?25h\n");
  }
}
