/**
 * @module bench/partial-frames
 * Issue 16's memory attack, measured: many connections each send a nearly complete largest frame
 * (a 16 MiB length, then all but its last byte) and stall, while one well-behaved client sends a
 * request every 20 ms. Reports, against a no-attack baseline in the same run over the same broker
 * (a child process; RSS from /proc/<pid>/status): the longest wait for an answer, peak RSS, what
 * the broker did with the hostile connections (waiting for room in its buffered-bytes budget),
 * and how soon RSS comes back once they close. The hostile connections live in a child process
 * (this file with --attacker), so their writing never delays the probe's own event loop.
 *
 *   npx bun bench/partial-frames.ts [connections=200] [holdMs=3000] [extra serve flags...]
 *
 * test/server/availability-memory.test.ts runs the same driver with a smaller budget.
 */
import { decode, encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import { type EmbeddedBroker, readProcessUsage, startEmbeddedBroker } from "../src/bench/embedded-broker.ts";
import { encodeFrame, FrameDecoder } from "../src/protocol/frame.ts";

const MiB = 1024 * 1024;
export const PROBE_INTERVAL_MS = 20;

type Answer = Record<string, unknown>;

/** A well-behaved client: one `stats` request every PROBE_INTERVAL_MS, each answer awaited. */
export class Prober {
  answers = 0;
  failures = 0;
  longestWaitMs = 0;
  lastStats: Answer = {};
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  private readonly decoder = new FrameDecoder(64 * MiB);
  private waiter: ((answer: Answer | null) => void) | null = null;
  private socket!: Socket<undefined>;
  private nextId = 1;

  static async open(port: number): Promise<Prober> {
    const prober = new Prober();
    prober.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => prober.onData(chunk),
        close: () => prober.wake(null),
        error: () => prober.wake(null),
      },
    });
    return prober;
  }

  /** Starts probing; `stop` ends it. Resets the figures. */
  start(): void {
    this.answers = 0;
    this.failures = 0;
    this.longestWaitMs = 0;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  close(): void {
    this.socket.end();
  }

  /** Writes a whole raw frame and awaits one answer (null when the connection failed). */
  async sendRaw(frame: Uint8Array, timeoutMs = 30_000): Promise<Answer | null> {
    const answered = new Promise<Answer | null>((resolve) => (this.waiter = resolve));
    const timer = setTimeout(() => this.wake(null), timeoutMs);
    let written = 0;
    while (written < frame.length) {
      const taken = this.socket.write(frame.subarray(written));
      if (taken < 0) break;
      written += taken;
      if (written < frame.length) await Bun.sleep(1);
    }
    const answer = await answered;
    clearTimeout(timer);
    return answer;
  }

  /** One request, awaited; its answer or null when the connection failed. */
  async request(body: Answer, timeoutMs = 30_000): Promise<Answer | null> {
    const id = this.nextId++;
    const answered = new Promise<Answer | null>((resolve) => (this.waiter = resolve));
    const timer = setTimeout(() => this.wake(null), timeoutMs);
    this.socket.write(encodeFrame(encode({ ...body, id })));
    const answer = await answered;
    clearTimeout(timer);
    return answer !== null && answer.id === id ? answer : null;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const startedMs = performance.now();
      const answer = await this.request({ op: "stats" });
      const waitedMs = performance.now() - startedMs;
      this.longestWaitMs = Math.max(this.longestWaitMs, waitedMs);
      if (answer === null || answer.error !== undefined) this.failures++;
      else {
        this.answers++;
        this.lastStats = answer;
      }
      await Bun.sleep(Math.max(0, PROBE_INTERVAL_MS - waitedMs));
    }
  }

  private onData(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) this.wake(decode(frame) as Answer);
  }

  private wake(answer: Answer | null): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.(answer);
  }
}

/** A connection that declares a `frameBytes` frame, sends all but its last byte, and stalls. */
export class HostileConnection {
  written = 0;
  closedByBroker = false;
  private socket!: Socket<undefined>;
  private ended = false;

  static async open(port: number, stream: Uint8Array): Promise<HostileConnection> {
    const hostile = new HostileConnection();
    hostile.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        drain: () => hostile.writeMore(stream),
        close: () => {
          if (!hostile.ended) hostile.closedByBroker = true;
        },
        error: () => {},
      },
    });
    hostile.writeMore(stream);
    return hostile;
  }

  /** Closes at once (RST), as a dying attacker would. */
  close(): void {
    this.ended = true;
    this.socket.terminate();
  }

  private writeMore(stream: Uint8Array): void {
    while (!this.ended && this.written < stream.length) {
      const taken = this.socket.write(stream.subarray(this.written));
      if (taken <= 0) return;
      this.written += taken;
    }
  }
}

/** The 4-byte header of a `frameBytes` frame plus all but its last byte. */
export function nearlyCompleteFrame(frameBytes: number): Uint8Array {
  const stream = new Uint8Array(4 + frameBytes - 1).fill(0x41);
  new DataView(stream.buffer).setUint32(0, frameBytes);
  return stream;
}

function rssOf(pid: number): number {
  return readProcessUsage(pid)?.rssBytes ?? 0;
}

/** Samples RSS every few ms until stopped; keeps the peak. */
export function sampleRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

export interface PhaseFigures {
  answers: number;
  failures: number;
  longestWaitMs: number;
  peakRssBytes: number;
}

export interface AttackFigures {
  baseline: PhaseFigures;
  attack: PhaseFigures & {
    /** The broker's stats answer at the end of the attack. */
    stats: Answer;
    hostileClosedByBroker: number;
    hostileBytesWritten: number;
  };
  /** RSS before the attack, and the first sample back under baseline + `settledMarginBytes` after the hostile connections closed. */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  settledAfterMs: number;
  bufferedBytesAfter: number;
}

export interface AttackOptions {
  port: number;
  pid: number;
  connections: number;
  frameBytes: number;
  /** How long the attack holds after the last hostile connection opened. */
  holdMs: number;
  /** The baseline phase's length. */
  baselineMs: number;
  /** RSS counts as settled at baseline + this; waited for up to settleTimeoutMs. */
  settledMarginBytes: number;
  settleTimeoutMs: number;
}

async function phase(prober: Prober, pid: number, body: () => Promise<void>): Promise<PhaseFigures> {
  const rss = sampleRss(pid);
  prober.start();
  await body();
  await prober.stop();
  return { answers: prober.answers, failures: prober.failures, longestWaitMs: prober.longestWaitMs, peakRssBytes: rss.stop() };
}

/** The hostile side, in a child process: reports progress as JSON lines, closes all on "close". */
class Attacker {
  private lines: string[] = [];
  private waiters: Array<() => void> = [];
  last: { opened: number; written: number; closedByBroker: number } = { opened: 0, written: 0, closedByBroker: 0 };

  private constructor(private readonly child: Bun.Subprocess<"pipe", "pipe", "inherit">) {
    void this.read();
  }

  static start(port: number, connections: number, frameBytes: number): Attacker {
    const child = Bun.spawn([process.execPath, import.meta.path, "--attacker", String(port), String(connections), String(frameBytes)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    return new Attacker(child);
  }

  /** Resolves once every hostile connection is open. */
  async opened(connections: number): Promise<void> {
    while (this.last.opened < connections) await this.nextLine();
  }

  /** Closes every hostile connection (RST) and waits for the child to exit. */
  async close(): Promise<void> {
    this.child.stdin.write("close\n");
    await this.child.stdin.flush();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.child.exited;
    clearTimeout(timer);
  }

  private nextLine(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private async read(): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of this.child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        this.last = JSON.parse(pending.slice(0, newline)) as Attacker["last"];
        pending = pending.slice(newline + 1);
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      }
    }
    this.last = { ...this.last, opened: Number.POSITIVE_INFINITY };
    for (const wake of this.waiters) wake();
  }
}

/** The child process's side: opens the hostile connections and writes until told to close. */
async function attackerMain(port: number, connections: number, frameBytes: number): Promise<void> {
  const stream = nearlyCompleteFrame(frameBytes);
  const hostile: HostileConnection[] = [];
  const report = () => {
    const written = hostile.reduce((sum, connection) => sum + connection.written, 0);
    const closedByBroker = hostile.filter((connection) => connection.closedByBroker).length;
    process.stdout.write(`${JSON.stringify({ opened: hostile.length, written, closedByBroker })}\n`);
  };
  const timer = setInterval(report, 200);
  const closing = (async () => {
    for await (const chunk of Bun.stdin.stream()) if (new TextDecoder().decode(chunk).includes("close")) return;
  })();
  for (let index = 0; index < connections; index++) hostile.push(await HostileConnection.open(port, stream));
  report();
  await closing;
  clearInterval(timer);
  report();
  for (const connection of hostile) connection.close();
  await Bun.sleep(100);
  process.exit(0);
}

/** Baseline, then the attack, then the hostile connections close and RSS is watched coming back. */
export async function runPartialFrameAttack(options: AttackOptions): Promise<AttackFigures> {
  const prober = await Prober.open(options.port);
  try {
    // Warm up (JIT, first allocations) before the baseline.
    for (let index = 0; index < 50; index++) await prober.request({ op: "stats" });
    const baseline = await phase(prober, options.pid, () => Bun.sleep(options.baselineMs));
    const rssBeforeBytes = rssOf(options.pid);
    const attacker = Attacker.start(options.port, options.connections, options.frameBytes);
    let closing: Promise<void> | null = null;
    try {
      const attack = await phase(prober, options.pid, async () => {
        await attacker.opened(options.connections);
        await Bun.sleep(options.holdMs);
      });
      const stats = (await prober.request({ op: "stats" })) ?? {};
      const { written, closedByBroker } = attacker.last;
      closing = attacker.close();
      await closing;
      const settleStartMs = performance.now();
      let rssAfterBytes = rssOf(options.pid);
      let bufferedBytesAfter = Number(stats.bufferedBytes ?? 0);
      while (performance.now() - settleStartMs < options.settleTimeoutMs) {
        await Bun.sleep(50);
        rssAfterBytes = rssOf(options.pid);
        bufferedBytesAfter = Number((await prober.request({ op: "stats" }))?.bufferedBytes ?? -1);
        if (bufferedBytesAfter === 0 && rssAfterBytes <= rssBeforeBytes + options.settledMarginBytes) break;
      }
      return {
        baseline,
        attack: { ...attack, stats, hostileClosedByBroker: closedByBroker, hostileBytesWritten: written },
        rssBeforeBytes,
        rssAfterBytes,
        settledAfterMs: performance.now() - settleStartMs,
        bufferedBytesAfter,
      };
    } finally {
      if (closing === null) await attacker.close();
    }
  } finally {
    prober.close();
  }
}

export interface SendAndLeaveFigures {
  rssBeforeBytes: number;
  peakRssBytes: number;
  /** RSS when the last connection had closed, and the first sample back under before + margin. */
  rssAtLeaveBytes: number;
  rssAfterBytes: number;
  settledAfterMs: number;
}

/**
 * The second attack of issue 16: `connections` clients each send one whole `frameBytes` frame
 * (junk: answered with an error), read the answer and leave. Before the budget, 100 x 8 MiB kept
 * 880 MB resident for over a minute.
 */
export async function runSendAndLeave(options: { port: number; pid: number; connections: number; frameBytes: number; settledMarginBytes: number; settleTimeoutMs: number }): Promise<SendAndLeaveFigures> {
  const rssBeforeBytes = rssOf(options.pid);
  const rss = sampleRss(options.pid);
  const frame = encodeFrame(new Uint8Array(options.frameBytes).fill(0xc0));
  const clients = await Promise.all(Array.from({ length: options.connections }, () => Prober.open(options.port)));
  await Promise.all(clients.map((client) => client.sendRaw(frame)));
  for (const client of clients) client.close();
  const peakRssBytes = rss.stop();
  const rssAtLeaveBytes = rssOf(options.pid);
  const startedMs = performance.now();
  let rssAfterBytes = rssAtLeaveBytes;
  while (performance.now() - startedMs < options.settleTimeoutMs && rssAfterBytes > rssBeforeBytes + options.settledMarginBytes) {
    await Bun.sleep(50);
    rssAfterBytes = rssOf(options.pid);
  }
  return { rssBeforeBytes, peakRssBytes, rssAtLeaveBytes, rssAfterBytes, settledAfterMs: performance.now() - startedMs };
}

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** One paragraph of figures. */
export function describeFigures(figures: AttackFigures, connections: number): string {
  const { baseline, attack } = figures;
  return [
    `no attack: ${baseline.answers} answers, longest wait ${baseline.longestWaitMs.toFixed(1)} ms, peak RSS ${mib(baseline.peakRssBytes)}`,
    `${connections} x 16 MiB partial frames: ${attack.answers} answers (${attack.failures} failed), longest wait ${attack.longestWaitMs.toFixed(1)} ms, ` +
      `peak RSS ${mib(attack.peakRssBytes)}; hostile bytes sent ${mib(attack.hostileBytesWritten)}, ` +
      `broker buffered ${mib(Number(attack.stats.bufferedBytes))} (peak ${mib(Number(attack.stats.bufferedBytesPeak))}, budget ${mib(Number(attack.stats.bufferedBytesMax))}), ` +
      `${String(attack.stats.connectionsWaitingForMemory)} connections waiting for room, ${attack.hostileClosedByBroker} closed by the broker; ` +
      `${String(attack.stats.memoryCollections)} collections by the budget (longest ${String(attack.stats.memoryCollectionMsMax)} ms)`,
    `after they closed: RSS ${mib(figures.rssBeforeBytes)} before -> ${mib(figures.rssAfterBytes)} after ${figures.settledAfterMs.toFixed(0)} ms (buffered ${mib(figures.bufferedBytesAfter)})`,
  ].join("\n");
}

async function main(argv: string[]): Promise<void> {
  const connections = Number(argv[0] ?? 200);
  const holdMs = Number(argv[1] ?? 3_000);
  const broker: EmbeddedBroker = await startEmbeddedBroker(argv.slice(2));
  try {
    const port = Number(broker.address.split(":")[1]);
    const figures = await runPartialFrameAttack({
      port,
      pid: broker.pid,
      connections,
      frameBytes: 16 * MiB,
      holdMs,
      baselineMs: 2_000,
      settledMarginBytes: 32 * MiB,
      settleTimeoutMs: 10_000,
    });
    console.log(describeFigures(figures, connections));
    const leave = await runSendAndLeave({ port, pid: broker.pid, connections: 100, frameBytes: 8 * MiB, settledMarginBytes: 32 * MiB, settleTimeoutMs: 30_000 });
    console.log(
      `100 x one 8 MiB frame, then leave: RSS ${mib(leave.rssBeforeBytes)} before, peak ${mib(leave.peakRssBytes)}, ${mib(leave.rssAtLeaveBytes)} when they had left, ` +
        `${mib(leave.rssAfterBytes)} ${leave.settledAfterMs.toFixed(0)} ms later`,
    );
  } finally {
    await broker.stop();
  }
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  if (argv[0] === "--attacker") await attackerMain(Number(argv[1]), Number(argv[2]), Number(argv[3]));
  else await main(argv);
}
