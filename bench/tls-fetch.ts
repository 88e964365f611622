/**
 * @module bench/tls-fetch
 * What TLS costs a consumer: raw fetch throughput (bench/raw-fetch.ts: batches counted from their
 * headers, never decoded) from one broker process over the same data, in one run, three ways:
 *
 *   plaintext + sendfile   the default zero-copy path
 *   plaintext + copy       zeroCopy=false: pread into a buffer + socket.write (no TLS)
 *   TLS + copy             tlsCert/tlsKey: the copy path, and Bun's user-space TLS encrypts it
 *
 * The broker is a separate process (`runnel serve`), restarted on the same data directory for
 * each mode; modes alternate over `--rounds` so drift on a shared machine hits all of them.
 *
 *   bun bench/tls-fetch.ts [--mib 512] [--rounds 2]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Producer } from "../src/client/producer.ts";
import { runnelCommand } from "../src/bench/embedded-broker.ts";
import { rawFetchLoop } from "../src/bench/raw-fetch.ts";
import { ConsumerGroup, Meter, type WorkloadOptions } from "../src/bench/workloads.ts";
import { makeTestPki } from "../test/support/tls-certs.ts";

const MiB = 1 << 20;
const MESSAGE_BYTES = 16 * 1024;

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

interface Mode {
  name: string;
  args: string[];
  tls: boolean;
}

async function serve(dataDir: string, args: string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const child = Bun.spawn(runnelCommand(["serve", "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--kafka-port", "-1", "--data-dir", dataDir, "--log-format", "json", ...args]), { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`broker exited before listening: ${text}`);
    text += new TextDecoder().decode(value);
    const line = text.split("\n").find((each) => each.includes("runnel listening"));
    if (line !== undefined) {
      const port = (JSON.parse(line) as { port: number }).port;
      void (async () => {
        while (!(await reader.read()).done);
      })();
      return {
        port,
        async stop() {
          child.kill("SIGTERM");
          await child.exited;
        },
      };
    }
  }
}

function options(port: number, messages: number, tls: WorkloadOptions["tls"]): WorkloadOptions {
  return {
    broker: `127.0.0.1:${port}`,
    topic: "tls-bench",
    messages,
    durationS: null,
    sizeBytes: MESSAGE_BYTES,
    partitions: 1,
    producers: 1,
    consumers: 1,
    batchBytes: 1 * MiB,
    lingerMs: 5,
    maxInFlight: 4,
    durability: "written",
    rate: null,
    seed: 1,
    raw: true,
    fetchBytes: 1 * MiB,
    ...(tls === undefined ? {} : { tls }),
  };
}

async function main(): Promise<void> {
  const totalMiB = flag("mib", 512);
  const rounds = flag("rounds", 2);
  const messages = Math.floor((totalMiB * MiB) / MESSAGE_BYTES);
  const pki = makeTestPki();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-tls-bench-"));
  try {
    const writer = await serve(dataDir, []);
    const producer = new Producer({ broker: `127.0.0.1:${writer.port}`, lingerMs: 5, batchBytes: 1 * MiB });
    const value = new Uint8Array(MESSAGE_BYTES).map((_, index) => (index * 31) & 0xff);
    const sends: Array<Promise<unknown>> = [];
    for (let index = 0; index < messages; index++) {
      sends.push(producer.send("tls-bench", { value }));
      if (sends.length >= 256) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    await producer.close();
    await writer.stop();

    const tlsArgs = ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey];
    const modes: Mode[] = [
      { name: "plaintext + sendfile", args: [], tls: false },
      { name: "plaintext + copy", args: ["--zero-copy", "false"], tls: false },
      { name: "TLS + copy", args: tlsArgs, tls: true },
    ];
    const results = new Map<string, number[]>(modes.map((mode) => [mode.name, []]));
    const ca = fs.readFileSync(pki.caCert, "utf8");
    for (let round = 0; round < rounds; round++) {
      for (const mode of modes) {
        const broker = await serve(dataDir, mode.args);
        const meter = new Meter();
        const group = new ConsumerGroup(() => meter.completed >= messages);
        meter.start();
        await rawFetchLoop(options(broker.port, messages, mode.tls ? { ca } : undefined), [0], group, meter);
        const seconds = meter.stop();
        await broker.stop();
        if (meter.completed < messages) throw new Error(`${mode.name}: read ${meter.completed} of ${messages} messages`);
        results.get(mode.name)!.push(meter.bytes / seconds);
      }
    }
    console.log(`raw fetch, 1 consumer, 1 MiB fetches, ${totalMiB} MiB of ${MESSAGE_BYTES / 1024} KiB messages, ${rounds} round(s), ${os.cpus().length} CPUs, bun ${Bun.version}`);
    for (const [name, rates] of results) console.log(`${name.padEnd(22)} ${rates.map((rate) => `${(rate / 1e9).toFixed(2)} GB/s`).join("  ")}  best ${(Math.max(...rates) / 1e9).toFixed(2)} GB/s`);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
    pki.cleanup();
  }
}

await main();
