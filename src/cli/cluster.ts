/**
 * @module cli/cluster
 * `runnel cluster status --cluster etcd://host:port/name` (etcds:// and --etcd-* for a secured etcd): the cluster as etcd holds it — live
 * brokers, the controller, topics, and partitions that are under-replicated or offline. Reads etcd
 * directly (no broker needed), so it works while brokers are down. Exit 0 when every partition is
 * fully replicated and led, 3 when some are not (for scripts and health checks).
 */
import { type ClusterAddress, parseClusterUrl } from "../cluster/cluster-url.ts";
import { type ClusterStatus, readClusterStatus } from "../cluster/cluster-status.ts";
import { EtcdLayout } from "../cluster/etcd-layout.ts";
import { RunnelError } from "../errors.ts";
import { UsageError, choiceFlag, parseArgs } from "./args.ts";
import { ETCD_FLAGS, ETCD_FLAGS_HELP, etcdGatewayFromFlags } from "./etcd-flags.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel cluster status --cluster etcd://host:port[,host:port]/name [--format text|json]

Shows a cluster as etcd holds it: live brokers, the controller, topics, and the partitions that
are under-replicated (ISR smaller than the replicas) or offline (no leader). Reads etcd directly.
Exit code 0 when all is well, 3 when a partition is under-replicated or offline.

options:
  --cluster URL      the cluster, as given to runnel serve --cluster
  --format FORMAT    text (default) or json
${ETCD_FLAGS_HELP}  -h, --help         this text
`;

const FLAGS = { ...ETCD_FLAGS, cluster: { type: "string" }, format: { type: "string" }, help: { type: "boolean", short: "h" } } as const;
/** A status read finished, and some partition needs attention. */
export const EXIT_DEGRADED = 3;

export async function run(argv: string[]): Promise<number> {
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (flags.help || positionals[0] === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals[0] !== "status" || positionals.length > 1) throw new UsageError("the one command is 'status'");
    if (flags.cluster === undefined) throw new UsageError("--cluster etcd://host:port/name is needed");
    const format = choiceFlag(flags.format, "format", ["text", "json"] as const, "text");
    const address = clusterAddress(flags.cluster);
    const status = await readClusterStatus(etcdGatewayFromFlags(address, flags), new EtcdLayout(address.cluster));
    process.stdout.write(format === "json" ? `${JSON.stringify(status)}\n` : describe(status));
    return status.underReplicated.length + status.offline.length === 0 ? EXIT_OK : EXIT_DEGRADED;
  } catch (error) {
    return reportFailure("cluster", error);
  }
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
  ];
  return `${lines.join("\n")}\n`;
}
