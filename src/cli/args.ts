/**
 * @module cli/args
 * Flag parsing shared by the `runnel` subcommands. Dependency-free on purpose: a command
 * declares its flags once, gets typed values back, and any mistake (unknown flag, missing
 * value, bad number) is a UsageError whose message says what to fix; commands print it as
 * one line and exit 2.
 *
 * Accepted forms: `--name value`, `--name=value`, `-n value`, boolean `--name`, repeated
 * `--name a --name b` for "strings" flags, and `--` to end the flags.
 */

import { readFileSync } from "node:fs";

export type FlagType = "string" | "strings" | "boolean";

export interface FlagSpec {
  type: FlagType;
  /** One-letter alias, without the dash. */
  short?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<Spec extends FlagSpec> = Spec["type"] extends "boolean" ? boolean : Spec["type"] extends "strings" ? string[] : string;

export type FlagValues<Specs extends FlagSpecs> = { [Name in keyof Specs]?: ValueOf<Specs[Name]> };

export interface ParsedArgs<Specs extends FlagSpecs> {
  flags: FlagValues<Specs>;
  positionals: string[];
}

/** A mistake in how a command was called: the message says what to fix. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function parseArgs<Specs extends FlagSpecs>(argv: readonly string[], specs: Specs): ParsedArgs<Specs> {
  const flags: Record<string, string | string[] | boolean> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(specs).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])));
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === "--") {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const written = equals < 0 ? arg : arg.slice(0, equals);
    const name = written.startsWith("--") ? written.slice(2) : byShort.get(written.slice(1));
    const spec = name === undefined ? undefined : specs[name];
    if (name === undefined || spec === undefined) throw new UsageError(`unknown option '${written}'`);
    if (spec.type === "boolean") {
      if (equals >= 0) throw new UsageError(`option '${written}' takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (equals >= 0) value = arg.slice(equals + 1);
    else value = argv[++index];
    if (value === undefined) throw new UsageError(`option '${written}' needs a value`);
    if (spec.type === "strings") flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else flags[name] = value;
  }
  return { flags: flags as FlagValues<Specs>, positionals };
}

/** An integer flag within bounds, or `fallback` when absent. */
export function intFlag(value: string | undefined, name: string, fallback: number, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be a whole number in ${min}..${max}; got '${value}'`);
  }
  return parsed;
}

/** One of a fixed set of words, or `fallback` when absent. */
export function choiceFlag<Choice extends string>(value: string | undefined, name: string, choices: readonly Choice[], fallback: Choice): Choice {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${choices.join(", ")}; got '${value}'`);
  return value as Choice;
}

/** A required flag. */
export function required(value: string | undefined, name: string): string {
  if (value === undefined || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

/** The client TLS flags every command that talks to a broker takes (docs/security.md). */
export const TLS_FLAGS = {
  tls: { type: "boolean" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const;

/** Help lines for TLS_FLAGS. */
export const TLS_HELP = `  --tls                    connect with TLS (trusting the system's CAs unless --tls-ca)
  --tls-ca FILE            PEM CA file the broker's certificate must chain to (implies --tls)
  --tls-cert FILE          PEM client certificate, for a broker that requires one (with --tls-key)
  --tls-key FILE           PEM private key of --tls-cert
`;

/** The client's TLS from the flags: undefined for plaintext; unreadable files are a UsageError. */
export function clientTlsOf(flags: { tls?: boolean; "tls-ca"?: string; "tls-cert"?: string; "tls-key"?: string }): { ca?: string; cert?: string; key?: string } | undefined {
  const on = flags.tls === true || flags["tls-ca"] !== undefined || flags["tls-cert"] !== undefined || flags["tls-key"] !== undefined;
  if (!on) return undefined;
  if ((flags["tls-cert"] === undefined) !== (flags["tls-key"] === undefined)) throw new UsageError("--tls-cert and --tls-key go together (a client certificate and its key)");
  const read = (name: "tls-ca" | "tls-cert" | "tls-key"): Record<string, string> => {
    const file = flags[name];
    if (file === undefined) return {};
    try {
      return { [name.slice(4)]: readFileSync(file, "utf8") };
    } catch (error) {
      throw new UsageError(`--${name} ${file}: cannot read it (${(error as { code?: string }).code ?? String(error)})`);
    }
  };
  return { ...read("tls-ca"), ...read("tls-cert"), ...read("tls-key") };
}

/** `{ tls }` to spread into client options, or nothing for plaintext. */
export function tlsOption(tls: { ca?: string; cert?: string; key?: string } | undefined): { tls?: { ca?: string; cert?: string; key?: string } } {
  return tls === undefined ? {} : { tls };
}

/** The authentication flags every command that talks to a broker takes (docs/security.md). */
export const SASL_FLAGS = {
  user: { type: "string" },
  "password-file": { type: "string" },
} as const;

/** Help lines for SASL_FLAGS. There is no --password flag: a command line is visible to every user of the machine. */
export const SASL_HELP = `  --user NAME              authenticate as NAME (SCRAM-SHA-256) with the password in the
                           environment variable RUNNEL_PASSWORD or in --password-file
  --password-file FILE     file holding the password (its first line)
`;

/** The password of --user: --password-file's first line, else RUNNEL_PASSWORD. */
export function readPassword(flags: { "password-file"?: string }, env: Record<string, string | undefined> = process.env): string | null {
  const file = flags["password-file"];
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`--password-file ${file}: cannot read it (${(error as { code?: string }).code ?? String(error)})`);
    }
    const password = text.split(/\r?\n/)[0] ?? "";
    if (password === "") throw new UsageError(`--password-file ${file}: the first line is empty`);
    return password;
  }
  const password = env.RUNNEL_PASSWORD;
  return password === undefined || password === "" ? null : password;
}

/** `{ sasl }` to spread into client options, or nothing without --user. */
export function saslOption(flags: { user?: string; "password-file"?: string }, env: Record<string, string | undefined> = process.env): { sasl?: { user: string; password: string } } {
  if (flags.user === undefined) {
    if (flags["password-file"] !== undefined) throw new UsageError("--password-file needs --user");
    return {};
  }
  const password = readPassword(flags, env);
  if (password === null) throw new UsageError(`--user ${flags.user} needs a password: set RUNNEL_PASSWORD or give --password-file FILE`);
  return { sasl: { user: flags.user, password } };
}
