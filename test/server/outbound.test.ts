/**
 * The outbound queue (server/outbound.ts) sends the same bytes on every path — a small reply
 * gathered into one write, head + sendfile, the copy path, across partial writes and a full
 * socket buffer — and takes the gathered path only for replies within its bound.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ReadSlice } from "../../src/log/api.ts";
import { libc } from "../../src/native/libc.ts";
import { GATHER_BYTES_MAX_DEFAULT, OutboundQueue } from "../../src/server/outbound.ts";
import { type BrokerStats, createStats } from "../../src/server/stats.ts";
import { tempDir } from "./helpers.ts";

const MiB = 1024 * 1024;
const FILE_BYTES = 12 * MiB;

let directory = "";
let fileFd = -1;
/** The file's bytes: position p holds (p * 7 + p >> 8) & 0xff, so any misplaced range shows. */
let fileBytes = new Uint8Array(0);

beforeAll(() => {
  directory = tempDir("runnel-outbound-");
  fileBytes = new Uint8Array(FILE_BYTES);
  for (let position = 0; position < FILE_BYTES; position++) fileBytes[position] = (position * 7 + (position >> 8)) & 0xff;
  const file = path.join(directory, "records");
  fs.writeFileSync(file, fileBytes);
  fileFd = fs.openSync(file, "r");
});

afterAll(() => {
  fs.closeSync(fileFd);
  fs.rmSync(directory, { recursive: true, force: true });
});

/** A reply: a head of `headBytes` (filled with `mark`) and file ranges [position, length]. */
type ReplySpec = { headBytes: number; mark: number; ranges: Array<[number, number]> };

/** What the peer must receive for these replies, in order. */
function expectedBytes(replies: readonly ReplySpec[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const reply of replies) {
    parts.push(new Uint8Array(reply.headBytes).fill(reply.mark));
    for (const [position, length] of reply.ranges) parts.push(fileBytes.subarray(position, position + length));
  }
  return Buffer.concat(parts);
}

/** Queues the replies; counts slice releases in `released`. */
function pushAll(queue: OutboundQueue, replies: readonly ReplySpec[], released: { count: number }): void {
  for (const reply of replies) {
    const slices: ReadSlice[] = reply.ranges.map(([position, length]) => ({ fd: fileFd, position, length, firstOffset: 0, release: () => void released.count++ }));
    queue.pushReply(new Uint8Array(reply.headBytes).fill(reply.mark), slices);
  }
}

/**
 * A stand-in socket that takes at most `takeMax` bytes per write (then returns short, as a full
 * socket buffer does), or -1 once `closeAfterBytes` were taken; it records every write call.
 */
class ShortWriteSocket {
  readonly received: number[] = [];
  writes = 0;
  constructor(
    private readonly takeMax: number,
    private readonly closeAfterBytes = Number.POSITIVE_INFINITY,
  ) {}

  write(bytes: Uint8Array, offset = 0, length = bytes.length - offset): number {
    this.writes++;
    if (this.received.length >= this.closeAfterBytes) return -1;
    const taken = Math.min(length, this.takeMax);
    for (let index = 0; index < taken; index++) this.received.push(bytes[offset + index]!);
    return taken;
  }

  asSocket(): Socket<unknown> {
    return this as unknown as Socket<unknown>;
  }
}

/** Flushes until empty (a short write is a "blocked" flush, as after a drain), at most `turnsMax` times. */
function flushToEnd(queue: OutboundQueue, turnsMax = 100_000): string {
  for (let turn = 0; turn < turnsMax; turn++) {
    const result = queue.flush();
    if (result !== "blocked") return result;
  }
  return "blocked";
}

const SMALL_REPLIES: ReplySpec[] = [
  { headBytes: 40, mark: 0xa1, ranges: [[100, 3000]] },
  { headBytes: 25, mark: 0xa2, ranges: [] },
  { headBytes: 60, mark: 0xa3, ranges: [[5000, 700], [9000, 1], [20_000, 4096]] },
];

describe("OutboundQueue: gathered writes", () => {
  test("small replies queued together go out in one write, byte for byte, counted as gathered", () => {
    const socket = new ShortWriteSocket(Number.MAX_SAFE_INTEGER);
    const stats = createStats();
    const released = { count: 0 };
    const queue = new OutboundQueue(socket.asSocket(), stats, true);
    pushAll(queue, SMALL_REPLIES, released);
    expect(queue.flush()).toBe("empty");
    expect(socket.writes).toBe(1);
    expect(Buffer.compare(new Uint8Array(socket.received), expectedBytes(SMALL_REPLIES))).toBe(0);
    expect(stats.bytesSentGathered).toBe(3000 + 700 + 1 + 4096);
    expect(stats.bytesSentWrite).toBe(40 + 25 + 60);
    expect(stats.bytesSentSendfile + stats.bytesSentCopy).toBe(0);
    expect(released.count).toBe(4);
    expect(queue.repliesQueued).toBe(0);
    expect(queue.queuedBytes).toBe(0);
  });

  test("every partial-write size gives the same bytes, and the rest goes out by the copy path", () => {
    const expected = expectedBytes(SMALL_REPLIES);
    for (const takeMax of [1, 7, 39, 40, 41, 64, 3040, 3041, 4000, expected.length - 1]) {
      const socket = new ShortWriteSocket(takeMax);
      const stats = createStats();
      const released = { count: 0 };
      const queue = new OutboundQueue(socket.asSocket(), stats, true);
      pushAll(queue, SMALL_REPLIES, released);
      expect(flushToEnd(queue)).toBe("empty");
      expect(Buffer.compare(new Uint8Array(socket.received), expected)).toBe(0);
      expect(stats.bytesSentGathered + stats.bytesSentCopy).toBe(3000 + 700 + 1 + 4096);
      expect(stats.bytesSentGathered).toBeGreaterThan(0);
      expect(released.count).toBe(4);
      expect(queue.repliesQueued).toBe(0);
      expect(queue.queuedBytes).toBe(0);
    }
  });

  test("a reply over the bound is not gathered: head and records go out by their own paths", () => {
    const socket = new ShortWriteSocket(Number.MAX_SAFE_INTEGER);
    const stats = createStats();
    const replies: ReplySpec[] = [{ headBytes: 50, mark: 1, ranges: [[0, GATHER_BYTES_MAX_DEFAULT]] }];
    const queue = new OutboundQueue(socket.asSocket(), stats, true);
    pushAll(queue, replies, { count: 0 });
    expect(queue.flush()).toBe("empty");
    expect(Buffer.compare(new Uint8Array(socket.received), expectedBytes(replies))).toBe(0);
    expect(stats.bytesSentGathered).toBe(0);
    // A stand-in socket has no fd: the records take the copy path.
    expect(stats.bytesSentCopy).toBe(GATHER_BYTES_MAX_DEFAULT);
  });

  test("gatherBytesMax 0 never gathers", () => {
    const socket = new ShortWriteSocket(Number.MAX_SAFE_INTEGER);
    const stats = createStats();
    const queue = new OutboundQueue(socket.asSocket(), stats, true, null, 0);
    pushAll(queue, SMALL_REPLIES, { count: 0 });
    expect(queue.flush()).toBe("empty");
    expect(Buffer.compare(new Uint8Array(socket.received), expectedBytes(SMALL_REPLIES))).toBe(0);
    expect(stats.bytesSentGathered).toBe(0);
    expect(socket.writes).toBeGreaterThan(1);
  });

  test("a peer gone during a gathered write ends the queue as 'closed' and discard releases every slice", () => {
    const socket = new ShortWriteSocket(10, 25);
    const released = { count: 0 };
    const queue = new OutboundQueue(socket.asSocket(), createStats(), true);
    pushAll(queue, SMALL_REPLIES, released);
    expect(flushToEnd(queue)).toBe("closed");
    queue.discard();
    expect(released.count).toBe(4);
    expect(queue.queuedBytes).toBe(0);
    expect(queue.repliesQueued).toBe(0);
  });
});

/** A real loopback connection: the queue on the accepted side, the bytes collected on the other. */
async function withConnection(run: (server: Socket<unknown>, client: Socket<undefined>, received: () => Uint8Array, flushOnDrain: (queue: OutboundQueue) => void) => Promise<void>): Promise<void> {
  let serverSide: Socket<undefined> | null = null;
  let drainQueue: OutboundQueue | null = null;
  const chunks: Uint8Array[] = [];
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: { open: (socket) => void (serverSide = socket), data: () => {}, drain: () => void drainQueue?.flush() },
  });
  const client = await Bun.connect({ hostname: "127.0.0.1", port: listener.port, socket: { data: (_socket, chunk) => void chunks.push(new Uint8Array(chunk)) } });
  try {
    while (serverSide === null) await Bun.sleep(1);
    await run(serverSide as Socket<unknown>, client, () => Buffer.concat(chunks), (queue) => void (drainQueue = queue));
  } finally {
    client.end();
    listener.stop(true);
  }
}

async function receiveAll(received: () => Uint8Array, bytes: number): Promise<Uint8Array> {
  for (let waits = 0; received().length < bytes && waits < 60_000; waits++) await Bun.sleep(1);
  return received();
}

describe("OutboundQueue over a real socket", () => {
  test.if(libc.sendfile !== null)("small replies are gathered and large ones keep sendfile, with the same bytes either way", async () => {
    const replies: ReplySpec[] = [...SMALL_REPLIES, { headBytes: 70, mark: 0xb1, ranges: [[1000, 2 * MiB]] }, { headBytes: 30, mark: 0xb2, ranges: [[7, 500]] }];
    const expected = expectedBytes(replies);
    await withConnection(async (server, _client, received, flushOnDrain) => {
      const stats = createStats();
      const queue = new OutboundQueue(server, stats, true);
      flushOnDrain(queue);
      pushAll(queue, replies, { count: 0 });
      queue.flush();
      const bytes = await receiveAll(received, expected.length);
      expect(Buffer.compare(bytes, expected)).toBe(0);
      expect(stats.bytesSentGathered).toBe(3000 + 700 + 1 + 4096 + 500);
      expect(stats.bytesSentSendfile + stats.bytesSentProbe).toBe(2 * MiB);
      expect(stats.bytesSentCopy).toBe(0);
    });
  });

  test.if(libc.sendfile !== null)("a gathered write cut short by a full socket buffer is finished by sendfile on drain, byte for byte", async () => {
    // A bound far over the socket buffers: the one write is cut short while the client does not read.
    const replies: ReplySpec[] = [{ headBytes: 33, mark: 0xc1, ranges: [[0, 10 * MiB]] }, { headBytes: 20, mark: 0xc2, ranges: [[3, 999]] }];
    const expected = expectedBytes(replies);
    await withConnection(async (server, client, received, flushOnDrain) => {
      client.pause();
      const stats = createStats();
      const queue = new OutboundQueue(server, stats, true, null, 16 * MiB);
      flushOnDrain(queue);
      pushAll(queue, replies, { count: 0 });
      expect(queue.flush()).toBe("blocked");
      expect(stats.bytesSentGathered).toBeGreaterThan(0);
      expect(stats.bytesSentGathered).toBeLessThan(10 * MiB);
      client.resume();
      const bytes = await receiveAll(received, expected.length);
      expect(Buffer.compare(bytes, expected)).toBe(0);
      expect(stats.bytesSentGathered + stats.bytesSentSendfile + stats.bytesSentProbe).toBe(10 * MiB + 999);
      expect(stats.bytesSentSendfile).toBeGreaterThan(0);
      expect(queue.isEmpty).toBe(true);
    });
  });

  test.if(libc.sendfile !== null)("sendfile and the gathered read both reach ranges past 4 GiB in a file (the offset's high half)", async () => {
    const file = path.join(directory, "sparse");
    const fd = fs.openSync(file, "w+");
    const far = 5 * 1024 * MiB + 12_345;
    const bytes = fileBytes.subarray(0, 3000);
    try {
      libc.pwrite(fd, bytes, far);
      for (const gatherBytesMax of [0, GATHER_BYTES_MAX_DEFAULT]) {
        await withConnection(async (server, _client, received, flushOnDrain) => {
          const stats = createStats();
          const queue = new OutboundQueue(server, stats, true, null, gatherBytesMax);
          flushOnDrain(queue);
          queue.pushReply(new Uint8Array([1, 2, 3]), [{ fd, position: far, length: bytes.length, firstOffset: 0, release: () => {} }]);
          queue.flush();
          const got = await receiveAll(received, 3 + bytes.length);
          expect(Buffer.compare(got, Buffer.concat([new Uint8Array([1, 2, 3]), bytes]))).toBe(0);
          expect(gatherBytesMax === 0 ? stats.bytesSentSendfile + stats.bytesSentProbe : stats.bytesSentGathered).toBe(bytes.length);
        });
      }
    } finally {
      fs.closeSync(fd);
      fs.rmSync(file);
    }
  });

  test("with zero copy off (TLS, RUNNEL_NATIVE=off) small replies are still gathered and large ones copied, same bytes", async () => {
    const replies: ReplySpec[] = [...SMALL_REPLIES, { headBytes: 70, mark: 0xd1, ranges: [[1000, MiB]] }];
    const expected = expectedBytes(replies);
    await withConnection(async (server, _client, received, flushOnDrain) => {
      const stats: BrokerStats = createStats();
      const queue = new OutboundQueue(server, stats, false);
      flushOnDrain(queue);
      pushAll(queue, replies, { count: 0 });
      queue.flush();
      const bytes = await receiveAll(received, expected.length);
      expect(Buffer.compare(bytes, expected)).toBe(0);
      expect(stats.bytesSentGathered).toBe(3000 + 700 + 1 + 4096);
      expect(stats.bytesSentCopy).toBe(MiB);
      expect(stats.bytesSentSendfile).toBe(0);
    });
  });
});
