/**
 * @module bench/groups
 * Consumer-group figures (issue 10), against a real broker process:
 *
 * 1. Rebalance after a leave: N members (GroupMember, no fetching) share 2N partitions; one
 *    leaves; the time from its leaveGroup answer until every partition is owned again, for
 *    N = 10 and 100. Members learn of a move at their next heartbeat, so the figure is bounded
 *    by the heartbeat interval (`--group-heartbeat-interval-ms`, default 1000).
 * 2. Heartbeat cost: 1000 members heartbeating at the default interval; the broker's CPU time
 *    over a window (from /proc/<pid>/stat), as a share of one core. Two baselines in the same
 *    run: the idle broker, and as many connections each sending one trivial request
 *    (describeGroup) per interval — the per-request floor a heartbeat cannot go below.
 *
 * Run: `bun bench/groups.ts` (optionally `--heartbeat-ms 3000 --window-ms 10000`, `--profile DIR`
 * for the broker's CPU profile); `--smoke` runs
 * tiny sizes (test/bench/groups-smoke.test.ts, so the script never rots).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Admin } from "../src/client/admin.ts";
import { Connection } from "../src/client/connection.ts";
import { GroupMember, type MembershipListener, type TopicPartition } from "../src/client/group-member.ts";

const root = path.resolve(import.meta.dir, "..");

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const smoke = process.argv.includes("--smoke");
const heartbeatMs = argument("--heartbeat-ms", 3_000);
const windowMs = argument("--window-ms", smoke ? 300 : 10_000);
const leaveSizes = smoke ? [3, 5] : [10, 100];
const cpuMembers = smoke ? 20 : 1_000;
/** `--profile DIR`: the broker writes a CPU profile (markdown) into DIR when it stops. */
const profileIndex = process.argv.indexOf("--profile");
const profileFlags = profileIndex >= 0 ? ["--cpu-prof-md", `--cpu-prof-dir=${process.argv[profileIndex + 1]}`] : [];

async function spawnBroker(): Promise<{ address: string; pid: number; stop: () => Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-bench-groups-"));
  const child = Bun.spawn(
    [process.execPath, ...profileFlags, "src/main.ts", "serve", "--port", "0", "--data-dir", dataDir, "--group-heartbeat-interval-ms", String(heartbeatMs)],
    { cwd: root, stdout: "pipe", stderr: "inherit", stdin: "ignore" },
  );
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`broker exited: ${text}`);
    text += decoder.decode(value, { stream: true });
    const match = /"port":(\d+)/.exec(text);
    if (match !== null) {
      void (async () => {
        while (!(await reader.read()).done) {
          // drained
        }
      })();
      return {
        address: `127.0.0.1:${match[1]}`,
        pid: child.pid,
        stop: async () => {
          child.kill("SIGTERM");
          await child.exited;
          fs.rmSync(dataDir, { recursive: true, force: true });
        },
      };
    }
  }
}

class Tracker implements MembershipListener {
  readonly owned = new Set<string>();
  member: GroupMember | null = null;
  assigned(partitions: TopicPartition[]): void {
    for (const { partition } of partitions) this.owned.add(String(partition));
  }
  revoke(partitions: TopicPartition[]): void {
    for (const { partition } of partitions) this.owned.delete(String(partition));
    this.member?.released(partitions); // nothing to commit: give them up at once
  }
  lost(partitions: TopicPartition[]): void {
    for (const { partition } of partitions) this.owned.delete(String(partition));
  }
  failed(error: Error): void {
    throw error;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("timed out");
    await Bun.sleep(1);
  }
}

/** [user, system] CPU ticks of a process so far. */
function cpuTicks(pid: number): [number, number] {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return [Number(fields[11]), Number(fields[12])]; // utime, stime
}

async function joinMembers(address: string, group: string, topic: string, count: number): Promise<Tracker[]> {
  const trackers: Tracker[] = [];
  for (let index = 0; index < count; index++) {
    const tracker = new Tracker();
    tracker.member = new GroupMember({ broker: address, groupId: group, topics: [topic], sessionTimeoutMs: 30_000 }, tracker);
    tracker.member.start();
    trackers.push(tracker);
  }
  return trackers;
}

const ownedCount = (trackers: Tracker[]): number => trackers.reduce((sum, tracker) => sum + tracker.owned.size, 0);

async function rebalanceAfterLeave(address: string, members: number): Promise<number> {
  const topic = `leave-${members}`;
  const partitions = 2 * members;
  const admin = new Admin({ broker: address });
  await admin.createTopic(topic, { partitions });
  await admin.close();
  const trackers = await joinMembers(address, `g-${topic}`, topic, members);
  await waitUntil(() => ownedCount(trackers) === partitions && trackers.every((tracker) => tracker.owned.size === 2), 60_000);
  const leaver = trackers.pop()!;
  await leaver.member?.close();
  const leftMs = performance.now();
  await waitUntil(() => ownedCount(trackers) === partitions, 60_000);
  const elapsedMs = performance.now() - leftMs;
  await Promise.all(trackers.map((tracker) => tracker.member?.close()));
  return elapsedMs;
}

interface CpuShare {
  /** Share of one core, user + system. */
  total: number;
  user: number;
  system: number;
}

/** The broker's CPU over the window as a share of one core. */
async function cpuShare(pid: number): Promise<CpuShare> {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const [startUser, startSystem] = cpuTicks(pid);
  const startMs = performance.now();
  await Bun.sleep(windowMs);
  const [endUser, endSystem] = cpuTicks(pid);
  const seconds = (performance.now() - startMs) / 1_000;
  const user = (endUser - startUser) / ticksPerSecond / seconds;
  const system = (endSystem - startSystem) / ticksPerSecond / seconds;
  return { total: user + system, user, system };
}

const percent = (share: CpuShare): string => `${(share.total * 100).toFixed(2)}% of one core (user ${(share.user * 100).toFixed(2)}%, system ${(share.system * 100).toFixed(2)}%)`;

async function heartbeatCpu(address: string, pid: number, members: number): Promise<CpuShare> {
  const admin = new Admin({ broker: address });
  const partitions = Math.min(100, members);
  await admin.createTopic("cpu", { partitions });
  await admin.close();
  const trackers = await joinMembers(address, "g-cpu", "cpu", members);
  await waitUntil(() => ownedCount(trackers) === partitions, 120_000);
  if (!smoke) await Bun.sleep(2 * heartbeatMs); // past the joins' burst
  const share = await cpuShare(pid);
  await Promise.all(trackers.map((tracker) => tracker.member?.close()));
  return share;
}

/**
 * The floor under the heartbeat figure: as many connections, each sending one cheap request
 * (`describeGroup` of a group that does not exist) per heartbeat interval, spread evenly. What a
 * heartbeat costs beyond this is the group work; this part is the per-request transport cost.
 */
async function requestFloorCpu(address: string, pid: number, connections: number): Promise<CpuShare> {
  const open = await Promise.all(Array.from({ length: connections }, async () => {
    const connection = new Connection({ broker: address });
    await connection.connect();
    return connection;
  }));
  let running = true;
  const loops = open.map(async (connection, index) => {
    await Bun.sleep((index * heartbeatMs) / connections);
    while (running) {
      await connection.request("describeGroup", { group: "nobody" });
      await Bun.sleep(heartbeatMs);
    }
  });
  if (!smoke) await Bun.sleep(heartbeatMs); // every connection has started sending
  const share = await cpuShare(pid);
  running = false;
  await Promise.all(loops);
  await Promise.all(open.map((connection) => connection.close()));
  return share;
}

const broker = await spawnBroker();
try {
  for (const members of leaveSizes) {
    const elapsedMs = await rebalanceAfterLeave(broker.address, members);
    console.log(`leave -> all ${2 * members} partitions owned again, ${members} members, heartbeat ${heartbeatMs} ms: ${elapsedMs.toFixed(0)} ms`);
  }
  const idle = await cpuShare(broker.pid);
  console.log(`baseline, no member: broker CPU ${percent(idle)} over ${windowMs} ms`);
  const floor = await requestFloorCpu(broker.address, broker.pid, cpuMembers);
  console.log(`baseline, ${cpuMembers} connections each sending one describeGroup every ${heartbeatMs} ms: broker CPU ${percent(floor)} over ${windowMs} ms`);
  const share = await heartbeatCpu(broker.address, broker.pid, cpuMembers);
  console.log(`${cpuMembers} members heartbeating every ${heartbeatMs} ms: broker CPU ${percent(share)} over ${windowMs} ms`);
} finally {
  await broker.stop();
}
