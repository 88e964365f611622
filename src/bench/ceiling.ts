/**
 * @module bench/ceiling
 * The limits Runnel's figures are compared against, measured on this machine in the same run:
 *
 * - loopback TCP: a minimal server (a child process, like the broker) sends a file in the page
 *   cache to a Bun socket with sendfile(2) (or, for comparison, pread + socket.write); the
 *   client only counts bytes. Nothing a broker can do sends faster over loopback.
 * - disk: raw pwrite of the same bytes in `chunkBytes` pieces, sequentially, into one file
 *   (the page cache); for `synced`, the same with one fdatasync per MiB written.
 *
 * The server (`serveFile`) is what `runnel bench sendfile-server` runs; it uses the same
 * EAGAIN -> one-byte-probe trick as server/outbound.ts so Bun arms `drain`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Socket } from "bun";
import { RunnelError } from "../errors.ts";
import { libc, SENDFILE_WOULD_BLOCK } from "../native/libc.ts";
import { socketFd } from "../server/socket-fd.ts";
import { runnelCommand } from "./embedded-broker.ts";

export type SendMode = "sendfile" | "copy";

const COPY_CHUNK_BYTES = 256 * 1024;

interface SendState {
  fd: number;
  sizeBytes: number;
  sent: number;
  buffer: Uint8Array;
  bufferStart: number;
  bufferEnd: number;
}

/** Serves `file` whole to every connection, then closes it. Resolves with the port. */
export function serveFile(file: string, mode: SendMode, port = 0): { port: number; stop(): void } {
  const fd = fs.openSync(file, "r");
  const sizeBytes = fs.fstatSync(fd).size;
  const probe = new Uint8Array(1);
  const pump = (socket: Socket<SendState>): void => {
    const state = socket.data;
    while (state.sent < state.sizeBytes) {
      const written = mode === "sendfile" && libc.sendfile !== null ? sendChunk(socket, state, probe) : copyChunk(socket, state);
      if (written <= 0) return; // blocked (drain will call again) or closed
    }
    socket.end();
  };
  const server = Bun.listen<SendState>({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(socket) {
        socket.data = { fd, sizeBytes, sent: 0, buffer: new Uint8Array(COPY_CHUNK_BYTES), bufferStart: 0, bufferEnd: 0 };
        pump(socket);
      },
      drain: pump,
      data() {},
    },
  });
  return {
    port: server.port,
    stop() {
      server.stop(true);
      fs.closeSync(fd);
    },
  };
}

/** One sendfile call; on EAGAIN, one byte through socket.write so Bun arms drain. */
function sendChunk(socket: Socket<SendState>, state: SendState, probe: Uint8Array): number {
  const fd = socketFd(socket);
  if (fd === null || libc.sendfile === null) return copyChunk(socket, state);
  const sent = libc.sendfile(fd, state.fd, state.sent, Math.min(state.sizeBytes - state.sent, 1 << 30));
  if (sent !== SENDFILE_WOULD_BLOCK) {
    state.sent += sent;
    return sent === 0 ? -1 : sent;
  }
  libc.pread(state.fd, probe, state.sent);
  const written = socket.write(probe, 0, 1);
  if (written > 0) state.sent += 1;
  return written;
}

/** pread into a user-space buffer, then socket.write: the copy path sendfile is compared to. */
function copyChunk(socket: Socket<SendState>, state: SendState): number {
  if (state.bufferStart >= state.bufferEnd) {
    const read = libc.pread(state.fd, state.buffer.subarray(0, Math.min(COPY_CHUNK_BYTES, state.sizeBytes - state.sent)), state.sent);
    if (read <= 0) return -1;
    state.bufferStart = 0;
    state.bufferEnd = read;
  }
  const written = socket.write(state.buffer, state.bufferStart, state.bufferEnd - state.bufferStart);
  if (written <= 0) return written;
  state.bufferStart += written;
  state.sent += written;
  return written;
}

/** Connects, counts bytes until the server closes; returns bytes and seconds. */
export function receiveAll(port: number): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const startNs = Bun.nanoseconds();
    let bytes = 0;
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(_socket, chunk) {
          bytes += chunk.length;
        },
        close() {
          resolve({ bytes, seconds: (Bun.nanoseconds() - startNs) / 1e9 });
        },
        error(_socket, error) {
          reject(error);
        },
        connectError(_socket, error) {
          reject(error);
        },
      },
    }).catch(reject);
  });
}

export interface Ceiling {
  /** Loopback TCP, sendfile from the page cache, bytes/s. */
  tcpSendfileBytesPerSecond: number;
  /** Loopback TCP, pread + write, bytes/s. */
  tcpCopyBytesPerSecond: number;
  /** Sequential pwrite of chunkBytes pieces into the page cache, bytes/s. */
  pwriteBytesPerSecond: number;
  /** pwrite + fdatasync every MiB, bytes/s. */
  pwriteSyncedBytesPerSecond: number;
  fileBytes: number;
  chunkBytes: number;
}

/** A temp file of `sizeBytes` (seeded bytes), read once so it sits in the page cache. */
export function makeCachedFile(directory: string, sizeBytes: number): string {
  const file = path.join(directory, "ceiling.data");
  const chunk = new Uint8Array(1 << 20).map((_, index) => (index * 131) & 0xff);
  const fd = fs.openSync(file, "w");
  try {
    for (let written = 0; written < sizeBytes; written += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, sizeBytes - written), written);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Spawns `runnel bench sendfile-server` and reads its port line. */
export async function startFileServer(file: string, mode: SendMode): Promise<{ port: number; stop(): Promise<void> }> {
  const child = Bun.spawn(runnelCommand(["bench", "sendfile-server", "--file", file, "--mode", mode]), { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new RunnelError("INTERNAL", "the ceiling server exited before listening");
    text += new TextDecoder().decode(value);
  }
  const port = (JSON.parse(text.slice(0, text.indexOf("\n"))) as { port: number }).port;
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

/** Best of `rounds` full-file transfers from a child server: bytes/s. */
export async function measureLoopback(file: string, mode: SendMode, rounds: number): Promise<number> {
  const server = await startFileServer(file, mode);
  try {
    let best = 0;
    for (let round = 0; round < rounds; round++) {
      const { bytes, seconds } = await receiveAll(server.port);
      best = Math.max(best, bytes / seconds);
    }
    return best;
  } finally {
    await server.stop();
  }
}

/** Sequential pwrite of `totalBytes` in `chunkBytes` pieces; fdatasync every syncEveryBytes when given. */
export function measurePwrite(directory: string, totalBytes: number, chunkBytes: number, syncEveryBytes: number | null): number {
  const file = path.join(directory, `pwrite-${syncEveryBytes === null ? "plain" : "synced"}.data`);
  const chunk = new Uint8Array(chunkBytes).map((_, index) => (index * 7) & 0xff);
  const fd = fs.openSync(file, "w");
  try {
    const startNs = Bun.nanoseconds();
    let sinceSync = 0;
    for (let position = 0; position < totalBytes; position += chunkBytes) {
      libc.pwrite(fd, chunk, position);
      sinceSync += chunkBytes;
      if (syncEveryBytes !== null && sinceSync >= syncEveryBytes) {
        libc.fdatasync(fd);
        sinceSync = 0;
      }
    }
    if (syncEveryBytes !== null) libc.fdatasync(fd);
    return totalBytes / ((Bun.nanoseconds() - startNs) / 1e9);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

export async function measureCeiling(options: { fileBytes: number; chunkBytes: number; rounds?: number }): Promise<Ceiling> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-ceiling-"));
  try {
    const file = makeCachedFile(directory, options.fileBytes);
    const rounds = options.rounds ?? 3;
    const tcpSendfileBytesPerSecond = await measureLoopback(file, "sendfile", rounds);
    const tcpCopyBytesPerSecond = await measureLoopback(file, "copy", rounds);
    fs.rmSync(file, { force: true });
    const pwriteBytesPerSecond = measurePwrite(directory, options.fileBytes, options.chunkBytes, null);
    const pwriteSyncedBytesPerSecond = measurePwrite(directory, Math.min(options.fileBytes, 64 << 20), options.chunkBytes, Math.max(options.chunkBytes, 1 << 20));
    return { tcpSendfileBytesPerSecond, tcpCopyBytesPerSecond, pwriteBytesPerSecond, pwriteSyncedBytesPerSecond, fileBytes: options.fileBytes, chunkBytes: options.chunkBytes };
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}
