/**
 * @module broker/timed-storage
 * Wraps the log's file seam (log/storage.ts) so every fdatasync — synchronous flushes and the
 * group commit's worker-thread ones — lands in a latency histogram. The log itself knows
 * nothing of metrics; the broker hands it the wrapped storage.
 */
import type { Storage } from "../log/storage.ts";
import type { Histogram } from "./metrics.ts";

export function timedStorage(storage: Storage, fdatasyncSeconds: Histogram): Storage {
  return {
    ...storage,
    fdatasync(fd: number): void {
      const startedMs = performance.now();
      try {
        storage.fdatasync(fd);
      } finally {
        fdatasyncSeconds.observe((performance.now() - startedMs) / 1000);
      }
    },
    fdatasyncAsync(fd: number): Promise<void> {
      const startedMs = performance.now();
      const observe = () => fdatasyncSeconds.observe((performance.now() - startedMs) / 1000);
      return storage.fdatasyncAsync(fd).finally(observe);
    },
  };
}
