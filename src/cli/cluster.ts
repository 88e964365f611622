/**
 * @module cli/cluster
 * `runnel cluster status --cluster etcd://host:port/name` (etcds:// and --etcd-* for a secured etcd): the cluster as etcd holds it — live
 * brokers, the controller, topics, and partitions that are under-replicated or offline. Reads etcd
 * directly (no broker needed), so it works while brokers are down. Exit 0 when every partition is
 * fully replicated and led, 3 when some are not (for scripts and health checks).
 *
 * `runnel cluster elect-leaders --cluster URL [--topic T [--partitions 0,1]]`: moves leadership back
 * to the preferred leaders (cluster/preferred-election.ts) through an election request key in etcd
 * on a short lease of its own, and prints each partition's outcome. Exit 0 when every partition
 * named is on its preferred leader afterwards, 3 when some are not.
 *
 * `runnel cluster reassign` and `runnel cluster rebalance` move partitions through a broker's
 * native admin ops (client/reassignments.ts; docs/cluster.md, "Adding a broker and moving partitions").
 */
import { type ClusterAddress, parseClusterUrl } from "../cluster/cluster-url.ts";
import { type ClusterStatus, readClusterState, readClusterStatus } from "../cluster/cluster-status.ts";
import { electPreferredLeaders, type ElectionResult, type ElectionSource } from "../cluster/preferred-election.ts";
import type { EtcdGateway } from "../cluster/etcd-gateway.ts";
import { EtcdLayout } from "../cluster/etcd-layout.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { alterPartitionReassignment, type PartitionReassignment, rebalance } from "../client/reassignments.ts";
import type { RebalanceMove } from "../cluster/reassignment.ts";
import { RunnelError } from "../errors.ts";
import { UsageError, choiceFlag, intFlag, parseArgs, SASL_FLAGS, SASL_HELP, TLS_FLAGS, TLS_HELP } from "./args.ts";
import { adminFromFlags } from "./admin-client.ts";
import { ETCD_FLAGS, ETCD_FLAGS_HELP, etcdGatewayFromFlags } from "./etcd-flags.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel cluster status --cluster etcd://host:port[,host:port]/name [--format text|json]
       runnel cluster elect-leaders --cluster URL [--topic T [--partitions 0,1,...]] [--timeout-ms N]
       runnel cluster reassign --topic T --partition P (--replicas 2,3,1 | --cancel) [--broker HOST:PORT]
       runnel cluster rebalance [--dry-run] [--broker HOST:PORT]

status: shows a cluster as etcd holds it: live brokers (draining ones marked), the controller,
topics, the partitions that are under-replicated (ISR smaller than the replicas) or offline (no
leader), those not on their preferred leader (first replica), and reassignments in progress.
Reads etcd directly. Exit code 0 when all is well, 3 when a partition is under-replicated or
offline.

elect-leaders moves leadership back to the preferred leaders (all, or --topic/--partitions).

reassign moves one partition's replicas to the brokers listed (the first is the preferred
leader; the count may differ from today's). The new replicas copy the partition from its leader;
once all are in sync, leadership moves into the new set and the replicas left out delete their
copy. --cancel goes back to the replicas before the move.

rebalance spreads every partition's replicas, then preferred leaders, evenly over the live
brokers, moving as few replicas as it can; it prints the plan and applies it (not with --dry-run).

elect-leaders: moves leadership back to each partition's preferred leader where that broker is
live and in the ISR (all topics, or --topic's partitions), then prints each partition's outcome:
elected, alreadyPreferred, unavailable (the preferred leader is down, draining or out of the ISR),
timedOut. Exit code 0 when every partition named ends on its preferred leader, 3 when not.

options:
  --cluster URL          the cluster, as given to runnel serve --cluster (status, elect-leaders)
  -b, --broker HOST:PORT a broker of the cluster (reassign, rebalance; default ${DEFAULT_BROKER})
${TLS_HELP}${SASL_HELP}  --topic T, --partition P, --replicas IDS, --cancel   (reassign)
  --topic T          elect-leaders: only this topic
  --partitions LIST  elect-leaders: only these partitions of --topic (comma-separated)
  --timeout-ms N     elect-leaders: how long to wait for the controller (default 15000)
  --dry-run              print the rebalance plan only
  --format FORMAT        text (default) or json
${ETCD_FLAGS_HELP}  -h, --help             this text

examples:
  runnel cluster reassign --topic orders --partition 0 --replicas 3,1
  runnel cluster rebalance --dry-run
  runnel cluster status --cluster etcd://127.0.0.1:2379/prod
  runnel cluster elect-leaders --cluster etcd://127.0.0.1:2379/prod --topic orders
`;

const FLAGS = {
  ...TLS_FLAGS,
  ...ETCD_FLAGS,
  cluster: { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
  broker: { type: "string", short: "b" },
  topic: { type: "string" },
  partition: { type: "string" },
  partitions: { type: "string" },
  replicas: { type: "string" },
  cancel: { type: "boolean" },
  "dry-run": { type: "boolean" },
  "timeout-ms": { type: "string" },
  ...SASL_FLAGS,
} as const;
/** The CLI's election request key lives on a lease of this TTL: it goes by itself if the CLI dies. */
const ELECTION_LEASE_SECONDS = 10;

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
    const command = positionals[0];
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    if (command === "reassign" || command === "rebalance") return await moveReplicas(command, flags);
    if (command !== "status" && command !== "elect-leaders") throw new UsageError("the commands are status, elect-leaders, reassign and rebalance");
    if (flags.cluster === undefined) throw new UsageError("--cluster etcd://host:port/name is needed");
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    const address = clusterAddress(flags.cluster);
    const gateway = etcdGatewayFromFlags(address, flags);
    if (command === "elect-leaders") return await electLeaders(gateway, new EtcdLayout(address.cluster), flags, format);
    const status = await readClusterStatus(gateway, new EtcdLayout(address.cluster));
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
  const admin = adminFromFlags(flags, "runnel-cli-cluster");
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

async function electLeaders(gateway: EtcdGateway, layout: EtcdLayout, flags: { topic?: string; partitions?: string; "timeout-ms"?: string }, format: "text" | "json"): Promise<number> {
  if (flags.partitions !== undefined && flags.topic === undefined) throw new UsageError("--partitions needs --topic");
  const partitions = flags.partitions?.split(",").map((text) => intFlag(text.trim(), "partitions", 0, 0, 0x7fff_ffff));
  const timeoutMs = intFlag(flags["timeout-ms"], "timeout-ms", 15_000, 100, 600_000);
  const request = { ...(flags.topic === undefined ? {} : { topic: flags.topic }), ...(partitions === undefined ? {} : { partitions }) };
  const results = await electPreferredLeaders(etcdElectionSource(gateway, layout), request, timeoutMs);
  process.stdout.write(format === "json" ? `${JSON.stringify({ results })}\n` : describeElection(results));
  return results.every((result) => result.outcome === "elected" || result.outcome === "alreadyPreferred") ? EXIT_OK : EXIT_DEGRADED;
}

/** Partitions read straight from etcd; the request key put on a lease of the CLI's own. */
function etcdElectionSource(gateway: EtcdGateway, layout: EtcdLayout): ElectionSource {
  return {
    async read() {
      const state = await readClusterState(gateway, layout);
      return {
        partitions: state.partitions.map((status) => ({ topic: status.topic, partition: status.partition, state: status })),
        live: new Set(state.brokers.map((broker) => broker.brokerId)),
        draining: new Set(state.brokers.filter((broker) => broker.draining === true).map((broker) => broker.brokerId)),
        topics: new Set(state.topics.map((topic) => topic.name)),
      };
    },
    async request(request) {
      const lease = await gateway.leaseGrant(ELECTION_LEASE_SECONDS);
      await gateway.put(layout.electionKey(`cli-${crypto.randomUUID()}`), JSON.stringify(request), { lease: lease.id });
      return () => gateway.leaseRevoke(lease.id).catch(() => undefined);
    },
  };
}

function describeElection(results: readonly ElectionResult[]): string {
  const lines = [
    `partitions: ${results.length}`,
    ...results.map((result) => `  ${result.topic}/${result.partition}  ${result.outcome}  leader ${result.leader}  preferred ${result.preferred}`),
  ];
  return `${lines.join("\n")}\n`;
}

function describe(status: ClusterStatus): string {
  const lines = [
    `cluster ${status.cluster} (etcd revision ${status.revision})`,
    `controller: ${status.controller === null ? "none" : `broker ${status.controller}`}`,
    `brokers (${status.brokers.length} live):`,
    ...status.brokers.map((broker) => `  ${broker.brokerId}  ${broker.host}:${broker.port}${broker.kafkaPort === null ? "" : `  kafka ${broker.kafkaPort}`}${broker.draining === true ? "  draining (controlled shutdown)" : ""}`),
    `topics: ${status.topics.length}, partitions: ${status.partitions}`,
    ...status.topics.map((topic) => `  ${topic.name}  ${topic.partitions} partition(s), replication factor ${topic.replicationFactor}, min in-sync ${topic.minInsyncReplicas}`),
    `under-replicated partitions: ${status.underReplicated.length}`,
    ...status.underReplicated.map((state) => `  ${state.topic}/${state.partition}  leader ${state.leader}  isr [${state.isr.join(",")}]  replicas [${state.replicas.join(",")}]`),
    `offline partitions: ${status.offline.length}`,
    ...status.offline.map((state) => `  ${state.topic}/${state.partition}  last in sync [${state.isr.join(",")}]  replicas [${state.replicas.join(",")}]`),
    `not on their preferred leader: ${status.notPreferred.length}`,
    ...status.notPreferred.map((state) => `  ${state.topic}/${state.partition}  leader ${state.leader}  preferred ${state.replicas[0]}${state.electable ? "  (electable: runnel cluster elect-leaders)" : "  (preferred leader down, draining or out of the ISR)"}`),
    `reassignments in progress: ${status.reassigning.length}`,
    ...status.reassigning.map(
      (state) => `  ${state.topic}/${state.partition}  replicas [${state.replicas.join(",")}]  adding [${(state.addingReplicas ?? []).join(",")}]  removing [${(state.removingReplicas ?? []).join(",")}]  isr [${state.isr.join(",")}]`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
