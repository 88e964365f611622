/**
 * @module broker/deadline-timer
 * The one timer behind a sans-IO component's deadlines (the group coordinator's sessions): it is
 * armed for the earliest deadline it was told of, and when it fires it calls `onDue`, which
 * handles what is due and returns the next deadline (or null). As in the long-poll notifier, a
 * timer armed earlier than a new deadline is left alone — it fires, finds nothing due or some,
 * and re-arms — so a heartbeat that pushes a deadline later costs no timer call.
 */

export class DeadlineTimer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When the armed timer fires (clock ms); meaningful only while `timer` is not null. */
  private timerAtMs = 0;
  private readonly onTimer = (): void => this.fire();

  constructor(
    private readonly onDue: () => number | null,
    private readonly nowMs: () => number,
  ) {}

  /** Makes sure the timer fires no later than `deadlineMs` (null: nothing to wait for). */
  armFor(deadlineMs: number | null): void {
    if (deadlineMs === null) return;
    if (this.timer !== null && this.timerAtMs <= deadlineMs) return;
    this.disarm();
    const delayMs = Math.max(1, Math.ceil(deadlineMs - this.nowMs()));
    this.timerAtMs = this.nowMs() + delayMs;
    this.timer = setTimeout(this.onTimer, delayMs);
    // Members are held by their connections' requests; the timer alone must not keep a process up.
    this.timer.unref();
  }

  disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    this.armFor(this.onDue());
  }
}
