/**
 * Wake-ups per message in the e2e run (issue 17): how many event-loop turns, socket writes and
 * reads, futex calls and context switches each of the three processes (producer = the bench
 * itself, broker, consumer) makes per message, counted by the kernel, not timed — counts hold on
 * a busy machine where latencies do not.
 *
 * How: starts `runnel bench e2e --embedded --rate R --duration D --linger-ms 0`, waits a third
 * of the run (connections open, JIT warm), then attaches `perf stat -p <pid>` to each process for
 * W seconds, counting syscall tracepoints (an epoll wait is one event-loop turn) and context
 * switches, and divides by the messages due in that window (R x W). Also the CPU each process
 * used in the window (/proc/PID/stat utime + stime, all threads) per GB of messages due. Needs `perf` and permission
 * to trace (root, or kernel.perf_event_paranoid <= 1); says so and exits 2 otherwise.
 *
 *   bun bench/e2e-wakeups.ts [rate=100000] [durationS=9] [sizeBytes=100]
 *   RUNNEL_E2E_SOURCE=/path/to/other/checkout bun bench/e2e-wakeups.ts   (measure that checkout's code)
 */
import * as fs from "node:fs";
import * as path from "node:path";

const EVENTS = [
  "syscalls:sys_enter_epoll_pwait",
  "syscalls:sys_enter_epoll_pwait2",
  "syscalls:sys_enter_epoll_wait",
  "syscalls:sys_enter_write",
  "syscalls:sys_enter_writev",
  "syscalls:sys_enter_sendto",
  "syscalls:sys_enter_sendmsg",
  "syscalls:sys_enter_read",
  "syscalls:sys_enter_recvfrom",
  "syscalls:sys_enter_recvmsg",
  "syscalls:sys_enter_futex",
  "syscalls:sys_enter_sendfile64",
  "syscalls:sys_enter_pwrite64",
  "syscalls:sys_enter_pread64",
  "context-switches",
];

/** Columns of the report: a name and the events whose counts it adds up. */
const COLUMNS: ReadonlyArray<[string, readonly string[]]> = [
  ["loop turns (epoll waits)", ["epoll_pwait", "epoll_pwait2", "epoll_wait"]],
  ["socket writes", ["sys_enter_write", "writev", "sendto", "sendmsg", "sendfile64"]],
  ["socket reads", ["sys_enter_read", "recvfrom", "recvmsg"]],
  ["pwrite", ["pwrite64"]],
  ["pread", ["pread64"]],
  ["futex", ["futex"]],
  ["context switches", ["context-switches"]],
];

type Role = "producer" | "broker" | "consumer";

/** The last column: CPU seconds per GB of messages (not per message like the others). */
const CPU_COLUMN = "CPU s per GB";

function childrenOf(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8");
    return text.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** Counts of each event for `pid` over `seconds` (perf stat's CSV on stderr). */
async function countEvents(pid: number, seconds: number): Promise<Map<string, number>> {
  const perf = Bun.spawn(["perf", "stat", "-x", ",", "-e", EVENTS.join(","), "-p", String(pid), "--", "sleep", String(seconds)], { stdout: "ignore", stderr: "pipe" });
  const text = await new Response(perf.stderr).text();
  await perf.exited;
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [value, , event] = line.split(",");
    if (event !== undefined && value !== undefined && /^\d+$/.test(value)) counts.set(event, Number(value));
  }
  if (counts.size === 0) throw new Error(`perf stat gave no counts (is perf allowed to trace? ${text.trim().slice(0, 300)})`);
  return counts;
}

/** CPU seconds (user + system, all threads) `pid` has used so far. */
function cpuSecondsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** USER_HZ: /proc reports CPU time in these ticks (100 on Linux's x86-64 and arm64 builds). */
const CLOCK_TICKS_PER_S = 100;

function column(counts: Map<string, number>, parts: readonly string[]): number {
  let sum = 0;
  for (const [event, value] of counts) if (parts.some((part) => event.endsWith(part))) sum += value;
  return sum;
}

export async function measureWakeups(rate: number, durationS: number, sizeBytes: number, source: string): Promise<{ perMessage: Record<Role, Record<string, number>>; messages: number }> {
  const windowS = Math.max(1, Math.floor(durationS / 2));
  const main = path.join(source, "src/main.ts");
  const bench = Bun.spawn([process.execPath, main, "bench", "e2e", "--embedded", "--rate", String(rate), "--duration", String(durationS), "--size", String(sizeBytes), "--linger-ms", "0", "--no-ceiling"], {
    stdout: "pipe",
    stderr: "pipe",
    cwd: source,
  });
  try {
    await Bun.sleep((durationS * 1000) / 3);
    const roles = new Map<Role, number>([["producer", bench.pid]]);
    // On a busy machine the consumer child may start late: look again for a while.
    for (let attempt = 0; attempt < 50 && roles.size < 3; attempt++) {
      for (const child of childrenOf(bench.pid)) {
        const command = commandOf(child);
        if (command.includes(" serve ")) roles.set("broker", child);
        else if (command.includes("e2e-consumer")) roles.set("consumer", child);
      }
      if (roles.size < 3) await Bun.sleep(100);
    }
    if (roles.size !== 3) throw new Error(`found ${[...roles.keys()].join(", ")} only; the bench's children: ${childrenOf(bench.pid).map(commandOf).join(" | ")}`);
    const entries = [...roles];
    const cpuBefore = entries.map(([, pid]) => cpuSecondsOf(pid));
    const counted = await Promise.all(entries.map(([, pid]) => countEvents(pid, windowS)));
    const cpuAfter = entries.map(([, pid]) => cpuSecondsOf(pid));
    const messages = rate * windowS;
    const perMessage = {} as Record<Role, Record<string, number>>;
    entries.forEach(([role], index) => {
      const row: Record<string, number> = {};
      for (const [name, parts] of COLUMNS) row[name] = column(counted[index]!, parts) / messages;
      row[CPU_COLUMN] = (cpuAfter[index]! - cpuBefore[index]!) / ((messages * sizeBytes) / 1e9);
      perMessage[role] = row;
    });
    return { perMessage, messages };
  } finally {
    await bench.exited;
  }
}

if (import.meta.main) {
  const rate = Number(process.argv[2] ?? 100_000);
  const durationS = Number(process.argv[3] ?? 9);
  const sizeBytes = Number(process.argv[4] ?? 100);
  const source = process.env.RUNNEL_E2E_SOURCE ?? path.resolve(import.meta.dir, "..");
  if (Bun.which("perf") === null) {
    process.stderr.write("e2e-wakeups: needs perf (linux-perf) and permission to trace\n");
    process.exit(2);
  }
  const { perMessage, messages } = await measureWakeups(rate, durationS, sizeBytes, source);
  const names = [...COLUMNS.map(([name]) => name), CPU_COLUMN];
  process.stdout.write(`per message, ${messages} messages due in the window, ${rate} msgs/s, ${sizeBytes} B, linger 0 (${source})\n`);
  process.stdout.write(`| process | ${names.join(" | ")} |\n|---|${names.map(() => "---").join("|")}|\n`);
  for (const [role, row] of Object.entries(perMessage)) process.stdout.write(`| ${role} | ${names.map((name) => (row[name] ?? 0).toFixed(3)).join(" | ")} |\n`);
  process.stdout.write(perRequestLine(perMessage));
}

/**
 * The same counts per request: per-message counts follow how many messages share a request,
 * which the load decides, while these follow the code. A fetch answer is one consumer socket
 * write (its fetch request); a produce request is one broker pwrite (one partition, durability
 * written, as the e2e runs).
 */
function perRequestLine(perMessage: Record<Role, Record<string, number>>): string {
  const consumer = perMessage.consumer;
  const broker = perMessage.broker;
  const fetches = consumer["socket writes"] ?? 0;
  const produces = broker.pwrite ?? 0;
  const ratio = (count: number | undefined, per: number): string => (per > 0 ? ((count ?? 0) / per).toFixed(2) : "-");
  return (
    `per request: consumer reads per fetch answer ${ratio(consumer["socket reads"], fetches)}, ` +
    `consumer context switches per fetch answer ${ratio(consumer["context switches"], fetches)}, ` +
    `broker socket writes per request (produce + fetch) ${ratio(broker["socket writes"], produces + fetches)}, ` +
    `broker pread per fetch answer ${ratio(broker.pread, fetches)}\n`
  );
}
