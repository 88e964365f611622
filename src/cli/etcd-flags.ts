/**
 * @module cli/etcd-flags
 * The flags every CLI command that reads etcd directly (`runnel cluster ...`) takes to reach a
 * secured etcd, and the gateway made from them. The password comes from RUNNEL_ETCD_PASSWORD or
 * `--etcd-password-file`, never from a flag (it would show in `ps` and shell history).
 */
import type { ClusterAddress } from "../cluster/cluster-url.ts";
import { loadEtcdAccess } from "../cluster/etcd-access.ts";
import { EtcdGateway } from "../cluster/etcd-gateway.ts";
import { RunnelError } from "../errors.ts";
import { UsageError } from "./args.ts";

export const ETCD_FLAGS = {
  "etcd-ca": { type: "string" },
  "etcd-cert": { type: "string" },
  "etcd-key": { type: "string" },
  "etcd-user": { type: "string" },
  "etcd-password-file": { type: "string" },
} as const;

export const ETCD_FLAGS_HELP = `  --etcd-ca FILE     with etcds://: the CA that signed etcd's certificate
  --etcd-cert FILE   with etcds://: a client certificate for etcd (--client-cert-auth)
  --etcd-key FILE    its private key
  --etcd-user NAME   the etcd user (etcd authentication on); password from RUNNEL_ETCD_PASSWORD
  --etcd-password-file FILE  or from this file's first line
`;

export interface EtcdFlagValues {
  "etcd-ca"?: string | undefined;
  "etcd-cert"?: string | undefined;
  "etcd-key"?: string | undefined;
  "etcd-user"?: string | undefined;
  "etcd-password-file"?: string | undefined;
}

/** A gateway to `address`'s etcd with the flags' TLS and credentials; UsageError for bad flags. */
export function etcdGatewayFromFlags(address: ClusterAddress, flags: EtcdFlagValues, requestTimeoutMs = 5000): EtcdGateway {
  try {
    const access = loadEtcdAccess({
      secure: address.endpoints[0]?.startsWith("https:") === true,
      caFile: flags["etcd-ca"] ?? "",
      certFile: flags["etcd-cert"] ?? "",
      keyFile: flags["etcd-key"] ?? "",
      user: flags["etcd-user"] ?? "",
      passwordFile: flags["etcd-password-file"] ?? "",
      password: process.env.RUNNEL_ETCD_PASSWORD ?? "",
      names: { caFile: "--etcd-ca", certFile: "--etcd-cert", keyFile: "--etcd-key", user: "--etcd-user", passwordFile: "--etcd-password-file" },
    });
    return new EtcdGateway({ endpoints: address.endpoints, requestTimeoutMs, access });
  } catch (error) {
    throw error instanceof RunnelError ? new UsageError(error.message) : error;
  }
}
