/**
 * @module bench/restart-recovery
 * Target R1: a broker killed with SIGKILL over a large log is serving again within 1 s.
 * Fills a data dir through `runnel bench produce` (GiB given as argv[2], default 1), kills the
 * broker with SIGKILL mid-stream, restarts it on the same data dir and times spawn -> the start
 * line -> the first answered metadata request and a fetch at the log's end.
 *
 *   bun bench/restart-recovery.ts 5      5 GiB of log
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Admin } from "../src/client/admin.ts";
import { runnelCommand } from "../src/bench/embedded-broker.ts";

async function start(dataDir: string): Promise<{ child: ReturnType<typeof Bun.spawn>; port: number; startLineMs: number; spawnedNs: number; line: string }> {
  const spawnedNs = Bun.nanoseconds();
  const child = Bun.spawn(runnelCommand(["serve", "--port", "0", "--data-dir", dataDir]), { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`broker exited: ${text}`);
    text += new TextDecoder().decode(value);
    const line = text.split("\n").find((candidate) => candidate.includes("runnel listening"));
    if (line !== undefined) {
      void (async () => { while (!(await reader.read()).done); })();
      return { child, port: (JSON.parse(line) as { port: number }).port, startLineMs: (Bun.nanoseconds() - spawnedNs) / 1e6, spawnedNs, line };
    }
  }
}

if (import.meta.main) {
  const gib = Number(process.argv[2] ?? 1);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-r1-"));
  try {
    const first = await start(dataDir);
    const messages = Math.round((gib * 2 ** 30) / 1024);
    const load = Bun.spawn(runnelCommand(["bench", "produce", "--broker", `127.0.0.1:${first.port}`, "--topic", "r1", "--partitions", "4", "--size", "1024", "--messages", String(messages), "--batch-bytes", "1048576", "--no-ceiling"]), { stdout: "inherit", stderr: "inherit" });
    await load.exited;
    // Keep writing while the kill lands: a torn tail for recovery to find.
    const tail = Bun.spawn(runnelCommand(["bench", "produce", "--broker", `127.0.0.1:${first.port}`, "--topic", "r1", "--size", "1024", "--duration", "30", "--no-ceiling"]), { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(1_000);
    first.child.kill("SIGKILL");
    await first.child.exited;
    tail.kill("SIGKILL");
    await tail.exited;
    const logBytes = fs.readdirSync(dataDir, { recursive: true }).reduce((sum, name) => {
      const file = path.join(dataDir, String(name));
      return sum + (fs.statSync(file).isFile() ? fs.statSync(file).size : 0);
    }, 0);
    const second = await start(dataDir);
    const admin = new Admin({ broker: `127.0.0.1:${second.port}`, clientId: "r1" });
    const described = await admin.describeTopic("r1");
    const servingMs = (Bun.nanoseconds() - second.spawnedNs) / 1e6;
    await admin.connection.close();
    const recovery = (JSON.parse(second.line) as { recovery?: unknown }).recovery;
    console.log(JSON.stringify({ logBytes, startLineMs: Math.round(second.startLineMs), servingMs: Math.round(servingMs), recovery, nextOffsets: described.partitions.map((partition) => partition.nextOffset) }));
    second.child.kill("SIGTERM");
    await second.child.exited;
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
