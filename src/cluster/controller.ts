/**
 * @module cluster/controller
 * The cluster's one controller: the broker whose lease holds `/runnel/<cluster>/controller`.
 * It is won by a txn on the key's create_revision being 0 (absent); the create revision it won
 * with names this reign. Every write the controller makes is a txn that compares both that
 * revision (a controller whose lease expired, a zombie, is refused: its key is gone or another
 * broker's) and the partition key's mod revision it last read (nobody changed it meanwhile).
 *
 * Its one duty so far: leaders. For each partition whose leader is not live, the first live ISR
 * member (in replica order) leads, with leaderEpoch + 1 and the dead members out of the ISR. When
 * no ISR member is live the partition has no leader (-1, epoch + 1) and the ISR keeps the last
 * leader alone, never emptied: only a replica that had every acknowledged record may lead again
 * (Kafka with unclean leader election off). A dead follower leaves the ISR. A broker coming back
 * changes nothing, except that a leaderless partition whose last ISR member returns gets it back as
 * leader. Planning is pure (planPartition) and level-triggered: every pass looks at the whole state.
 *
 * When planPartition finds nothing to do, leadership balance (cluster/leader-balance.ts) may:
 * a draining broker (controlled shutdown) leaves leaderships and ISRs, and a partition whose
 * preferred leader is electable gets it back when asked (an election request key) or when the
 * imbalance persisted over two automatic checks (autoLeaderRebalanceEnable).
 */
import type { PartitionState } from "./cluster-view.ts";
import type { EtcdGateway } from "./etcd-gateway.ts";
import { encodePartition, type EtcdLayout } from "./etcd-layout.ts";
import { partitionKeyOf, persistentImbalance, planDrain, planPreferred } from "./leader-balance.ts";
import { planReassignment } from "./reassignment.ts";

const CONTROLLER_RETRY_MS = 500;

export type PartitionPlan = Omit<PartitionState, "version">;

/** The state `state` should move to with `live` brokers, or null when it is right as it is. */
export function planPartition(state: PartitionState, live: ReadonlySet<number>): PartitionPlan | null {
  const leaderLive = state.leader !== -1 && live.has(state.leader);
  const liveIsr = state.isr.filter((id) => live.has(id));
  if (leaderLive) {
    if (liveIsr.length === state.isr.length) return null;
    return { leader: state.leader, leaderEpoch: state.leaderEpoch, isr: liveIsr, replicas: state.replicas };
  }
  const candidate = state.replicas.find((id) => liveIsr.includes(id)) ?? liveIsr[0];
  if (candidate !== undefined) {
    return { leader: candidate, leaderEpoch: state.leaderEpoch + 1, isr: liveIsr, replicas: state.replicas };
  }
  if (state.leader === -1) return null;
  // Nobody in the ISR is live: no leader, and the ISR keeps the last leader (it has every acked record).
  return { leader: -1, leaderEpoch: state.leaderEpoch + 1, isr: [state.leader], replicas: state.replicas };
}

export type WriteOutcome = "written" | "stale" | "deposed";

export interface ControllerSource {
  /** Live broker ids. */
  liveBrokerIds(): ReadonlySet<number>;
  /** Every partition state, as last read. */
  partitions(): Iterable<{ topic: string; partition: number; state: PartitionState }>;
  /** Live brokers in controlled shutdown (none when absent). */
  drainingBrokerIds?(): ReadonlySet<number>;
  /** Pending preferred-leader election requests (none when absent). */
  electionRequests?(): readonly ElectionRequest[];
}

/** Elect preferred leaders for one topic's partitions (all when absent), or for every topic. */
export interface ElectionRequest {
  readonly topic?: string;
  readonly partitions?: readonly number[];
}

export interface LeaderBalanceOptions {
  /** Move leadership back to preferred leaders by itself (Kafka's auto.leader.rebalance.enable). */
  readonly autoLeaderRebalance: boolean;
  /** How often the controller checks for partitions off their preferred leader. */
  readonly imbalanceCheckIntervalMs: number;
}

const NO_BROKERS: ReadonlySet<number> = new Set();

export interface ControllerLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export class Controller {
  /** create_revision of the controller key this broker won; null while not controller. */
  private wonRevision: number | null = null;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly gateway: EtcdGateway,
    private readonly layout: EtcdLayout,
    private readonly brokerId: number,
    private readonly source: ControllerSource,
    private readonly log: ControllerLog,
    private readonly balance: LeaderBalanceOptions = { autoLeaderRebalance: false, imbalanceCheckIntervalMs: 0 },
  ) {}

  /** Partitions electable at the last automatic check; those still electable at the next are due. */
  private imbalanceSeen = new Set<string>();
  /** Partitions the automatic rebalance moves to their preferred leader at the next passes. */
  private readonly preferredDue = new Set<string>();
  private balanceTimer: ReturnType<typeof setInterval> | null = null;

  /** The reign this broker holds (controller key's create revision), or null. */
  get reign(): number | null {
    return this.wonRevision;
  }

  /** Tries to become controller on `leaseId`; true when this broker now is. */
  async campaign(leaseId: string): Promise<boolean> {
    const key = this.layout.controllerKey;
    const result = await this.gateway.txn(
      [{ key, target: "createRevision", result: "equal", value: 0 }],
      [{ op: "put", key, value: JSON.stringify({ brokerId: this.brokerId }), lease: leaseId }],
    );
    if (!result.succeeded) return false;
    this.wonRevision = result.revision;
    this.log.info({ brokerId: this.brokerId, reign: result.revision }, "became the cluster controller");
    this.startBalanceChecks();
    this.requestPass();
    return true;
  }

  /** This broker's reign ended (its key is gone or another broker's): stop writing at once. */
  resign(): void {
    if (this.wonRevision === null) return;
    this.log.warn({ brokerId: this.brokerId, reign: this.wonRevision }, "no longer the cluster controller");
    this.wonRevision = null;
    this.stopBalanceChecks();
  }

  /** Runs a reconcile pass now, or once more after the one running. Resolves when it is done. */
  requestPass(): Promise<void> {
    if (this.wonRevision === null) return Promise.resolve();
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = this.passes().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  /** After a failed write (etcd unreachable), one more pass a little later, not in a hot loop. */
  private retrySoon(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.requestPass();
    }, CONTROLLER_RETRY_MS);
  }

  /** Stops retry timers (the broker is stopping). */
  close(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.wonRevision = null;
    this.stopBalanceChecks();
  }

  private startBalanceChecks(): void {
    if (!this.balance.autoLeaderRebalance || this.balanceTimer !== null) return;
    this.balanceTimer = setInterval(() => this.checkBalance(), this.balance.imbalanceCheckIntervalMs);
    this.balanceTimer.unref?.();
  }

  private stopBalanceChecks(): void {
    if (this.balanceTimer !== null) clearInterval(this.balanceTimer);
    this.balanceTimer = null;
    this.imbalanceSeen = new Set();
    this.preferredDue.clear();
  }

  /** The automatic rebalance: partitions off their preferred leader for a whole interval move back. */
  checkBalance(): void {
    if (this.wonRevision === null) return;
    const draining = this.source.drainingBrokerIds?.() ?? NO_BROKERS;
    const { due, seen } = persistentImbalance(this.source.partitions(), this.source.liveBrokerIds(), draining, this.imbalanceSeen);
    this.imbalanceSeen = seen;
    if (due.size === 0) return;
    for (const key of due) this.preferredDue.add(key);
    this.log.info({ partitions: due.size }, "leadership off the preferred leaders for a whole check interval; electing the preferred leaders");
    void this.requestPass();
  }

  private async passes(): Promise<void> {
    do {
      this.again = false;
      await this.pass();
    } while (this.again && this.wonRevision !== null);
  }

  private async pass(): Promise<void> {
    const live = this.source.liveBrokerIds();
    const draining = this.source.drainingBrokerIds?.() ?? NO_BROKERS;
    // Brokers a completed reassignment may hand leadership to: live and not draining.
    const leadable = draining.size === 0 ? live : new Set([...live].filter((id) => !draining.has(id)));
    const wanted = this.preferredWanted();
    for (const { topic, partition, state } of [...this.source.partitions()]) {
      if (this.wonRevision === null) return;
      const preferred = wanted(topic, partition) ? planPreferred(state, live, draining) : null;
      if (preferred === null) this.preferredDue.delete(partitionKeyOf(topic, partition));
      const failover = planPartition(state, live);
      const drain = failover === null ? planDrain(state, live, draining) : null;
      const leaders = failover ?? drain ?? preferred;
      // Reassignments (cluster/reassignment.ts) complete on top of the leader plan.
      const plan = planReassignment(state, leaders, leadable);
      if (plan === null) continue;
      const reason = failover !== null ? "failover" : drain !== null ? "controlled shutdown" : preferred !== null ? "preferred leader" : "reassignment";
      const outcome = await this.writePartition(topic, partition, state, plan).catch((error: unknown) => {
        this.log.warn({ topic, partition, error: error instanceof Error ? error.message : String(error) }, "controller write failed; retrying shortly");
        this.retrySoon();
        return "stale" as const;
      });
      if (outcome === "written") this.log.info({ topic, partition, leader: plan.leader, leaderEpoch: plan.leaderEpoch, isr: plan.isr, reason }, "partition leadership changed");
    }
  }

  /** Whether a partition is asked to go back to its preferred leader (automatic check or request). */
  private preferredWanted(): (topic: string, partition: number) => boolean {
    const requests = this.source.electionRequests?.() ?? [];
    return (topic, partition) =>
      this.preferredDue.has(partitionKeyOf(topic, partition)) ||
      requests.some((request) => (request.topic === undefined || request.topic === topic) && (request.partitions === undefined || request.partitions.includes(partition)));
  }

  /**
   * Writes `next` over `expected` if this broker still reigns and the partition is still at
   * `expected.version`. "stale": the partition changed (the watch brings the new state and a
   * new pass); "deposed": this broker is no longer controller.
   */
  async writePartition(topic: string, partition: number, expected: PartitionState, next: PartitionPlan): Promise<WriteOutcome> {
    const reign = this.wonRevision;
    if (reign === null) return "deposed";
    const controllerKey = this.layout.controllerKey;
    const key = this.layout.partitionKey(topic, partition);
    const result = await this.gateway.txn(
      [
        { key: controllerKey, target: "createRevision", result: "equal", value: reign },
        { key, target: "modRevision", result: "equal", value: expected.version },
      ],
      [{ op: "put", key, value: encodePartition(next) }],
      [{ op: "range", key: controllerKey }],
    );
    if (result.succeeded) return "written";
    const holder = result.ranges[0]?.[0];
    if (holder === undefined || holder.createRevision !== reign) {
      if (this.wonRevision === reign) this.resign();
      return "deposed";
    }
    // Changed since read: the watch brings the new state, and with it another pass.
    return "stale";
  }
}
