/**
 * @module cli/cluster
 * `runnel cluster status --cluster etcd://host:port/name`: the cluster as etcd holds it — live
 * brokers, the controller, topics, and partitions that are under-replicated or offline. Reads etcd
 * directly (no broker needed), so it works while brokers are down. Exit 0 when every partition is
 * fully replicated and led, 3 when some are not (for scripts and health checks).
 * `runnel cluster reassign` and `runnel cluster rebalance` move partitions through a broker's
 * native admin ops (client/reassignments.ts; docs/cluster.md, "Adding a broker and moving partitions").
 */
import { type ClusterAddress, parseClusterUrl } from "../cluster/cluster-url.ts";
import { type ClusterStatus, readClusterStatus } from "../cluster/cluster-status.ts";
import { EtcdGateway } from "../cluster/etcd-gateway.ts";
import { EtcdLayout } from "../cluster/etcd-layout.ts";
import { Admin } from "../client/admin.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { alterPartitionReassignment, type PartitionReassignment, rebalance } from "../client/reassignments.ts";
import type { RebalanceMove } from "../cluster/reassignment.ts";
import { RunnelError } from "../errors.ts";
import { UsageError, choiceFlag, clientTlsOf, intFlag, parseArgs, saslOption, TLS_FLAGS, TLS_HELP, tlsOption } from "./args.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel cluster status --cluster etcd://host:port[,host:port]/name [--format text|json]
       runnel cluster reassign --topic T --partition P (--replicas 2,3,1 | --cancel) [--broker HOST:PORT]
       runnel cluster rebalance [--dry-run] [--broker HOST:PORT]

Shows a cluster as etcd holds it: live brokers, the controller, topics, and the partitions that
are under-replicated (ISR smaller than the replicas) or offline (no leader). Reads etcd directly.
Exit code 0 when all is well, 3 when a partition is under-replicated or offline. Partitions
being moved are listed as reassignments in progress.

reassign moves one partition's replicas to the brokers listed (the first is the preferred
leader; the count may differ from today's). The new replicas copy the partition from its leader;
once all are in sync, leadership moves into the new set and the replicas left out delete their
copy. --cancel goes back to the replicas before the move.

rebalance spreads every partition's replicas, then preferred leaders, evenly over the live
brokers, moving as few replicas as it can; it prints the plan and applies it (not with --dry-run).

options:
  --cluster URL          the cluster, as given to runnel serve --cluster (status)
  -b, --broker HOST:PORT a broker of the cluster (reassign, rebalance; default ${DEFAULT_BROKER})
${TLS_HELP}  --topic T, --partition P, --replicas IDS, --cancel   (reassign)
  --dry-run              print the rebalance plan only
  --format FORMAT        text (default) or json
  -h, --help             this text

examples:
  runnel cluster reassign --topic orders --partition 0 --replicas 3,1
  runnel cluster rebalance --dry-run
  runnel cluster status --cluster etcd://127.0.0.1:2379/prod
`;

const FLAGS = {
  ...TLS_FLAGS,
  cluster: { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
  broker: { type: "string", short: "b" },
  topic: { type: "string" },
  partition: { type: "string" },
  replicas: { type: "string" },
  cancel: { type: "boolean" },
  "dry-run": { type: "boolean" },
  user: { type: "string" },
  "password-file": { type: "string" },
} as const;

type Flags = ReturnType<typeof parseArgs<typeof FLAGS>>["flags"];
/** A status read finished, and some partition needs attention. */
export const EXIT_DEGRADED = 3;

export async function run(argv: string[]): Promise<number> {
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (flags.help || positionals[0] === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    if (positionals[0] === "reassign" || positionals[0] === "rebalance") return await moveReplicas(positionals[0], flags);
    if (positionals[0] !== "status") throw new UsageError("the commands are status, reassign and rebalance");
    if (flags.cluster === undefined) throw new UsageError("--cluster etcd://host:port/name is needed");
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    const address = clusterAddress(flags.cluster);
    const status = await readClusterStatus(new EtcdGateway({ endpoints: address.endpoints, requestTimeoutMs: 5000 }), new EtcdLayout(address.cluster));
    process.stdout.write(format === "json" ? `${JSON.stringify(status)}\n` : describe(status));
    return status.underReplicated.length + status.offline.length === 0 ? EXIT_OK : EXIT_DEGRADED;
  } catch (error) {
    return reportFailure("cluster", error);
  }
}

/** reassign / rebalance, through a broker's admin ops. */
async function moveReplicas(command: "reassign" | "rebalance", flags: Flags): Promise<number> {
  const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
  const target = command === "reassign" ? reassignTarget(flags) : null;
  const admin = new Admin({ broker: flags.broker ?? DEFAULT_BROKER, clientId: "runnel-cli-cluster", connectTimeoutMs: 5_000, ...tlsOption(clientTlsOf(flags)), ...saslOption(flags) });
  try {
    if (target !== null) {
      const started = await alterPartitionReassignment(admin, target.topic, target.partition, target.replicas);
      process.stdout.write(format === "json" ? `${JSON.stringify(started)}\n` : describeReassignment(started, target.replicas === null));
    } else {
      const dryRun = flags["dry-run"] === true;
      const moves = await rebalance(admin, { dryRun });
      process.stdout.write(format === "json" ? `${JSON.stringify({ dryRun, moves })}\n` : describePlan(moves, dryRun));
    }
    return EXIT_OK;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function reassignTarget(flags: Flags): { topic: string; partition: number; replicas: number[] | null } {
  if (flags.topic === undefined) throw new UsageError("reassign needs --topic");
  if (flags.partition === undefined) throw new UsageError("reassign needs --partition");
  const partition = intFlag(flags.partition, "partition", 0, 0);
  if ((flags.replicas === undefined) === (flags.cancel !== true)) throw new UsageError("reassign needs either --replicas 2,3,1 or --cancel");
  if (flags.replicas === undefined) return { topic: flags.topic, partition, replicas: null };
  const replicas = flags.replicas.split(",").map((item) => {
    const id = Number(item.trim());
    if (!Number.isSafeInteger(id) || id < 0 || item.trim() === "") throw new UsageError(`--replicas takes broker ids separated by commas, e.g. 2,3,1; got '${flags.replicas}'`);
    return id;
  });
  return { topic: flags.topic, partition, replicas };
}

function describeReassignment(state: PartitionReassignment, cancelled: boolean): string {
  const what = cancelled ? "reassignment cancelled" : "reassignment started";
  return `${state.topic}/${state.partition}: ${what}; replicas [${state.replicas.join(",")}], adding [${state.addingReplicas.join(",")}], removing [${state.removingReplicas.join(",")}], isr [${state.isr.join(",")}]\n`;
}

function describePlan(moves: readonly RebalanceMove[], dryRun: boolean): string {
  if (moves.length === 0) return "balanced already: nothing to move\n";
  const lines = moves.map((move) => `  ${move.topic}/${move.partition}  [${move.from.join(",")}] -> [${move.to.join(",")}]`);
  const tail = dryRun ? "dry run: nothing was changed" : "reassignments started; follow them with runnel cluster status";
  return `${moves.length} partition(s) to move:\n${lines.join("\n")}\n${tail}\n`;
}

/** The --cluster value, or a UsageError saying what is wrong with it. */
function clusterAddress(url: string): ClusterAddress {
  try {
    return parseClusterUrl(url);
  } catch (error) {
    throw new UsageError(error instanceof RunnelError ? error.message : String(error));
  }
}

function describe(status: ClusterStatus): string {
  const lines = [
    `cluster ${status.cluster} (etcd revision ${status.revision})`,
    `controller: ${status.controller === null ? "none" : `broker ${status.controller}`}`,
    `brokers (${status.brokers.length} live):`,
    ...status.brokers.map((broker) => `  ${broker.brokerId}  ${broker.host}:${broker.port}${broker.kafkaPort === null ? "" : `  kafka ${broker.kafkaPort}`}`),
    `topics: ${status.topics.length}, partitions: ${status.partitions}`,
    ...status.topics.map((topic) => `  ${topic.name}  ${topic.partitions} partition(s), replication factor ${topic.replicationFactor}, min in-sync ${topic.minInsyncReplicas}`),
    `under-replicated partitions: ${status.underReplicated.length}`,
    ...status.underReplicated.map((state) => `  ${state.topic}/${state.partition}  leader ${state.leader}  isr [${state.isr.join(",")}]  replicas [${state.replicas.join(",")}]`),
    `offline partitions: ${status.offline.length}`,
    ...status.offline.map((state) => `  ${state.topic}/${state.partition}  last in sync [${state.isr.join(",")}]  replicas [${state.replicas.join(",")}]`),
    `reassignments in progress: ${status.reassigning.length}`,
    ...status.reassigning.map(
      (state) => `  ${state.topic}/${state.partition}  replicas [${state.replicas.join(",")}]  adding [${(state.addingReplicas ?? []).join(",")}]  removing [${(state.removingReplicas ?? []).join(",")}]  isr [${state.isr.join(",")}]`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
