/**
 * @module bench/latency-floor
 * e2e's same-run baseline: what this machine gives three Bun processes passing the same
 * messages at the same pace with no broker in between. A pacer (this process, paced exactly as
 * the e2e producer loop: due times, the same ~0.05 ms pause, one write per turn) writes
 * stamped fixed-size messages to a relay process (`runnel bench floor-relay`: Bun.listen,
 * forwards every chunk it reads from the pacer to the receiver), and a receiver process
 * (`runnel bench floor-receiver`) records due -> seen on the shared epoch clock, after the
 * same warm-up. Same layout as e2e (producer, broker, consumer processes), two hops instead of
 * e2e's four crossings (request, ack, fetch answer, next fetch) and no log, codec or client:
 * e2e's latency over this floor is what Runnel adds; the floor itself is the VM's wake-up and
 * scheduling latency, and moves with the machine's load, which is why it is measured in the
 * same run.
 *
 * Relay protocol (internal, both ends are this file): each connection's first byte names it,
 * 'P' the pacer, 'R' the receiver; bytes from the pacer after it go to the receiver as they are.
 * Receiver stdin: one JSON line {port, clockBaseNs, sizeBytes, measureFromNs}, then "expect N";
 * stdout: "ready", then "result {histogram snapshot}".
 */
import type { Socket } from "bun";
import { RunnelError } from "../errors.ts";
import { runnelCommand } from "./embedded-broker.ts";
import { stampClockNs, streamLines } from "./e2e-consumer.ts";
import { type HistogramSnapshot, LatencyHistogram } from "./histogram.ts";
import { pauseUntilDue } from "./workloads.ts";

const ROLE_PACER = 0x50; // 'P'
const ROLE_RECEIVER = 0x52; // 'R'
const CHILD_TIMEOUT_MS = 20_000;
/** After the last send, how long the receiver may take to see everything. */
const DRAIN_TIMEOUT_MS = 10_000;

export interface FloorOptions {
  rate: number;
  sizeBytes: number;
  durationS: number;
  warmupS: number;
}

/** The floor's latency (due -> seen, ns) over the measured phase. */
export async function measureLatencyFloor(options: FloorOptions): Promise<LatencyHistogram> {
  const relay = Bun.spawn(runnelCommand(["bench", "floor-relay"]), { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const receiver = Bun.spawn(runnelCommand(["bench", "floor-receiver"]), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  try {
    const relayLines = streamLines(relay.stdout);
    const port = Number(await nextLine(relayLines, "the floor relay"));
    const clockBaseNs = stampClockNs();
    // dueNs is Bun.nanoseconds() here; stamps are on the shared clock, relative to the base.
    const shiftNs = stampClockNs() - clockBaseNs - Bun.nanoseconds();
    const startNs = Bun.nanoseconds() + 50e6; // the connections are up by then
    receiver.stdin.write(`${JSON.stringify({ port, clockBaseNs, sizeBytes: options.sizeBytes, measureFromNs: startNs + options.warmupS * 1e9 + shiftNs })}\n`);
    receiver.stdin.flush();
    const receiverLines = streamLines(receiver.stdout);
    if ((await nextLine(receiverLines, "the floor receiver")) !== "ready") throw new RunnelError("INTERNAL", "the floor receiver did not start");
    const sent = await pace(port, options, startNs, shiftNs);
    receiver.stdin.write(`expect ${sent}\n`);
    receiver.stdin.flush();
    const result = await nextLine(receiverLines, "the floor receiver", DRAIN_TIMEOUT_MS + CHILD_TIMEOUT_MS);
    if (!result.startsWith("result ")) throw new RunnelError("INTERNAL", `the floor receiver answered '${result.slice(0, 80)}'`);
    const histogram = new LatencyHistogram();
    histogram.addSnapshot(JSON.parse(result.slice("result ".length)) as HistogramSnapshot);
    return histogram;
  } finally {
    relay.kill();
    receiver.kill();
  }
}

/** Sends every message when due, one write per turn, as the e2e producer loop does; resolves with the count. */
async function pace(port: number, options: FloorOptions, startNs: number, shiftNs: number): Promise<number> {
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, drain: flushPending } });
  socket.setNoDelay(true);
  socket.write(new Uint8Array([ROLE_PACER]));
  const intervalNs = 1e9 / options.rate;
  const total = Math.round(options.rate * (options.warmupS + options.durationS));
  const dueOf = (index: number): number => startNs + index * intervalNs;
  const stamp = new Float64Array(1);
  const stampBytes = new Uint8Array(stamp.buffer);
  let sent = 0;
  return await new Promise<number>((resolve) => {
    const turn = (): void => {
      if (sent >= total) {
        socket.end();
        resolve(sent);
        return;
      }
      const nowNs = Bun.nanoseconds();
      let count = 0;
      while (sent + count < total && dueOf(sent + count) <= nowNs) count++;
      if (count > 0) {
        const out = new Uint8Array(count * options.sizeBytes);
        for (let index = 0; index < count; index++) {
          stamp[0] = dueOf(sent + index) + shiftNs;
          out.set(stampBytes, index * options.sizeBytes);
        }
        writeAll(socket, out);
        sent += count;
      }
      const waitMs = (dueOf(sent) - Bun.nanoseconds()) / 1e6;
      if (waitMs >= 2) setTimeout(turn, Math.floor(waitMs) - 1);
      else setImmediate(pause);
    };
    const pause = (): void => {
      pauseUntilDue(dueOf(sent));
      setImmediate(turn);
    };
    turn();
  });
}

/** `runnel bench floor-relay`: prints its port, forwards the pacer's bytes to the receiver. */
export async function runFloorRelay(): Promise<number> {
  let receiver: Socket<undefined> | null = null;
  const roles = new WeakMap<Socket<undefined>, number>();
  const server = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        let bytes: Uint8Array = data;
        if (!roles.has(socket)) {
          roles.set(socket, bytes[0]!);
          if (bytes[0] === ROLE_RECEIVER) receiver = socket;
          bytes = bytes.subarray(1);
        }
        if (roles.get(socket) === ROLE_PACER && bytes.length > 0 && receiver !== null) writeAll(receiver, bytes);
      },
      drain: flushPending,
      close(socket) {
        if (roles.get(socket) === ROLE_PACER) receiver?.end();
      },
    },
  });
  process.stdout.write(`${server.port}\n`);
  await new Promise<void>(() => undefined); // runs until killed
  return 0;
}

/** `runnel bench floor-receiver`: records due -> seen for every message after the warm-up. */
export async function runFloorReceiver(): Promise<number> {
  const input = streamLines(Bun.stdin.stream());
  const job = JSON.parse(await nextLine(input, "the floor job")) as { port: number; clockBaseNs: number; sizeBytes: number; measureFromNs: number };
  const histogram = new LatencyHistogram();
  const sizeBytes = job.sizeBytes;
  const carry = new Uint8Array(sizeBytes);
  const stamp = new Float64Array(1);
  const stampBytes = new Uint8Array(stamp.buffer);
  let carried = 0;
  let seen = 0;
  let expected = Number.POSITIVE_INFINITY;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const record = (bytes: Uint8Array, offset: number, seenNs: number): void => {
    for (let index = 0; index < 8; index++) stampBytes[index] = bytes[offset + index]!;
    seen++;
    if (stamp[0]! >= job.measureFromNs) histogram.record(seenNs - stamp[0]!);
  };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: job.port,
    socket: {
      data(_socket, data) {
        const seenNs = stampClockNs() - job.clockBaseNs;
        let offset = 0;
        if (carried > 0) {
          const take = Math.min(sizeBytes - carried, data.length);
          carry.set(data.subarray(0, take), carried);
          carried += take;
          offset = take;
          if (carried < sizeBytes) return;
          record(carry, 0, seenNs);
          carried = 0;
        }
        for (; data.length - offset >= sizeBytes; offset += sizeBytes) record(data, offset, seenNs);
        if (offset < data.length) {
          carry.set(data.subarray(offset), 0);
          carried = data.length - offset;
        }
        if (seen >= expected) finish();
      },
      close: () => finish(),
    },
  });
  socket.setNoDelay(true);
  socket.write(new Uint8Array([ROLE_RECEIVER]));
  process.stdout.write("ready\n");
  const line = await nextLine(input, "the floor's expected count", CHILD_TIMEOUT_MS + 3_600_000);
  expected = Number(line.slice("expect ".length));
  if (seen >= expected) finish();
  await Promise.race([done, Bun.sleep(DRAIN_TIMEOUT_MS)]);
  process.stdout.write(`result ${JSON.stringify(histogram.toSnapshot())}\n`);
  socket.end();
  return 0;
}

/** Bytes a socket did not take yet, written on its next `drain` (in order, before anything newer). */
const pendingWrites = new WeakMap<Socket<undefined>, Uint8Array[]>();

function writeAll(socket: Socket<undefined>, bytes: Uint8Array): void {
  const queue = pendingWrites.get(socket);
  if (queue !== undefined && queue.length > 0) {
    queue.push(bytes.slice());
    return;
  }
  const written = socket.write(bytes);
  if (written < bytes.length) pendingWrites.set(socket, [bytes.slice(Math.max(0, written))]);
}

function flushPending(socket: Socket<undefined>): void {
  const queue = pendingWrites.get(socket);
  while (queue !== undefined && queue.length > 0) {
    const head = queue[0]!;
    const written = socket.write(head);
    if (written < head.length) {
      queue[0] = head.subarray(Math.max(0, written));
      return;
    }
    queue.shift();
  }
}

type LineReader = AsyncGenerator<string, void, undefined>;

async function nextLine(reader: LineReader, what: string, timeoutMs = CHILD_TIMEOUT_MS): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RunnelError("TIMEOUT", `${what} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const next = await Promise.race([reader.next(), timedOut]);
    if (next.done === true) throw new RunnelError("INTERNAL", `${what} ended without answering`);
    return next.value;
  } finally {
    clearTimeout(timer);
  }
}
