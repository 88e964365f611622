/**
 * @module server/memory-budget
 * The broker-wide budget for bytes held on behalf of clients: partially received frames (and the
 * assembly buffers connections keep for reuse) and queued response bytes. Without it, memory is
 * bounded only by connectionsMax x frameBytesMax (10,000 x 16 MiB): 128 connections each holding
 * a nearly complete 16 MiB frame took a broker to 3.3 GB.
 *
 * - A frame that straddles reads is admitted by its declared length (`tryReserve`) before any
 *   byte of its body is taken (protocol/frame.ts; its memory then follows the bytes that come).
 *   Admitting whole frames means an admitted frame can always complete: reserving only the bytes
 *   that had arrived let 100 clients sending 8 MiB frames into a 256 MiB budget each take 2.5 MiB
 *   and all wait for ever. A refused frame makes the connection wait: it stops reading (socket
 *   paused, bytes stay in the kernel) and registers a waiter, woken in arrival order once enough
 *   is released for it. The frame timeout still applies to a waiting connection
 *   (server/connection.ts).
 * - Small frames (at most SMALL_FRAME_BYTES) may use a headroom of bytesMax/8 above the budget,
 *   so a well-behaved client's ordinary requests still get through while large partial frames
 *   fill the budget.
 * - Response bytes are charged unconditionally (`charge`): a reply is already made when it is
 *   queued. A connection with queued bytes stops reading while the budget is exhausted.
 * - Memory given back promptly: once GC_TRIGGER_BYTES or more were released since the last
 *   collection, a garbage collection is scheduled (debounced), so the buffers of an attack that
 *   ended are freed now, not whenever an unrelated allocation triggers the collector. It is a
 *   forced, synchronous one (Bun.gc(true)) only when the budget was at least half used at some
 *   point since the last: every answer queued and every frame assembled is charged and
 *   released, so ordinary traffic far under the budget used to force a full collection
 *   (pauses up to ~40 ms, seen as the e2e bench's p99.99) every 64 MiB — five times a second
 *   in a tuned produce run. Without pressure it only asks for one (Bun.gc(false): returns at
 *   once, the engine collects concurrently), which still keeps received chunks from piling up. The same
 *   happens after GC_TRIGGER_BYTES were received while the budget is at least half used: every
 *   socket read is a fresh buffer that is garbage once copied into a frame's blocks, and under
 *   such an attack the collector's own heuristics let hundreds of MiB of them pile up.
 * - Memory given back when traffic stops: once IDLE_GC_RECEIVED_BYTES were received since the
 *   last such collection, the first IDLE_GC_QUIET_MS with no byte received runs a forced one.
 *   A tuned produce leaves tens of MiB of received chunks behind (Bun makes a fresh buffer of up
 *   to 512 KiB per socket read), and an idle engine allocates nothing that would trigger the
 *   collector, so without it the broker sat at its peak RSS after the traffic ended (issue 17,
 *   docs/architecture.md "Memory"). A pause then costs nobody; one timer per second at most.
 */

/** Frames up to this size may use the headroom above the budget (see module note). */
export const SMALL_FRAME_BYTES = 64 * 1024;
/** Bytes released (or received under pressure) since the last collection that make the budget schedule one. */
const GC_TRIGGER_BYTES = 64 * 1024 * 1024;
/** Delay of that collection: lets a burst of closes finish first, one collection for all. */
const GC_DELAY_MS = 50;
/** Bytes received after which the next quiet moment brings a forced collection (module note). */
const IDLE_GC_RECEIVED_BYTES = 64 * 1024 * 1024;
/** How long no byte may arrive before that collection runs. */
const IDLE_GC_QUIET_MS = 1_000;

export type Waiter = () => void;

export class MemoryBudget {
  /** Bytes reserved or charged now. */
  usedBytes = 0;
  /** Highest usedBytes seen. */
  peakBytes = 0;
  /** Garbage collections this budget scheduled (reported in stats): forced ones and requests. */
  collections = 0;
  /** The longest of those collections, ms. */
  collectionMsMax = 0;
  private readonly headroomBytes: number;
  /** Waiting connections in arrival order, with the reservation each was refused. */
  private readonly waiters = new Map<Waiter, { bytes: number; frameBytes: number }>();
  private releasedSinceGcBytes = 0;
  /** The budget was at least half used since the last collection: the next one is forced. */
  private pressureSinceGc = false;
  private receivedSinceGcBytes = 0;
  private gcTimer: ReturnType<typeof setTimeout> | null = null;
  /** Bytes received since start, and that count at the last idle collection. */
  private receivedTotalBytes = 0;
  private receivedAtIdleGcBytes = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeScheduled = false;

  constructor(
    readonly bytesMax: number,
    /** `forced`: a synchronous full collection (after pressure); else a request the engine runs concurrently. */
    private readonly collect: (forced: boolean) => void = (forced) => Bun.gc(forced),
  ) {
    this.headroomBytes = Math.floor(bytesMax / 8);
  }

  /** Connections waiting for room. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** True when no frame over SMALL_FRAME_BYTES can reserve more. */
  get isExhausted(): boolean {
    return this.usedBytes >= this.bytesMax;
  }

  /** Reserves `bytes` for a frame of `frameBytes` (declared length); false when there is no room. */
  tryReserve(bytes: number, frameBytes: number): boolean {
    if (!this.fits(bytes, frameBytes)) return false;
    this.add(bytes);
    return true;
  }

  private fits(bytes: number, frameBytes: number): boolean {
    const limit = frameBytes <= SMALL_FRAME_BYTES ? this.bytesMax + this.headroomBytes : this.bytesMax;
    return this.usedBytes + bytes <= limit;
  }

  /**
   * Whether a connection may keep an assembled frame's buffer for reuse: only while the budget
   * is less than half used, so idle reuse buffers never keep other connections' frames waiting.
   */
  mayKeep(): boolean {
    return this.usedBytes < this.bytesMax / 2;
  }

  /** Charges bytes that are already held (queued response bytes); may go over the budget. */
  charge(bytes: number): void {
    this.add(bytes);
  }

  release(bytes: number): void {
    if (bytes <= 0) return;
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
    this.releasedSinceGcBytes += bytes;
    if (this.releasedSinceGcBytes >= GC_TRIGGER_BYTES) this.scheduleCollection();
    if (this.waiters.size > 0 && this.usedBytes < this.bytesMax) this.scheduleWake();
  }

  /** Counts bytes read from sockets (see the module note on collections). */
  noteReceived(bytes: number): void {
    this.receivedTotalBytes += bytes;
    if (this.idleTimer === null && this.receivedTotalBytes - this.receivedAtIdleGcBytes >= IDLE_GC_RECEIVED_BYTES) this.armIdleCollection();
    if (this.usedBytes < this.bytesMax / 2) return;
    this.receivedSinceGcBytes += bytes;
    if (this.receivedSinceGcBytes >= GC_TRIGGER_BYTES) this.scheduleCollection();
  }

  /**
   * Calls `waiter` once, after a later release (never from inside it) left room for the
   * reservation it was refused (`bytes` for a frame of `frameBytes`). Only a release wakes: the
   * caller was just refused, so waking it before anything was released would refuse it again.
   */
  wait(waiter: Waiter, bytes: number, frameBytes: number): void {
    this.waiters.set(waiter, { bytes, frameBytes });
  }

  cancelWait(waiter: Waiter): void {
    this.waiters.delete(waiter);
  }

  /** Stops the pending collection timer (broker stop). */
  close(): void {
    if (this.gcTimer !== null) clearTimeout(this.gcTimer);
    this.gcTimer = null;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Checks every IDLE_GC_QUIET_MS whether bytes still arrive; the first quiet check collects. */
  private armIdleCollection(): void {
    const receivedAtArmBytes = this.receivedTotalBytes;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.receivedTotalBytes !== receivedAtArmBytes) {
        this.armIdleCollection();
        return;
      }
      this.receivedAtIdleGcBytes = this.receivedTotalBytes;
      this.runCollection(true);
    }, IDLE_GC_QUIET_MS);
    this.idleTimer.unref?.();
  }

  private add(bytes: number): void {
    this.usedBytes += bytes;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
    if (this.usedBytes >= this.bytesMax / 2) this.pressureSinceGc = true;
  }

  /** Wakes, in arrival order, the waiters whose reservation fits now; a woken one that is refused again waits again. */
  private scheduleWake(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    // Never from inside release(): the releasing connection is in the middle of its own pump.
    queueMicrotask(() => {
      this.wakeScheduled = false;
      for (const [waiter, want] of [...this.waiters]) {
        if (!this.fits(want.bytes, want.frameBytes)) continue;
        this.waiters.delete(waiter);
        waiter();
      }
    });
  }

  private runCollection(forced: boolean): void {
    this.collections++;
    const startedMs = performance.now();
    this.collect(forced);
    this.collectionMsMax = Math.max(this.collectionMsMax, performance.now() - startedMs);
  }

  private scheduleCollection(): void {
    if (this.gcTimer !== null) return;
    this.gcTimer = setTimeout(() => {
      this.gcTimer = null;
      const forced = this.pressureSinceGc;
      this.releasedSinceGcBytes = 0;
      this.receivedSinceGcBytes = 0;
      this.pressureSinceGc = this.usedBytes >= this.bytesMax / 2;
      this.runCollection(forced);
    }, GC_DELAY_MS);
    this.gcTimer.unref?.();
  }
}
