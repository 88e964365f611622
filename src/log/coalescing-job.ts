/**
 * @module log/coalescing-job
 * A background job that runs one at a time: asked while it runs, it runs once more when the
 * current run ends (however many times it was asked), so requests coalesce instead of queueing.
 * The partition uses it for policy flushes and for the checkpoint after a segment roll.
 */
export class CoalescingJob {
  private running: Promise<void> | null = null;
  private again = false;

  /** `run` returns false to stop repeating even when asked again (closed, failed, disk full). */
  constructor(private readonly run: () => Promise<boolean>) {}

  /** Starts a run, or marks the running one to go again when it ends. */
  request(): void {
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  get isRunning(): boolean {
    return this.running !== null;
  }

  /** Resolves when the current run (and its repeats) end; failures are the run's to report. */
  settled(): Promise<void> {
    return this.running === null ? Promise.resolve() : this.running.catch(() => undefined);
  }

  private async loop(): Promise<void> {
    let keepGoing: boolean;
    do {
      this.again = false;
      keepGoing = await this.run();
    } while (this.again && keepGoing);
  }
}
