/**
 * @module listeners/http/process-sampler
 * Process figures for `/metrics` and the console: resident memory, CPU time, heap, and
 * event-loop lag. Bun implements node:perf_hooks' monitorEventLoopDelay (a timer sampling how
 * late it fires); it does not emit PerformanceObserver "gc" entries nor any GC pause figure, so
 * GC pauses are not reported on their own: a pause stops the event loop and shows up in the
 * event-loop lag (docs/operations.md, "Observability").
 *
 * The lag histogram covers a rolling window: it is reset every `windowMs`, and the figures of
 * the last complete window are reported (the current one until the first window ends).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";

export interface EventLoopLag {
  meanSeconds: number;
  p50Seconds: number;
  p99Seconds: number;
  maxSeconds: number;
}

export interface ProcessFigures {
  residentBytes: number;
  heapUsedBytes: number;
  /** The JS heap's size (in use and free cells), JavaScriptCore's heapTotal. */
  heapSizeBytes: number;
  /** Bytes behind live ArrayBuffers (socket chunks, frames, index arrays), outside the JS heap. */
  arrayBuffersBytes: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  eventLoopLag: EventLoopLag;
}

const NS_PER_SECOND = 1e9;
/** The lag monitor's sampling period; finer costs a timer wake-up per period. */
const LAG_RESOLUTION_MS = 20;

export class ProcessSampler {
  private readonly monitor = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  private readonly timer: ReturnType<typeof setInterval>;
  private lastWindow: EventLoopLag | null = null;

  constructor(windowMs = 60_000) {
    this.monitor.enable();
    this.timer = setInterval(() => this.rollWindow(), windowMs);
    this.timer.unref();
  }

  private currentLag(): EventLoopLag {
    const monitor = this.monitor;
    if (monitor.count === 0) return { meanSeconds: 0, p50Seconds: 0, p99Seconds: 0, maxSeconds: 0 };
    // The monitor reports how far past its period the timer fired, in ns.
    return {
      meanSeconds: monitor.mean / NS_PER_SECOND,
      p50Seconds: monitor.percentile(50) / NS_PER_SECOND,
      p99Seconds: monitor.percentile(99) / NS_PER_SECOND,
      maxSeconds: monitor.max / NS_PER_SECOND,
    };
  }

  private rollWindow(): void {
    this.lastWindow = this.currentLag();
    this.monitor.reset();
  }

  sample(): ProcessFigures {
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      residentBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      heapSizeBytes: memory.heapTotal,
      arrayBuffersBytes: memory.arrayBuffers,
      cpuUserSeconds: cpu.user / 1e6,
      cpuSystemSeconds: cpu.system / 1e6,
      eventLoopLag: this.lastWindow ?? this.currentLag(),
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.monitor.disable();
  }
}
