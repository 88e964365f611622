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
 */
import { type ClusterAddress, parseClusterUrl } from "../cluster/cluster-url.ts";
import { type ClusterStatus, readClusterState, readClusterStatus } from "../cluster/cluster-status.ts";
import { electPreferredLeaders, type ElectionResult, type ElectionSource } from "../cluster/preferred-election.ts";
import type { EtcdGateway } from "../cluster/etcd-gateway.ts";
import { EtcdLayout } from "../cluster/etcd-layout.ts";
import { RunnelError } from "../errors.ts";
import { UsageError, choiceFlag, intFlag, parseArgs } from "./args.ts";
import { ETCD_FLAGS, ETCD_FLAGS_HELP, etcdGatewayFromFlags } from "./etcd-flags.ts";
import { EXIT_OK, reportFailure } from "./output.ts";

const HELP = `usage: runnel cluster status --cluster etcd://host:port[,host:port]/name [--format text|json]
       runnel cluster elect-leaders --cluster URL [--topic T [--partitions 0,1,...]] [--timeout-ms N]

status: shows a cluster as etcd holds it: live brokers (draining ones marked), the controller,
topics, the partitions that are under-replicated (ISR smaller than the replicas) or offline (no
leader), and those not on their preferred leader (first replica). Reads etcd directly.
Exit code 0 when all is well, 3 when a partition is under-replicated or offline.

elect-leaders: moves leadership back to each partition's preferred leader where that broker is
live and in the ISR (all topics, or --topic's partitions), then prints each partition's outcome:
elected, alreadyPreferred, unavailable (the preferred leader is down, draining or out of the ISR),
timedOut. Exit code 0 when every partition named ends on its preferred leader, 3 when not.

options:
  --cluster URL      the cluster, as given to runnel serve --cluster
  --format FORMAT    text (default) or json
  --topic T          elect-leaders: only this topic
  --partitions LIST  elect-leaders: only these partitions of --topic (comma-separated)
  --timeout-ms N     elect-leaders: how long to wait for the controller (default 15000)
${ETCD_FLAGS_HELP}  -h, --help         this text
`;

const FLAGS = {
  ...ETCD_FLAGS,
  cluster: { type: "string" },
  format: { type: "string" },
  topic: { type: "string" },
  partitions: { type: "string" },
  "timeout-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;
/** The CLI's election request key lives on a lease of this TTL: it goes by itself if the CLI dies. */
const ELECTION_LEASE_SECONDS = 10;
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
    if ((command !== "status" && command !== "elect-leaders") || positionals.length > 1) throw new UsageError("the commands are 'status' and 'elect-leaders'");
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
  ];
  return `${lines.join("\n")}\n`;
}
