/**
 * @module cli/admin-client
 * The admin client of every CLI command that talks to one broker (`runnel topics`, `groups`,
 * `users`, `cluster reassign|rebalance`): `--broker` (default 127.0.0.1:9600), the TLS flags, the
 * SASL flags, and a 5 s bound on connecting so a wrong address fails fast.
 */
import { Admin } from "../client/admin.ts";
import { DEFAULT_BROKER } from "../client/connection.ts";
import { clientTlsOf, saslOption, tlsOption } from "./args.ts";

const CONNECT_TIMEOUT_MS = 5_000;

export interface BrokerFlags {
  broker?: string | undefined;
  tls?: boolean | undefined;
  "tls-ca"?: string | undefined;
  "tls-cert"?: string | undefined;
  "tls-key"?: string | undefined;
  user?: string | undefined;
  "password-file"?: string | undefined;
}

/** An Admin for `flags`' broker, TLS and credentials; UsageError for bad flags. */
export function adminFromFlags(flags: BrokerFlags, clientId: string): Admin {
  return new Admin({ broker: flags.broker ?? DEFAULT_BROKER, clientId, connectTimeoutMs: CONNECT_TIMEOUT_MS, ...tlsOption(clientTlsOf(flags)), ...saslOption(flags) });
}
