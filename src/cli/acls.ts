/**
 * @module cli/acls
 * `runnel acls add|remove|list`: ACL administration from the shell, through the native
 * createAcls / deleteAcls / describeAcls ops (docs/protocol.md, "ACL entries"). With the broker's
 * `authorizer: "acl"` these need alter (describe, for list) on the cluster: run them as a
 * super-user, e.g. with the client certificate of a user named in `superUsers`.
 */
import { Admin } from "../client/admin.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { ACL_OPERATIONS, type AclEntry, type AclFilter, type AclOperation } from "../security/acl.ts";
import { choiceFlag, clientTlsOf, parseArgs, TLS_FLAGS, TLS_HELP, tlsOption, UsageError } from "./args.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel acls <command> [options]

commands:
  add      add allow (or, with --deny, deny) entries: one per --operation
  remove   remove every entry matching the options given (each one left out matches any value)
  list     list the entries matching the options given (all without options)

options:
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER})
${TLS_HELP}  --principal P            User:NAME, or * for everyone
  --topic NAME             a topic resource (with --prefixed: every topic starting with NAME;
                           the literal name * means every topic)
  --group NAME             a consumer-group resource (--prefixed and * as for --topic)
  --cluster                the cluster resource (topic creation, stats, ACL administration)
  --prefixed               NAME is a prefix (default: the literal name)
  --operation OP           ${ACL_OPERATIONS.join(", ")}; repeatable
  --deny                   a deny entry (deny wins over every allow); --allow is the default
  --allow                  for remove and list: only allow entries
  --format FORMAT          text (default) or json, for list
  -h, --help               this text

examples:
  runnel acls add --principal User:alice --topic logs- --prefixed --operation read
  runnel acls add --principal User:alice --group readers --operation read
  runnel acls add --principal User:alice --topic logs-secret --operation all --deny
  runnel acls remove --principal User:alice --topic logs- --prefixed
  runnel acls list --principal User:alice
`;

const FLAGS = {
  ...TLS_FLAGS,
  broker: { type: "string", short: "b" },
  principal: { type: "string" },
  topic: { type: "string" },
  group: { type: "string" },
  cluster: { type: "boolean" },
  prefixed: { type: "boolean" },
  operation: { type: "strings" },
  deny: { type: "boolean" },
  allow: { type: "boolean" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Flags = ReturnType<typeof parseArgs<typeof FLAGS>>["flags"];

export async function run(argv: string[]): Promise<number> {
  let admin: Admin | null = null;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    const [command, ...extra] = positionals;
    if (flags.help || command === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (command === undefined) throw new UsageError("a command is needed: add, remove or list");
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    if (flags.deny && flags.allow) throw new UsageError("--deny and --allow exclude each other");
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    admin = new Admin({ broker: flags.broker ?? DEFAULT_BROKER, clientId: "runnel-cli-acls", connectTimeoutMs: 5_000, ...tlsOption(clientTlsOf(flags)) });
    switch (command) {
      case "add": {
        const answer = await admin.connection.request("createAcls", { acls: entriesOf(flags) });
        process.stdout.write(`added ${String(answer.created)} entr${answer.created === 1 ? "y" : "ies"}\n`);
        return EXIT_OK;
      }
      case "remove": {
        const filters = filtersOf(flags);
        if (filters.every((filter) => filter.principal === undefined && filter.resourceType === undefined)) {
          throw new UsageError("remove needs --principal or a resource (--topic, --group, --cluster): it removes every entry that matches");
        }
        const answer = await admin.connection.request("deleteAcls", { filters });
        printEntries(answer.deleted as AclEntry[], format, "removed");
        return EXIT_OK;
      }
      case "list": {
        const answer = await admin.connection.request("describeAcls", { filter: filtersOf(flags)[0] ?? {} });
        printEntries(answer.acls as AclEntry[], format, null);
        return EXIT_OK;
      }
      default:
        throw new UsageError(`unknown command '${command}'; use add, remove or list`);
    }
  } catch (error) {
    return reportFailure("acls", error);
  } finally {
    await admin?.close().catch(() => undefined);
  }
}

function resourceOf(flags: Flags): { resourceType?: AclEntry["resourceType"]; resourceName?: string } {
  const given = [flags.topic !== undefined, flags.group !== undefined, flags.cluster === true].filter(Boolean).length;
  if (given > 1) throw new UsageError("name one resource: --topic, --group or --cluster");
  if (flags.topic !== undefined) return { resourceType: "topic", resourceName: flags.topic };
  if (flags.group !== undefined) return { resourceType: "group", resourceName: flags.group };
  if (flags.cluster === true) return { resourceType: "cluster" };
  return {};
}

function operationsOf(flags: Flags): AclOperation[] {
  return (flags.operation ?? []).flatMap((value) => value.split(",")).map((value) => {
    const operation = value.trim().toLowerCase();
    if (!(ACL_OPERATIONS as readonly string[]).includes(operation)) throw new UsageError(`--operation takes ${ACL_OPERATIONS.join(", ")}; got '${value}'`);
    return operation as AclOperation;
  });
}

function entriesOf(flags: Flags): Array<Record<string, unknown>> {
  if (flags.principal === undefined) throw new UsageError("add needs --principal (User:NAME or *)");
  const resource = resourceOf(flags);
  if (resource.resourceType === undefined) throw new UsageError("add needs a resource: --topic NAME, --group NAME or --cluster");
  const operations = operationsOf(flags);
  if (operations.length === 0) throw new UsageError(`add needs --operation (${ACL_OPERATIONS.join(", ")})`);
  return operations.map((operation) => ({
    principal: flags.principal,
    ...resource,
    patternType: flags.prefixed ? "prefixed" : "literal",
    operation,
    permission: flags.deny ? "deny" : "allow",
  }));
}

/** One filter per --operation (one matching any operation without it). */
function filtersOf(flags: Flags): AclFilter[] {
  const resource = resourceOf(flags);
  const base: AclFilter = {
    ...(flags.principal === undefined ? {} : { principal: flags.principal }),
    ...resource,
    ...(resource.resourceType === undefined || resource.resourceType === "cluster" ? {} : { patternType: flags.prefixed ? "prefixed" : "literal" }),
    ...(flags.deny ? { permission: "deny" as const } : flags.allow ? { permission: "allow" as const } : {}),
  };
  const operations = operationsOf(flags);
  return operations.length === 0 ? [base] : operations.map((operation) => ({ ...base, operation }));
}

function printEntries(entries: AclEntry[], format: "text" | "json", verb: string | null): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(entries)}\n`);
    return;
  }
  if (verb !== null) process.stdout.write(`${verb} ${entries.length} entr${entries.length === 1 ? "y" : "ies"}\n`);
  if (entries.length === 0) return;
  const rows = [["PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN"], ...entries.map((entry) => [entry.principal, entry.permission, entry.operation, entry.resourceType, entry.resourceName, entry.patternType])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  process.stdout.write(`${rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2))).join("")).join("\n")}\n`);
}
