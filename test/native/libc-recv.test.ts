/**
 * libc.recv (native/libc.ts): what the broker's direct reads (server/direct-reads.ts) rest on.
 * The server side's socket is kept paused, so Bun never reads it and every byte is recv's.
 */
import { expect, test } from "bun:test";
import type { Socket } from "bun";
import { fallbackLibc, libc, RECV_WOULD_BLOCK } from "../../src/native/libc.ts";
import { socketFd } from "../../src/server/socket-fd.ts";

const WAIT_MS_MAX = 5_000;

/** recv until it returns something other than RECV_WOULD_BLOCK (bytes or an end), within WAIT_MS_MAX. */
async function recvWhenReady(recv: (fd: number, into: Uint8Array) => number, fd: number, into: Uint8Array): Promise<number> {
  const deadline = Date.now() + WAIT_MS_MAX;
  for (;;) {
    const got = recv(fd, into);
    if (got !== RECV_WOULD_BLOCK || Date.now() > deadline) return got;
    await Bun.sleep(1);
  }
}

test.skipIf(libc.recv === null)("recv: nothing waiting is RECV_WOULD_BLOCK, then the bytes sent, then 0 once the peer has closed", async () => {
  const recv = libc.recv!;
  let accepted: Socket<undefined> | null = null;
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.pause();
        accepted = socket;
      },
      data() {},
    },
  });
  try {
    const client = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } });
    const deadline = Date.now() + WAIT_MS_MAX;
    while (accepted === null && Date.now() < deadline) await Bun.sleep(1);
    const fd = socketFd(accepted! as Socket<unknown>);
    expect(fd).not.toBeNull();
    const into = new Uint8Array(64);
    expect(recv(fd!, into)).toBe(RECV_WOULD_BLOCK);
    client.write(new Uint8Array([1, 2, 3, 4, 5]));
    expect(await recvWhenReady(recv, fd!, into)).toBe(5);
    expect(into.subarray(0, 5)).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
    client.end();
    expect(await recvWhenReady(recv, fd!, into)).toBe(0);
  } finally {
    server.stop(true);
  }
});

test("the node:fs fallback has no recv: the broker then reads only through Bun", () => {
  expect(fallbackLibc.recv).toBeNull();
});
