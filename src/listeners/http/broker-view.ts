/**
 * @module listeners/http/broker-view
 * What the HTTP listener reads of the broker, set by the broker as it starts and stops. The
 * listener starts before the log is recovered (so `/health` answers and `/ready` says 503
 * during a long recovery), hence `context` is null until the broker is listening.
 */
import type { GroupDirectory } from "../../broker/groups.ts";
import type { BrokerContext } from "../../server/context.ts";

export type BrokerPhase = "recovering" | "ready" | "stopping";

export interface ListenerAddress {
  /** "native" today; "kafka" and others as they come. */
  name: string;
  address: string;
}

export class BrokerView {
  phase: BrokerPhase = "recovering";
  context: BrokerContext | null = null;
  groups: GroupDirectory | null = null;
  listeners: ListenerAddress[] = [];
  /** `authentication` is scram: routes other than the probes need credentials (basic-auth.ts). */
  authenticationRequired = false;

  constructor(
    readonly version: string,
    readonly dataDir: string,
    readonly startedAtMs: number = Date.now(),
  ) {}

  /** Log recovered, listeners up, not shutting down. */
  get ready(): boolean {
    return this.phase === "ready" && this.context !== null && !this.context.isShuttingDown();
  }
}
