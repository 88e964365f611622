/**
 * @module cluster/lease-keeper
 * One broker's etcd lease, kept alive, and the self-fencing that follows from it.
 *
 * Fencing arithmetic (docs/cluster.md): etcd starts a renewed lease's TTL when the keepalive
 * *arrives*, which is after we sent it; so the lease lives in etcd at least until
 * `sentAt + ttl`. This broker may lead only until `sentAt + ttl - margin` of the last keepalive
 * that was answered. The margin covers the time between an ack's mayLead() check and its bytes
 * leaving, and clock-rate differences. Because the controller can hand partitions away only
 * after etcd expires the lease, a broker cut off from etcd stops acknowledging first.
 *
 * Stall detector: a timer ticks every STALL_TICK_MS; if a tick comes more than `margin` late (GC,
 * swap, SIGSTOP), work decided before the stall may land after the deadline, so the broker fences
 * at once, until a keepalive *sent after the stall* is answered. mayLead() also measures the gap
 * since the last tick itself, so it is right even before the late timer runs.
 *
 * All times are monotonic (performance.now()).
 */
import { RunnelError } from "../errors.ts";
import type { EtcdGateway } from "./etcd-gateway.ts";

export const STALL_TICK_MS = 100;
/** After a failed keepalive, try again this soon (not a whole interval later). */
const KEEPALIVE_RETRY_MS = 200;

export interface LeaseKeeperOptions {
  /** The lease TTL; etcd counts whole seconds, so this is a multiple of 1000. */
  readonly ttlMs: number;
  /** How long before the lease could expire this broker stops leading. */
  readonly fenceMarginMs: number;
  /** Time between keepalives (default ttl / 4). */
  readonly keepAliveIntervalMs?: number;
}

export interface LeaseKeeperEvents {
  /** mayLead() turned false. */
  onFenced(reason: string): void;
  /** mayLead() turned true again. */
  onUnfenced(): void;
  /** etcd no longer has the lease (it expired): keys on it are gone; a new lease is in place. */
  onLeaseReplaced(leaseId: string): void;
  onError?(error: RunnelError): void;
}

export class LeaseKeeper {
  private leaseIdNow: string | null = null;
  /** mayLead() is false from this monotonic time on (0 = not yet valid). */
  private validUntilMs = 0;
  /** Set by a stall: fenced until a keepalive sent after this time is answered. */
  private stalledAtMs: number | null = null;
  private lastTickMs = performance.now();
  private fencedNow = true;
  private stopped = false;
  private keepAliveTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly tickTimer: ReturnType<typeof setInterval>;
  private readonly intervalMs: number;

  constructor(
    private readonly gateway: EtcdGateway,
    readonly options: LeaseKeeperOptions,
    private readonly events: LeaseKeeperEvents,
  ) {
    if (options.ttlMs % 1000 !== 0 || options.ttlMs < 2000) throw new RunnelError("INVALID_CONFIG", `clusterLeaseTtlMs ${options.ttlMs} must be a whole number of seconds, at least 2000 (etcd's minimum TTL)`);
    this.intervalMs = options.keepAliveIntervalMs ?? options.ttlMs / 4;
    if (options.fenceMarginMs + this.intervalMs >= options.ttlMs) {
      throw new RunnelError("INVALID_CONFIG", `clusterFenceMarginMs ${options.fenceMarginMs} plus the keepalive interval ${this.intervalMs} ms must be below clusterLeaseTtlMs ${options.ttlMs}`);
    }
    this.tickTimer = setInterval(() => this.tick(), STALL_TICK_MS);
  }

  get leaseId(): string {
    if (this.leaseIdNow === null) throw new RunnelError("INTERNAL", "the lease keeper has no lease yet (call start first)");
    return this.leaseIdNow;
  }

  /** Grants the first lease and starts keeping it alive. */
  async start(): Promise<string> {
    const sentAtMs = performance.now();
    const lease = await this.gateway.leaseGrant(this.options.ttlMs / 1000);
    this.leaseIdNow = lease.id;
    this.validUntilMs = sentAtMs + Math.min(lease.ttlSeconds * 1000, this.options.ttlMs) - this.options.fenceMarginMs;
    this.scheduleKeepAlive(this.intervalMs);
    return lease.id;
  }

  /** True while this broker's lease is surely alive in etcd with the margin to spare. */
  mayLead(): boolean {
    const nowMs = performance.now();
    if (nowMs - this.lastTickMs > STALL_TICK_MS + this.options.fenceMarginMs) return false;
    return this.stalledAtMs === null && this.leaseIdNow !== null && nowMs < this.validUntilMs;
  }

  /** Revokes the lease (its keys go at once) and stops every timer. */
  async stop(revoke = true): Promise<void> {
    this.stopped = true;
    clearInterval(this.tickTimer);
    if (this.keepAliveTimer !== null) clearTimeout(this.keepAliveTimer);
    this.validUntilMs = 0;
    if (revoke && this.leaseIdNow !== null) await this.gateway.leaseRevoke(this.leaseIdNow).catch(() => undefined);
  }

  private tick(): void {
    const nowMs = performance.now();
    if (nowMs - this.lastTickMs > STALL_TICK_MS + this.options.fenceMarginMs) this.stalledAtMs = nowMs;
    this.lastTickMs = nowMs;
    this.report();
  }

  /** Emits fenced/unfenced when mayLead() changed since the last report. */
  private report(): void {
    const fenced = !this.mayLead();
    if (fenced === this.fencedNow) return;
    this.fencedNow = fenced;
    if (fenced) this.events.onFenced(this.stalledAtMs !== null ? "event loop stalled" : "lease not renewed in time");
    else this.events.onUnfenced();
  }

  private scheduleKeepAlive(delayMs: number): void {
    if (this.stopped) return;
    this.keepAliveTimer = setTimeout(() => void this.keepAlive(), delayMs);
  }

  private async keepAlive(): Promise<void> {
    const sentAtMs = performance.now();
    let delayMs = this.intervalMs;
    try {
      const ttlSeconds = await this.gateway.leaseKeepAlive(this.leaseId, this.intervalMs);
      if (this.stopped) return;
      if (ttlSeconds > 0) this.renewed(sentAtMs, ttlSeconds);
      else await this.replaceLease();
    } catch (error) {
      delayMs = KEEPALIVE_RETRY_MS;
      if (error instanceof RunnelError) this.events.onError?.(error);
    }
    this.report();
    this.scheduleKeepAlive(delayMs);
  }

  private renewed(sentAtMs: number, ttlSeconds: number): void {
    this.validUntilMs = Math.max(this.validUntilMs, sentAtMs + Math.min(ttlSeconds * 1000, this.options.ttlMs) - this.options.fenceMarginMs);
    if (this.stalledAtMs !== null && sentAtMs > this.stalledAtMs) this.stalledAtMs = null;
  }

  /** The lease expired in etcd: every key on it is gone. Fence, take a new lease, tell the owner. */
  private async replaceLease(): Promise<void> {
    this.validUntilMs = 0;
    this.report();
    const sentAtMs = performance.now();
    const lease = await this.gateway.leaseGrant(this.options.ttlMs / 1000);
    this.leaseIdNow = lease.id;
    this.events.onLeaseReplaced(lease.id);
    this.renewed(sentAtMs, lease.ttlSeconds);
  }
}
