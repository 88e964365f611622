/**
 * @module cluster/controlled-shutdown
 * Kafka's controlled shutdown for a cluster broker that was asked to stop (SIGTERM, SIGINT,
 * `stop()`): before it closes anything it marks itself draining in its etcd record, keeps serving
 * while the controller moves each partition it leads to another live ISR member (leaderEpoch + 1)
 * and takes it out of every ISR, and returns once nothing movable is left — or after
 * `controlledShutdownTimeoutMs`, logged, when the controller does not get there (etcd unreachable,
 * no controller). Partitions with no other live ISR member stay with this broker (it alone holds
 * every acknowledged record) and are logged: they go offline when it stops and come back with it.
 *
 * In-flight `replicated` produces are safe: this broker sees its new state through its watch and
 * fails their acknowledgements with NOT_LEADER; clients retry on the new leader, and an idempotent
 * producer's retry is de-duplicated there (the producer table replicates with the log).
 */
import type { Logger } from "../logger.ts";
import type { EtcdClusterView } from "./etcd-cluster-view.ts";

/** Besides every cluster event, the progress is looked at this often (a missed event costs no more). */
const DRAIN_CHECK_MS = 250;

/** Drains `view`'s broker; resolves when done or after `timeoutMs` (0 = skip). Never throws. */
export async function drainLeadership(view: EtcdClusterView, timeoutMs: number, logger: Logger): Promise<void> {
  if (timeoutMs === 0) return;
  const startedMs = performance.now();
  try {
    await view.startDraining();
  } catch (error) {
    logger.warn({ error: error instanceof Error ? error.message : String(error) }, "controlled shutdown: could not mark this broker draining in etcd; stopping without it");
    return;
  }
  logger.info({ movable: view.drainProgress().movable, timeoutMs }, "controlled shutdown: the controller moves this broker's leaderships and ISR seats away");
  const drained = await waitUntil(() => view.drainProgress().movable === 0, view, timeoutMs);
  const progress = view.drainProgress();
  for (const { topic, partition } of progress.stuck) {
    logger.warn({ topic, partition }, "controlled shutdown: no other live in-sync replica can take over; the partition stays here and is offline until this broker returns");
  }
  const durationMs = Math.round(performance.now() - startedMs);
  const leading = leadCount(view);
  if (drained) logger.info({ durationMs, leading, kept: progress.stuck.length }, "controlled shutdown: leadership moved away");
  else logger.warn({ durationMs, leading, movable: progress.movable }, "controlled shutdown timed out; stopping anyway (the lease revocation moves what is left)");
}

/** True once `condition` holds (checked on each cluster event and every DRAIN_CHECK_MS), false after `timeoutMs`. */
function waitUntil(condition: () => boolean, view: EtcdClusterView, timeoutMs: number): Promise<boolean> {
  if (condition()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const check = () => {
      if (condition()) finish(true);
    };
    const unsubscribe = view.subscribe(check);
    const interval = setInterval(check, DRAIN_CHECK_MS);
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(result: boolean): void {
      unsubscribe();
      clearInterval(interval);
      clearTimeout(timer);
      resolve(result);
    }
  });
}

/** Partitions the view says this broker leads (logged as the drain ends: 0 unless some were kept). */
function leadCount(view: EtcdClusterView): number {
  let count = 0;
  for (const { state } of view.partitionStates()) if (state.leader === view.brokerId) count++;
  return count;
}
