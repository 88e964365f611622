/**
 * @module broker/woken-reads
 * Where a long-poll fetch woken by data reads again: not inside the produce that woke it, but in
 * one microtask after every frame of the chunk being handled was dispatched (same turn of the
 * event loop, no timer). A producer's requests often arrive several to a read; read at once, the
 * woken fetch would answer with the first request's batch only, and the rest would wait for the
 * fetcher's next request — another round trip and two more wake-ups (issue 17). The native fetch,
 * the replica fetch and the Kafka fetch all park on the partition notifier and read through this.
 *
 * A deadline or a shutdown (`wake(false)`) reads at once: nothing more is coming, and shutdown
 * closes the log right after.
 */

/** A parked fetch that can read again (answering, or parking once more). Must not throw. */
export interface WokenRead {
  readAgain(): void;
}

/** Fetches woken by data in this turn, read again by one microtask for all of them. */
const woken: WokenRead[] = [];
let readQueued = false;

/** Reads `fetch` again once the frames already read have been dispatched. */
export function readAfterFrames(fetch: WokenRead): void {
  woken.push(fetch);
  if (readQueued) return;
  readQueued = true;
  queueMicrotask(readWoken);
}

/**
 * A parked fetch's `wake` (broker/partition-notifier.ts Sleeper): data arrived, so read after
 * the frames; time up or shutdown, read now. The one place the three fetch kinds decide it.
 */
export function readWhenWoken(fetch: WokenRead, woken: boolean): void {
  if (woken) readAfterFrames(fetch);
  else fetch.readAgain();
}

function readWoken(): void {
  // Index loop: a fetch woken while this runs is appended and read in this pass (readQueued is
  // still true, so it queues no second microtask). readAgain never throws (WokenRead).
  for (let index = 0; index < woken.length; index++) woken[index]!.readAgain();
  woken.length = 0;
  readQueued = false;
}
