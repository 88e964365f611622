/**
 * @module bench/fetch
 * Fetch over loopback: the same file bytes sent to a Bun socket with sendfile(2) (the broker's
 * zero-copy path) against pread into a buffer + socket.write (the copy path). Server and
 * client share this process, so the figures compare the two send paths, not the machine's
 * ceiling (`runnel bench ceiling` runs the server as a separate process for that).
 *
 *   bun bench/fetch.bench.ts           full size (mitata; 64 MiB per transfer)
 *   fetchSmoke() from a test           1 MiB, checks every byte arrives, both ways
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { makeCachedFile, receiveAll, type SendMode, serveFile } from "../src/bench/ceiling.ts";

export interface Transfer {
  mode: SendMode;
  bytes: number;
}

/** Serves `file` in this process with `mode` and receives it once per call of `step`. */
export function loopbackTransfer(file: string, mode: SendMode): { step(): Promise<Transfer>; stop(): void } {
  const server = serveFile(file, mode);
  return {
    async step() {
      const { bytes } = await receiveAll(server.port);
      return { mode, bytes };
    },
    stop: () => server.stop(),
  };
}

export async function fetchSmoke(): Promise<{ fileBytes: number; sendfile: number; copy: number }> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-fetch-bench-"));
  try {
    const fileBytes = 1 << 20;
    const file = makeCachedFile(directory, fileBytes);
    const results: Record<SendMode, number> = { sendfile: 0, copy: 0 };
    for (const mode of ["sendfile", "copy"] as const) {
      const transfer = loopbackTransfer(file, mode);
      try {
        results[mode] = (await transfer.step()).bytes;
      } finally {
        transfer.stop();
      }
    }
    return { fileBytes, ...results };
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-fetch-bench-"));
  const file = makeCachedFile(directory, 64 << 20);
  const sendfile = loopbackTransfer(file, "sendfile");
  const copy = loopbackTransfer(file, "copy");
  summary(() => {
    group("fetch 64 MiB over loopback", () => {
      bench("sendfile (zero copy)", async () => do_not_optimize(await sendfile.step()));
      bench("baseline: pread + socket.write", async () => do_not_optimize(await copy.step()));
    });
  });
  await run();
  sendfile.stop();
  copy.stop();
  fs.rmSync(directory, { recursive: true, force: true });
}
