/**
 * @module server/create-quota
 * How fast clients may create partitions, broker-wide: a token bucket counted in partitions
 * (a topic costs its partition count), like Kafka's controller mutation quota (KIP-599).
 * The bucket holds at most `burst` tokens and refills at `perSecond`. A request is admitted
 * while the balance is positive and takes its whole cost, even past zero: one createTopic of
 * 1,000 partitions goes through at once, and the ones after it wait until the debt is repaid.
 * A refused one gets THROTTLED with `retryAfterMs` (when the balance is positive again).
 */
import { RunnelError } from "../errors.ts";

export class CreateQuota {
  private tokens: number;
  private refilledAtMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.refilledAtMs = nowMs();
  }

  /** Takes `partitions` tokens, or throws THROTTLED when the balance is not positive. */
  take(partitions: number): void {
    this.refill();
    if (this.tokens <= 0) {
      const retryAfterMs = Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
      throw new RunnelError("THROTTLED", `partitions are being created faster than ${this.perSecond} per second (partitionCreatesPerSecond); retry in ${retryAfterMs} ms`, {
        details: { retryAfterMs, partitionCreatesPerSecond: this.perSecond },
      });
    }
    this.tokens -= partitions;
  }

  private refill(): void {
    const nowMs = this.nowMs();
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.refilledAtMs) / 1000) * this.perSecond);
    this.refilledAtMs = nowMs;
  }
}
