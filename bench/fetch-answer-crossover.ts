/**
 * @module bench/fetch-answer-crossover
 * Where a gathered fetch answer (head + records pread into one buffer, one socket.write) stops
 * paying against head write + sendfile (zero copy, two syscalls, the peer woken twice): the
 * crossover behind GATHER_BYTES_MAX_DEFAULT in server/outbound.ts.
 *
 * One request-answer ping-pong over loopback TCP between this process (an OutboundQueue answering
 * each 1-byte request with a 64-byte head and a file range of the size under test) and a client
 * child process that reads each whole answer before asking again. Reported per answer: CPU
 * microseconds of the sender and of the receiver (process.cpuUsage, a figure that holds on a
 * busy machine far better than wall time), the receiver's reads (data events) per answer, and
 * the wall-clock round trip. Both modes alternate size by size and round by round; medians of
 * the rounds with min-max spread.
 *
 *   bun bench/fetch-answer-crossover.ts [--answers 4000] [--rounds 3] [--sizes 1024,4096,16384,65536,262144]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Socket } from "bun";
import { OutboundQueue } from "../src/server/outbound.ts";
import { createStats } from "../src/server/stats.ts";

const HEAD_BYTES = 64;

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : (process.argv[index + 1] ?? fallback);
}

type Sample = { senderUs: number; receiverUs: number; readsPerAnswer: number; roundTripUs: number };

/** The client side (child process): ask, read the whole answer, ask again; print its own cost. */
async function client(port: number, answers: number, answerBytes: number): Promise<void> {
  let received = 0;
  let reads = 0;
  let done = 0;
  const request = new Uint8Array(1);
  const finished = Promise.withResolvers<void>();
  let startCpu = process.cpuUsage();
  let startNs = Bun.nanoseconds();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(socket, chunk) {
        reads++;
        received += chunk.length;
        if (received < answerBytes) return;
        received -= answerBytes;
        done++;
        if (done === 200) {
          // Warm-up over: count from here.
          startCpu = process.cpuUsage();
          startNs = Bun.nanoseconds();
          reads = 0;
        }
        if (done === answers + 200) finished.resolve();
        else socket.write(request);
      },
    },
  });
  socket.write(request);
  await finished.promise;
  const cpu = process.cpuUsage(startCpu);
  const wallNs = Bun.nanoseconds() - startNs;
  socket.end();
  process.stdout.write(JSON.stringify({ cpuUs: cpu.user + cpu.system, reads, wallNs }) + "\n");
}

/** One run: a listener answering with the given gather bound, a client child, the costs per answer. */
async function run(file: string, answerRecordsBytes: number, answers: number, gatherBytesMax: number): Promise<Sample> {
  const fd = fs.openSync(file, "r");
  const head = new Uint8Array(HEAD_BYTES).fill(1);
  let queue: OutboundQueue | null = null;
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        queue = new OutboundQueue(socket as Socket<unknown>, createStats(), true, null, gatherBytesMax);
      },
      data() {
        queue?.pushReply(head, [{ fd, position: 0, length: answerRecordsBytes, firstOffset: 0, release: () => {} }]);
        queue?.flush();
      },
      drain() {
        queue?.flush();
      },
    },
  });
  try {
    const startCpu = process.cpuUsage();
    const child = Bun.spawn([process.execPath, import.meta.path, "--client", String(listener.port), String(answers), String(HEAD_BYTES + answerRecordsBytes)], { stdout: "pipe", stderr: "inherit" });
    const text = await new Response(child.stdout).text();
    await child.exited;
    const cpu = process.cpuUsage(startCpu);
    const result = JSON.parse(text) as { cpuUs: number; reads: number; wallNs: number };
    // The sender's CPU includes its 200 warm-up answers: charge them too (a small bias, same for both modes).
    return { senderUs: (cpu.user + cpu.system) / (answers + 200), receiverUs: result.cpuUs / answers, readsPerAnswer: result.reads / answers, roundTripUs: result.wallNs / 1000 / answers };
  } finally {
    listener.stop(true);
    fs.closeSync(fd);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function cell(values: number[], digits: number): string {
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
}

async function main(): Promise<void> {
  const answers = Number(flag("answers", "4000"));
  const rounds = Number(flag("rounds", "3"));
  const sizes = flag("sizes", "1024,4096,16384,65536,262144").split(",").map(Number);
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-crossover-"));
  const file = path.join(directory, "records");
  fs.writeFileSync(file, new Uint8Array(Math.max(...sizes)).fill(7));
  const modes: Array<[string, number]> = [
    ["head + sendfile", 0],
    ["gathered", 1 << 30],
  ];
  const samples = new Map<string, Sample[]>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const size of sizes) {
        for (const [mode, gatherBytesMax] of round % 2 === 0 ? modes : [...modes].reverse()) {
          const key = `${size}\t${mode}`;
          const list = samples.get(key) ?? [];
          list.push(await run(file, size, answers, gatherBytesMax));
          samples.set(key, list);
        }
      }
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
  process.stdout.write(`per answer, ${answers} answers a run, medians of ${rounds} (min-max); load average ${os.loadavg().map((load) => load.toFixed(1)).join(" ")}\n`);
  process.stdout.write("| records bytes | mode | sender CPU us | receiver CPU us | receiver reads | round trip us |\n|---|---|---|---|---|---|\n");
  for (const [key, list] of samples) {
    const [size, mode] = key.split("\t");
    process.stdout.write(`| ${size} | ${mode} | ${cell(list.map((s) => s.senderUs), 1)} | ${cell(list.map((s) => s.receiverUs), 1)} | ${cell(list.map((s) => s.readsPerAnswer), 2)} | ${cell(list.map((s) => s.roundTripUs), 0)} |\n`);
  }
}

if (process.argv[2] === "--client") await client(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
else if (import.meta.main) await main();
