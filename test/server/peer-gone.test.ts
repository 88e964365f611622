/**
 * A client that vanishes while the broker sends it records (sendfile meets EPIPE or ECONNRESET)
 * is the client leaving, logged at debug with its address — never a STORAGE_ERROR, never an
 * error-level line, never a failed partition (issue 16).
 */
import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import type { Socket } from "bun";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { configSchema } from "../../src/config.ts";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { createLogger } from "../../src/logger.ts";
import { libc } from "../../src/native/libc.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { startBroker } from "../../src/server/broker.ts";
import { OutboundQueue } from "../../src/server/outbound.ts";
import { createStats } from "../../src/server/stats.ts";
import { type Message, TestClient, tempDir } from "./helpers.ts";

const MiB = 1024 * 1024;

describe("A client vanishing mid-fetch", () => {
  test.if(libc.sendfile !== null)("sendfile to a reset peer ends the queue as 'closed', not as a storage error", async () => {
    const directory = tempDir("runnel-peer-gone-");
    const file = path.join(directory, "records");
    fs.writeFileSync(file, new Uint8Array(4 * MiB).fill(7));
    const fileFd = fs.openSync(file, "r");
    let serverSide: Socket<undefined> | null = null;
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (socket) => void (serverSide = socket), data: () => {} } });
    const client = await Bun.connect({ hostname: "127.0.0.1", port: listener.port, socket: { data: () => {} } });
    try {
      while (serverSide === null) await Bun.sleep(1);
      let released = 0;
      const queue = new OutboundQueue(serverSide as Socket<unknown>, createStats(), true);
      queue.pushReply(new Uint8Array(0), [{ fd: fileFd, position: 0, length: 4 * MiB, firstOffset: 0, release: () => void released++ }]);
      // Reset by the peer; the broker's event loop has not seen the close yet when it sends.
      client.terminate();
      expect(queue.flush()).toBe("closed");
      queue.discard();
      expect(released).toBe(1);
    } finally {
      listener.stop(true);
      fs.closeSync(fileFd);
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  test("consumers that reset their connection while a large fetch is sent leave no error-level log line and a healthy partition", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger("debug", { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const dataDir = tempDir();
    const broker = await startBroker({ config: configSchema.parse({ port: 0, dataDir }), logger });
    try {
      await using admin = await TestClient.connect(broker.port);
      await admin.request({ op: "createTopic", topic: "big", partitions: 1 });
      const value = new Uint8Array(MiB - 1024).fill(3);
      for (let index = 0; index < 12; index++) {
        const produced = await admin.request({ op: "produce", durability: "written", batches: [{ topic: "big", partition: 0, batch: encodeBatch([{ value }]) }] });
        expect((produced.results as Message[])[0]!.error).toBeUndefined();
      }
      for (let round = 0; round < 5; round++) {
        let received = 0;
        const consumer = await Bun.connect({ hostname: "127.0.0.1", port: broker.port, socket: { data: (_socket, chunk) => void (received += chunk.length) } });
        consumer.write(encodeFrame(encode({ id: 1, op: "fetch", partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 12 * MiB }], maxBytes: 12 * MiB })));
        while (received === 0) await Bun.sleep(1);
        consumer.terminate();
      }
      const stats = await admin.request({ op: "stats" });
      for (let tries = 0; tries < 200 && Number((await admin.request({ op: "stats" })).connectionsOpen) > 1; tries++) await Bun.sleep(10);
      expect(Number(stats.requests)).toBeGreaterThan(0);
      // The partition still serves reads.
      const fetched = await admin.request({ op: "fetch", partitions: [{ topic: "big", partition: 0, offset: 11, maxBytes: 2 * MiB }] });
      expect((fetched.partitions as Message[])[0]!.error).toBeUndefined();
      expect((fetched.records as Uint8Array).length).toBeGreaterThan(0);
      const errors = lines.filter((line) => Number(line.level) >= 50 || JSON.stringify(line).includes("STORAGE_ERROR") || JSON.stringify(line).includes("EPIPE"));
      expect(errors).toEqual([]);
      const goneLines = lines.filter((line) => line.msg === "client went away while answers were being sent");
      for (const line of goneLines) expect(String(line.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      await broker.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
