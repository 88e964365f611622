/**
 * @module log/semaphore
 * A counting semaphore over async work: at most `max` runs at once, the rest wait in order.
 * The log uses it to bound what would otherwise grow with the number of partitions: async fs
 * calls of topic creation (topic-staging.ts) and fds held by background fdatasyncs (fd-cache.ts).
 */
export class Semaphore {
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`semaphore size must be a positive integer, got ${max}`);
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.max) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.inFlight++;
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter, so inFlight stays counted.
      const next = this.queue.shift();
      if (next !== undefined) next();
      else this.inFlight--;
    }
  }
}
