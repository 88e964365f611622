/**
 * @module cli/groups
 * `runnel groups list|describe|delete|reset-offsets`: consumer-group administration from the
 * shell, through the client library's Admin. `describe` shows, like Kafka's
 * `kafka-consumer-groups.sh --describe`, each partition's committed offset, end offset, lag
 * and owning member. `reset-offsets` commits new offsets for a group that has no members (a
 * running member would overwrite them).
 */
import type { Admin, GroupDescription, GroupSummary } from "../client/admin.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { RunnelError } from "../errors.ts";
import { TLS_FLAGS, TLS_HELP, UsageError, choiceFlag, parseArgs, SASL_FLAGS, SASL_HELP } from "./args.ts";
import { adminFromFlags } from "./admin-client.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel groups <command> [options]

commands:
  list                                        groups with members or committed offsets
  describe GROUP                              members, and per partition: committed offset,
                                              end offset, lag and owner
  delete GROUP                                delete a group without members, and its offsets
  reset-offsets GROUP --topic T --to WHERE    set a group's offsets on T (no members allowed):
                                              WHERE is earliest, latest, an offset, or a time
                                              (ISO 8601, e.g. 2026-12-07T10:00:00Z)

options:
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER}); in a cluster, several
                           (a:9600,b:9600): the first that answers finds the partition leaders
${TLS_HELP}${SASL_HELP}  --topic TOPIC            the topic whose offsets reset-offsets sets
  --to WHERE               earliest, latest, OFFSET or TIME (reset-offsets)
  --format FORMAT          text (default) or json, for list and describe
  -h, --help               this text

examples:
  runnel groups list
  runnel groups describe mailer
  runnel groups reset-offsets mailer --topic events --to earliest
  runnel groups delete mailer
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...SASL_FLAGS,
  broker: { type: "string", short: "b" },
  topic: { type: "string" },
  to: { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function run(argv: string[]): Promise<number> {
  let admin: Admin | null = null;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    const [command, group, ...extra] = positionals;
    if (flags.help || command === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (command === undefined) throw new UsageError("a command is needed: list, describe, delete or reset-offsets");
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    admin = adminFromFlags(flags, "runnel-cli-groups");
    switch (command) {
      case "list":
        if (group !== undefined) throw new UsageError(`'groups list' takes no group (got '${group}')`);
        return printList(await admin.listGroups(), format);
      case "describe":
        return await describe(admin, needGroup(group, command), format);
      case "delete":
        await admin.deleteGroup(needGroup(group, command));
        process.stdout.write(`deleted group ${group}\n`);
        return EXIT_OK;
      case "reset-offsets":
        return await resetOffsets(admin, needGroup(group, command), needFlag(flags.topic, "topic"), needFlag(flags.to, "to"));
      default:
        throw new UsageError(`unknown command '${command}'; use list, describe, delete or reset-offsets`);
    }
  } catch (error) {
    return reportFailure("groups", error);
  } finally {
    await admin?.close().catch(() => undefined);
  }
}

function needGroup(group: string | undefined, command: string): string {
  if (group === undefined) throw new UsageError(`'groups ${command}' needs a group name`);
  return group;
}

function needFlag(value: string | undefined, name: string): string {
  if (value === undefined) throw new UsageError(`reset-offsets needs --${name}`);
  return value;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2))).join("")).join("\n") + "\n";
}

function printList(groups: GroupSummary[], format: "text" | "json"): number {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(groups)}\n`);
    return EXIT_OK;
  }
  if (groups.length === 0) {
    process.stderr.write("no groups yet; a consumer with a groupId makes one\n");
    return EXIT_OK;
  }
  const rows = [["GROUP", "KIND", "STATE", "MEMBERS", "GENERATION"], ...groups.map((entry) => [entry.group, entry.kind ?? "-", entry.state, String(entry.members), String(entry.generation)])];
  process.stdout.write(table(rows));
  return EXIT_OK;
}

interface PartitionRow {
  topic: string;
  partition: number;
  committed: number;
  end: number;
  memberId: string;
  clientId: string;
}

/** One row per partition the group has committed or owns: committed offset, end offset, lag, owner. */
async function describe(admin: Admin, group: string, format: "text" | "json"): Promise<number> {
  const description = await admin.describeGroup(group);
  const rows = new Map<string, PartitionRow>();
  const rowOf = (topic: string, partition: number): PartitionRow => {
    const key = `${topic}\u0000${partition}`;
    let row = rows.get(key);
    if (row === undefined) rows.set(key, (row = { topic, partition, committed: -1, end: -1, memberId: "-", clientId: "-" }));
    return row;
  };
  for (const committed of await admin.groupOffsets(group)) rowOf(committed.topic, committed.partition).committed = committed.offset;
  for (const member of description.members) {
    for (const { topic, partitions } of [...member.assigned, ...member.revoking]) {
      for (const partition of partitions) Object.assign(rowOf(topic, partition), { memberId: member.memberId, clientId: member.clientId });
    }
  }
  const sorted = [...rows.values()].sort((left, right) => (left.topic === right.topic ? left.partition - right.partition : left.topic < right.topic ? -1 : 1));
  const ends = sorted.length === 0 ? [] : await admin.listOffsets(sorted.map(({ topic, partition }) => ({ topic, partition, at: "latest" as const })));
  sorted.forEach((row, index) => (row.end = ends[index] ?? -1));
  if (format === "json") {
    const partitions = sorted.map((row) => ({ ...row, lag: row.committed >= 0 ? row.end - row.committed : null }));
    process.stdout.write(`${JSON.stringify({ ...description, partitions })}\n`);
    return EXIT_OK;
  }
  printHeader(description);
  if (sorted.length === 0) return EXIT_OK;
  const lines = [["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER", "CLIENT-ID"]];
  for (const row of sorted) {
    const committed = row.committed >= 0 ? String(row.committed) : "-";
    const lag = row.committed >= 0 ? String(row.end - row.committed) : "-";
    lines.push([row.topic, String(row.partition), committed, String(row.end), lag, row.memberId, row.clientId || "-"]);
  }
  process.stdout.write(`\n${table(lines)}`);
  return EXIT_OK;
}

function printHeader(description: GroupDescription): void {
  const kind = description.kind === undefined ? "" : `${description.kind}, `;
  const assignor = description.assignor === undefined ? "" : `, assignor ${description.assignor}`;
  const count = description.members.length;
  process.stdout.write(`group ${description.group} (${kind}${description.state}, generation ${description.generation}${assignor}): ${count} member${count === 1 ? "" : "s"}\n`);
}

/** Commits new offsets on every partition of `topic`, for a group without members. */
async function resetOffsets(admin: Admin, group: string, topic: string, to: string): Promise<number> {
  const description = await admin.describeGroup(group);
  if (description.members.length > 0) {
    throw new RunnelError("GROUP_NOT_EMPTY", `group '${group}' has ${description.members.length} members; stop its consumers first (they would commit over the reset)`);
  }
  const partitions = (await admin.describeTopic(topic)).partitions;
  const at = parseTarget(to);
  let offsets: number[];
  if (typeof at === "object") {
    offsets = partitions.map((partition) => Math.min(Math.max(at.offset, partition.logStartOffset), partition.nextOffset));
  } else {
    const found = await admin.listOffsets(partitions.map((partition) => ({ topic, partition: partition.partition, at })));
    offsets = found.map((offset, index) => (offset >= 0 ? offset : (partitions[index]?.nextOffset ?? 0)));
  }
  const entries = partitions.map((partition, index) => ({ topic, partition: partition.partition, offset: offsets[index] ?? 0 }));
  await admin.commitOffsets(group, entries);
  process.stdout.write(table([["TOPIC", "PARTITION", "NEW-OFFSET"], ...entries.map((entry) => [entry.topic, String(entry.partition), String(entry.offset)])]));
  return EXIT_OK;
}

/** earliest | latest | an offset | a time (ISO 8601) as a timestamp in ms. */
function parseTarget(to: string): "earliest" | "latest" | number | { offset: number } {
  if (to === "earliest" || to === "latest") return to;
  if (/^\d+$/.test(to)) return { offset: Number(to) };
  const timestampMs = Date.parse(to);
  if (Number.isNaN(timestampMs)) throw new UsageError(`--to takes earliest, latest, an offset or an ISO 8601 time; got '${to}'`);
  return timestampMs;
}
