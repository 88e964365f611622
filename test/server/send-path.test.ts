import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { libc } from "../../src/native/libc.ts";
import { startTestBroker, tempDir, TestClient } from "./helpers.ts";

const dataDir = tempDir("runnel-send-path-");
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const FETCH = {
  op: "fetch",
  id: 77,
  maxBytes: 8 * 1024 * 1024,
  partitions: [0, 1].map((partition) => ({ topic: "paths", partition, offset: 0 })),
};

/** Record bytes the broker sent by any path: sendfile, copy, and the one-byte EAGAIN probes. */
function recordBytesSent(stats: Record<string, unknown>): number {
  return (stats.bytesSentSendfile as number) + (stats.bytesSentCopy as number) + (stats.bytesSentProbe as number);
}

/** Fetches with the client not reading at first, so a large answer meets a full socket buffer. */
async function fetchRawWhilePaused(port: number): Promise<{ frame: Uint8Array; stats: Record<string, unknown> }> {
  await using client = await TestClient.connect(port);
  client.socket.pause();
  client.send(FETCH);
  await using observer = await TestClient.connect(port);
  // Wait until the broker has sent what the socket buffers take (its counters stop moving);
  // the rest then goes out on drain after resume. The bytes are checked either way.
  for (let last = -1; ; ) {
    const stats = await observer.request({ op: "stats" });
    const moved = recordBytesSent(stats);
    if (moved > 0 && moved === last) break;
    last = moved;
  }
  client.socket.resume();
  const frame = await client.frame(0);
  const stats = await observer.request({ op: "stats" });
  return { frame, stats };
}

describe("broker: sendfile and copy paths", () => {
  test("the copy path gives byte-identical fetch responses to the sendfile path, and each path is counted", async () => {
    let recordsBytes = 0;
    let zeroCopyFrame: Uint8Array;
    {
      await using server = await startTestBroker({ dataDir, zeroCopy: true });
      await using producer = await TestClient.connect(server.port);
      await producer.request({ op: "createTopic", topic: "paths", partitions: 2 });
      for (let index = 0; index < 12; index++) {
        const values = Array.from({ length: 100 }, (_, record) => ({ value: new Uint8Array(2500).fill((index * 31 + record) & 0xff) }));
        const batch = encodeBatch(values, { nowMs: 1_700_000_000_000 + index });
        recordsBytes += batch.length;
        await producer.request({ op: "produce", batches: [{ topic: "paths", partition: index % 2, batch }] });
      }
      const { frame, stats } = await fetchRawWhilePaused(server.port);
      zeroCopyFrame = frame;
      expect(recordBytesSent(stats)).toBe(recordsBytes);
      if (libc.sendfile !== null) {
        expect(stats.sendPath).toBe("sendfile");
        expect(stats.bytesSentSendfile as number).toBeGreaterThan(recordsBytes * 0.9);
        // The paused client makes sendfile meet EAGAIN; its probe bytes are not copy-path bytes.
        expect(stats.bytesSentCopy).toBe(0);
      }
    }
    {
      await using server = await startTestBroker({ dataDir, zeroCopy: false });
      const { frame, stats } = await fetchRawWhilePaused(server.port);
      expect(stats).toMatchObject({ sendPath: "copy", bytesSentSendfile: 0, bytesSentCopy: recordsBytes, bytesSentProbe: 0 });
      expect(frame.length).toBe(zeroCopyFrame.length);
      expect(Buffer.compare(frame, zeroCopyFrame)).toBe(0);
    }
  });
});
