/**
 * @module cluster/cluster-url
 * The `--cluster` value: `etcd://host:port[,host:port...]/name` (etcd's gateway over plain HTTP) or
 * `etcds://...` (over TLS: HTTPS, see cluster/etcd-access.ts for the CA, certificate and
 * credentials), the etcd members to talk to and the cluster's name (the key prefix
 * /runnel/<name>/).
 */
import { RunnelError } from "../errors.ts";
import { CLUSTER_NAME_PATTERN } from "./etcd-layout.ts";

export interface ClusterAddress {
  /** Base URLs of etcd's gateway, e.g. http://127.0.0.1:2379 (https:// with etcds://). */
  readonly endpoints: readonly string[];
  readonly cluster: string;
}

/** Endpoints one cluster URL may list. */
export const CLUSTER_ENDPOINTS_MAX = 16;

const HOST_PORT = /^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/;

export function parseClusterUrl(url: string): ClusterAddress {
  const fail = (why: string) => new RunnelError("INVALID_CONFIG", `cluster ${JSON.stringify(url)}: ${why}; expected etcd://host:port[,host:port]/name (etcds:// for TLS)`);
  const secure = url.startsWith("etcds://");
  if (!secure && !url.startsWith("etcd://")) throw fail("must start with etcd:// or etcds://");
  const rest = url.slice(secure ? "etcds://".length : "etcd://".length);
  const slash = rest.indexOf("/");
  if (slash < 0) throw fail("names no cluster (the /name part)");
  const hosts = rest.slice(0, slash).split(",");
  const cluster = rest.slice(slash + 1);
  if (!CLUSTER_NAME_PATTERN.test(cluster)) throw fail("the name must be 1-64 characters of [a-zA-Z0-9._-]");
  if (hosts.length > CLUSTER_ENDPOINTS_MAX) throw fail(`at most ${CLUSTER_ENDPOINTS_MAX} etcd endpoints`);
  for (const host of hosts) {
    const match = HOST_PORT.exec(host);
    if (match === null || Number(match[1]) < 1 || Number(match[1]) > 65_535) throw fail(`${JSON.stringify(host)} is not host:port`);
  }
  const scheme = secure ? "https" : "http";
  return { endpoints: hosts.map((host) => `${scheme}://${host}`), cluster };
}
