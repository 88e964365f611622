#!/usr/bin/env bun
/**
 * @module main
 * The `runnel` command: picks a subcommand and hands it the rest of argv. Each subcommand
 * lives in src/cli/<name>.ts and exports `run(argv): Promise<number>` (the exit code).
 * Subcommands load lazily so `runnel produce` never pays for the server's imports.
 */
import packageJson from "../package.json" with { type: "json" };
import { exitQuietlyWhenStdoutCloses } from "./cli/output.ts";

type CommandModule = { run(argv: string[]): Promise<number> };

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  serve: { summary: "run the broker", load: () => import("./cli/serve.ts") },
  topics: { summary: "create, list, describe, delete topics", load: () => import("./cli/topics.ts") },
  produce: { summary: "send stdin lines as messages", load: () => import("./cli/produce.ts") },
  consume: { summary: "print messages from a topic", load: () => import("./cli/consume.ts") },
  groups: { summary: "list, describe, delete consumer groups; reset their offsets", load: () => import("./cli/groups.ts") },
  acls: { summary: "add, remove, list access control entries", load: () => import("./cli/acls.ts") },
  bench: { summary: "measure throughput and latency", load: () => import("./cli/bench.ts") },
  users: { summary: "add, remove, list the users who may authenticate", load: () => import("./cli/users.ts") },
  top: { summary: "live throughput per topic and lag per group", load: () => import("./cli/top.ts") },
  cluster: { summary: "a cluster's brokers, controller and under-replicated partitions (etcd); reassign and rebalance partitions", load: () => import("./cli/cluster.ts") },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(10)}${command.summary}`);
  return [
    `runnel ${packageJson.version}: a single-binary, Kafka-class message broker`,
    "",
    "usage: runnel <command> [options]    (runnel <command> --help for more)",
    "",
    "commands:",
    ...lines,
    "",
    "  --version  print the version",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${packageJson.version}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`runnel: unknown command '${name}'. Try 'runnel --help'.\n`);
    return 2;
  }
  const module = await command.load().catch((error: unknown) => {
    process.stderr.write(`runnel: the '${name}' command is not available in this build (${String(error)})\n`);
    return null;
  });
  if (!module) return 1;
  return module.run(rest);
}

exitQuietlyWhenStdoutCloses();
process.exitCode = await main(process.argv.slice(2));
