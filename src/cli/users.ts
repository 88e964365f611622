/**
 * @module cli/users
 * `runnel users add|remove|list`: the users who may authenticate (docs/security.md). Two ways:
 *
 * - against a running broker, as a super-user (`--user` of the `superUsers` option, password in
 *   RUNNEL_PASSWORD or --password-file): the native createUser/deleteUser/listUsers ops; the
 *   SCRAM verifiers are derived here, so the new password never leaves this process;
 * - offline, with `--data-dir DIR`: edits DIR/users.json directly, to create the first users
 *   before the broker starts. Refused while a broker holds the data directory's lock.
 *
 * The new user's password is read from stdin (its first line) or --new-password-file, never
 * from the command line, where every user of the machine could read it.
 */
import * as fs from "node:fs";
import type { Admin } from "../client/admin.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { lockDataDir } from "../log/data-dir-lock.ts";
import { CredentialStore, type UserInfo } from "../security/credential-store.ts";
import { deriveVerifier, SCRAM_ITERATIONS_DEFAULT, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN, SCRAM_MECHANISMS, type ScramMechanism, type ScramVerifier } from "../security/scram.ts";
import { choiceFlag, intFlag, parseArgs, SASL_FLAGS, SASL_HELP, TLS_FLAGS, TLS_HELP, UsageError } from "./args.ts";
import { adminFromFlags } from "./admin-client.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel users <command> [options]

commands:
  add NAME       add a user, or change its password; the password is read from stdin (its
                 first line) or from --new-password-file
  remove NAME    remove a user (its open connections stay until they close)
  list           the users and their SCRAM mechanisms

against a running broker (as a super-user, see the superUsers option):
  -b, --broker HOST:PORT   broker address (default ${DEFAULT_BROKER})
${TLS_HELP}${SASL_HELP}
offline, before the broker starts (refused while a broker uses the directory):
  --data-dir DIR           edit DIR/users.json directly

options:
  --new-password-file FILE the new user's password (first line), instead of stdin
  --iterations N           PBKDF2 iterations of the stored verifiers (default ${SCRAM_ITERATIONS_DEFAULT}, at least ${SCRAM_ITERATIONS_MIN})
  --format FORMAT          text (default) or json, for list
  -h, --help               this text

examples:
  printf '%s\\n' "$ADMIN_PASSWORD" | runnel users add admin --data-dir /var/lib/runnel
  RUNNEL_PASSWORD=... runnel users add orders-service --user admin --new-password-file pw.txt
  RUNNEL_PASSWORD=... runnel users list --user admin --broker 10.0.0.5:9600 --tls-ca ca.crt
  runnel users remove orders-service --data-dir /var/lib/runnel
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...SASL_FLAGS,
  broker: { type: "string", short: "b" },
  "data-dir": { type: "string" },
  "new-password-file": { type: "string" },
  iterations: { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** What `users` does, against a broker or a data directory. */
interface UserTarget {
  add(name: string, password: string, iterations: number): Promise<boolean>;
  remove(name: string): Promise<void>;
  list(): Promise<UserInfo[]>;
  close(): Promise<void>;
}

function brokerTarget(admin: Admin): UserTarget {
  return {
    add: async (name, password, iterations) => (await admin.upsertUser(name, password, { iterations })).created,
    remove: (name) => admin.deleteUser(name),
    list: async () => (await admin.listUsers()) as UserInfo[],
    close: () => admin.close(),
  };
}

function offlineTarget(dataDir: string): UserTarget {
  fs.mkdirSync(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir);
  try {
    const store = CredentialStore.open(dataDir);
    return {
      add: async (name, password, iterations) => {
        const existed = store.has(name);
        const verifiers: Partial<Record<ScramMechanism, ScramVerifier>> = {};
        for (const mechanism of SCRAM_MECHANISMS) verifiers[mechanism] = deriveVerifier(mechanism, password, iterations);
        store.upsert(name, verifiers);
        return !existed;
      },
      remove: async (name) => {
        if (!store.remove(name)) throw new UsageError(`no user '${name}' in ${dataDir}`);
      },
      list: async () => store.list(),
      close: async () => lock.release(),
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function newPassword(flags: { "new-password-file"?: string }): Promise<string> {
  const file = flags["new-password-file"];
  let text: string;
  if (file !== undefined) {
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`--new-password-file ${file}: cannot read it (${(error as { code?: string }).code ?? String(error)})`);
    }
  } else {
    text = await Bun.stdin.text();
  }
  const password = text.split(/\r?\n/)[0] ?? "";
  if (password === "") throw new UsageError(`the new password is empty: give it on stdin's first line or in --new-password-file`);
  return password;
}

function needName(name: string | undefined, command: string): string {
  if (name === undefined || name === "") throw new UsageError(`'users ${command}' needs a user name`);
  return name;
}

export async function run(argv: string[]): Promise<number> {
  let target: UserTarget | null = null;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    const [command, name, ...extra] = positionals;
    if (flags.help || command === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (command === undefined) throw new UsageError("a command is needed: add, remove or list");
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    const iterations = intFlag(flags.iterations, "iterations", SCRAM_ITERATIONS_DEFAULT, SCRAM_ITERATIONS_MIN, SCRAM_ITERATIONS_MAX);
    const dataDir = flags["data-dir"];
    if (dataDir !== undefined && (flags.broker !== undefined || flags.user !== undefined)) throw new UsageError("--data-dir edits the users offline: leave out --broker and --user");
    // Read before touching anything, so a bad password source changes nothing.
    const password = command === "add" ? await newPassword(flags) : null;
    target =
      dataDir !== undefined
        ? offlineTarget(dataDir)
        : brokerTarget(adminFromFlags(flags, "runnel-cli-users"));
    switch (command) {
      case "add": {
        const user = needName(name, command);
        const created = await target.add(user, password ?? "", iterations);
        process.stdout.write(`${created ? "added user" : "changed the password of user"} ${user}\n`);
        return EXIT_OK;
      }
      case "remove": {
        const user = needName(name, command);
        await target.remove(user);
        process.stdout.write(`removed user ${user}\n`);
        return EXIT_OK;
      }
      case "list": {
        if (name !== undefined) throw new UsageError(`'users list' takes no name (got '${name}')`);
        const users = await target.list();
        if (format === "json") process.stdout.write(`${JSON.stringify(users)}\n`);
        else for (const user of users) process.stdout.write(`${user.name}\t${user.mechanisms.map((entry) => `${entry.mechanism} (${entry.iterations} iterations)`).join(", ")}\n`);
        return EXIT_OK;
      }
      default:
        throw new UsageError(`unknown command '${command}'; use add, remove or list`);
    }
  } catch (error) {
    return reportFailure("users", error);
  } finally {
    await target?.close().catch(() => undefined);
  }
}
