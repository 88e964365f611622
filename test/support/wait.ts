/**
 * @module test/support/wait
 * Waiting for a condition in tests: poll it every millisecond until it holds, and fail with a
 * clear error after a bounded time — never sleep a fixed time and hope.
 */

/** Resolves once `condition()` holds; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await Bun.sleep(1);
  }
}
