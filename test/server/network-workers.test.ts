/**
 * networkWorkers 2 (server/workers/): connections owned by two network workers, requests served
 * by the log thread. Connections land on either worker (the kernel spreads them over the
 * reusePort sockets), and every one of them sees one log: what one produces, another fetches, in
 * order; groups span them; a worker that dies takes only its own connections; stop is clean.
 */
import { decode } from "@msgpack/msgpack";
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { Consumer, Producer } from "../../src/client/index.ts";
import { Connection } from "../../src/client/connection.ts";
import { CredentialStore } from "../../src/security/credential-store.ts";
import { deriveVerifier } from "../../src/security/scram.ts";
import { type Message, startTestBroker, TestClient, tempDir, waitUntil } from "./helpers.ts";

const CONNECTIONS = 8;

function errorCode(answer: Message): unknown {
  return (answer.error as { code?: unknown } | undefined)?.code;
}

describe("network workers", () => {
  test("messages produced over many connections are fetched, in order and complete, over many others", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    expect(server.broker.workers?.workerCount).toBe(2);
    const broker = `127.0.0.1:${server.port}`;
    await using admin = await TestClient.connect(server.port);
    expect(errorCode(await admin.request({ op: "createTopic", topic: "spread", partitions: 2 }))).toBeUndefined();
    const producers = Array.from({ length: CONNECTIONS / 2 }, () => new Producer({ broker, lingerMs: 1, batchBytes: 4096 }));
    const perProducer = 500;
    await Promise.all(
      producers.map((producer, which) =>
        Promise.all(Array.from({ length: perProducer }, (_, index) => producer.send("spread", { value: `p${which}-${index}`, partition: which % 2 }))),
      ),
    );
    for (const producer of producers) await producer.close();

    const consumers = Array.from({ length: CONNECTIONS / 2 }, () => new Consumer({ broker, partitionMaxBytes: 8192 }).subscribe("spread"));
    for (const consumer of consumers) {
      const seen = new Map<number, number[]>([[0, []], [1, []]]);
      const values = new Set<string>();
      let total = 0;
      while (total < perProducer * producers.length) {
        for (const message of await consumer.nextBatch()) {
          seen.get(message.partition)?.push(message.offset);
          values.add(new TextDecoder().decode(message.value ?? new Uint8Array()));
          total++;
        }
      }
      expect(values.size).toBe(perProducer * producers.length);
      for (const offsets of seen.values()) expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, index) => index));
      await consumer.close();
    }
    // The workers report what they sent to the log thread's counters: fetched records went by sendfile.
    await waitUntil(async () => Number((await admin.request({ op: "stats" })).bytesSentSendfile) > 0, 30_000, "sendfile bytes in the stats");
  });

  test("large batches produced one after another (their bodies reuse the workers' shared buffers) are stored byte for byte", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    const broker = `127.0.0.1:${server.port}`;
    await using admin = await TestClient.connect(server.port);
    expect(errorCode(await admin.request({ op: "createTopic", topic: "large", partitions: 1 }))).toBeUndefined();
    // Each batch holds one 100 KiB record of its own byte: a body over POOLED_BYTES_MIN, so it crosses by shared buffer.
    const batches = 40;
    const valueOf = (index: number): Uint8Array => new Uint8Array(100 * 1024).fill(index + 1);
    const producer = new Producer({ broker, lingerMs: 0 });
    for (let index = 0; index < batches; index++) await producer.send("large", { value: valueOf(index), partition: 0 });
    await producer.close();
    const consumer = new Consumer({ broker, partitionMaxBytes: 1 << 20 }).subscribe("large");
    const values: Uint8Array[] = [];
    while (values.length < batches) for (const message of await consumer.nextBatch()) values.push(message.value ?? new Uint8Array());
    await consumer.close();
    expect(values.map((value, index) => value.length === 100 * 1024 && value.every((byte) => byte === index + 1))).toEqual(Array.from({ length: batches }, () => true));
  });

  test("a long poll on one connection is woken by a produce on another", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    const clients = await Promise.all(Array.from({ length: 4 }, () => TestClient.connect(server.port)));
    await clients[0]!.request({ op: "createTopic", topic: "wake", partitions: 1 });
    const waiting = clients.slice(1).map((client) => client.request({ op: "fetch", maxWaitMs: 60_000, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: "wake", partition: 0, offset: 0 }] }));
    const producer = new Producer({ broker: `127.0.0.1:${server.port}` });
    await producer.send("wake", { value: "hello", partition: 0 });
    await producer.close();
    for (const answer of await Promise.all(waiting)) expect((answer.partitions as Message[])[0]?.recordsBytes).toBeGreaterThan(0);
    for (const client of clients) await client[Symbol.asyncDispose]();
  });

  test("a group's members on different connections share its partitions and see each other's commits", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    const clients = await Promise.all(Array.from({ length: 4 }, () => TestClient.connect(server.port)));
    await clients[0]!.request({ op: "createTopic", topic: "orders", partitions: 4 });
    const first = await clients[0]!.request({ op: "joinGroup", group: "g", topics: ["orders"], clientId: "first" });
    const second = await clients[1]!.request({ op: "joinGroup", group: "g", topics: ["orders"], clientId: "second" });
    const described = await clients[2]!.request({ op: "describeGroup", group: "g" });
    expect(errorCode(described)).toBeUndefined();
    expect(JSON.stringify(described)).toContain(first.memberId as string);
    expect(JSON.stringify(described)).toContain(second.memberId as string);
    const committed = await clients[3]!.request({ op: "commitOffsets", group: "plain", offsets: [{ topic: "orders", partition: 1, offset: 7 }] });
    expect(errorCode(committed)).toBeUndefined();
    const fetched = await clients[2]!.request({ op: "fetchOffsets", group: "plain", partitions: [{ topic: "orders", partition: 1 }] });
    expect(JSON.stringify(fetched.offsets)).toContain('"offset":7');
    for (const client of clients) await client[Symbol.asyncDispose]();
  });

  test("a bad frame closes only its own connection; an oversized frame gets MESSAGE_TOO_LARGE", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    const good = await TestClient.connect(server.port);
    const bad = await TestClient.connect(server.port);
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 0xffff_fff0);
    bad.writeRaw(header);
    await bad.closedPromise;
    expect(errorCode(decode(bad.frames[0] ?? new Uint8Array([0x80])) as Message)).toBe("MESSAGE_TOO_LARGE");
    const garbage = await good.request({ op: "noSuchOp" });
    expect(errorCode(garbage)).toBe("UNKNOWN_OPERATION");
    expect(errorCode(await good.request({ op: "hello", versions: [1] }))).toBeUndefined();
    await good[Symbol.asyncDispose]();
  });

  test("a worker that dies drops only its own connections, and a new worker serves the port", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    const pool = server.broker.workers!;
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => TestClient.connect(server.port)));
    await clients[0]!.request({ op: "createTopic", topic: "survive", partitions: 1 });
    await waitUntil(async () => pool.connectionCount === CONNECTIONS, 30_000, "every connection registered");
    pool.crashWorker(0);
    await waitUntil(async () => pool.workersStarted === 3 && pool.connectionCount + clients.filter((client) => client.closed).length >= CONNECTIONS, 30_000, "the replacement and the drops");
    const survivors = clients.filter((client) => !client.closed);
    // The drop is whole: every surviving connection still answers.
    for (const client of survivors) expect(errorCode(await client.request({ op: "hello", versions: [1] }))).toBeUndefined();
    // And new connections are served, whichever worker takes them.
    for (let index = 0; index < 4; index++) {
      await using fresh = await TestClient.connect(server.port);
      const produced = await fresh.request({ op: "metadata" });
      expect(errorCode(produced)).toBeUndefined();
    }
    for (const client of clients) await client[Symbol.asyncDispose]();
  });

  test("with authentication, a connection is refused large frames until it authenticates, then produces like any other", async () => {
    const dataDir = tempDir();
    await using _removed = { [Symbol.asyncDispose]: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
    CredentialStore.open(dataDir).upsert("ada", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "ada-pw", 4096) });
    await using server = await startTestBroker({ networkWorkers: 2, authentication: "scram", dataDir });
    const stranger = await TestClient.connect(server.port);
    expect(errorCode(await stranger.request({ op: "metadata" }))).toBe("AUTHENTICATION_REQUIRED");
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 1 << 20); // over the pre-authentication limit
    stranger.writeRaw(header);
    await stranger.closedPromise;
    const ada = new Connection({ broker: `127.0.0.1:${server.port}`, sasl: { user: "ada", password: "ada-pw" } });
    expect(errorCode(await ada.request("createTopic", { topic: "big", partitions: 1 }))).toBeUndefined();
    const producer = new Producer({ broker: `127.0.0.1:${server.port}`, sasl: { user: "ada", password: "ada-pw" }, batchBytes: 1 << 20, lingerMs: 5 });
    const large = new Uint8Array(200_000).fill(7);
    const sent = await Promise.all(Array.from({ length: 8 }, () => producer.send("big", { value: large, partition: 0 })));
    expect(sent.map((result) => result.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await producer.close();
    await ada.close();
  });

  test("past connectionsMax a connection gets TOO_MANY_CONNECTIONS and is closed; the others carry on", async () => {
    await using server = await startTestBroker({ networkWorkers: 2, connectionsMax: 3 });
    const admitted = await Promise.all(Array.from({ length: 3 }, () => TestClient.connect(server.port)));
    await waitUntil(async () => server.broker.workers?.connectionCount === 3, 30_000, "three connections registered");
    const refused = await TestClient.connect(server.port);
    await refused.closedPromise;
    expect(errorCode(decode(refused.frames[0] ?? new Uint8Array([0x80])) as Message)).toBe("TOO_MANY_CONNECTIONS");
    for (const client of admitted) expect(errorCode(await client.request({ op: "hello", versions: [1] }))).toBeUndefined();
    for (const client of admitted) await client[Symbol.asyncDispose]();
  });

  test("a partial frame held past frameTimeoutMs gets TIMEOUT and its connection is closed", async () => {
    await using server = await startTestBroker({ networkWorkers: 2, frameTimeoutMs: 50 });
    const slow = await TestClient.connect(server.port);
    slow.writeRaw(new Uint8Array([0, 0, 0, 10, 0x81])); // 10 bytes promised, 1 sent
    await slow.closedPromise;
    expect(errorCode(decode(slow.frames[0] ?? new Uint8Array([0x80])) as Message)).toBe("TIMEOUT");
  });

  test("a port another socket holds stops start-up with the listener's error", async () => {
    using holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    await expect(startTestBroker({ networkWorkers: 2, port: holder.port })).rejects.toThrow(/EADDRINUSE|in use/i);
  });

  test("fetch answers to connections that close before they arrive leave no file range pinned", async () => {
    await using server = await startTestBroker({ networkWorkers: 2 });
    const pool = server.broker.workers!;
    const producer = new Producer({ broker: `127.0.0.1:${server.port}` });
    await producer.send("gone", { value: new Uint8Array(4096), partition: 0 });
    await producer.close();
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(server.port)));
    for (const client of clients) {
      client.send({ op: "fetch", maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: "gone", partition: 0, offset: 0 }] });
      client.socket.terminate(); // gone before (or while) its answer comes back
    }
    await waitUntil(async () => pool.connectionCount === 0 && pool.pinnedSlices === 0, 30_000, "every connection gone and every range unpinned");
  });

  test("stop answers what is in flight, closes every connection and releases every file range", async () => {
    const server = await startTestBroker({ networkWorkers: 2 });
    const client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: "bye", partitions: 1 });
    const producer = new Producer({ broker: `127.0.0.1:${server.port}` });
    await producer.send("bye", { value: "last", partition: 0 });
    await producer.close();
    const pool = server.broker.workers!;
    await server[Symbol.asyncDispose]();
    await client.closedPromise;
    expect(pool.connectionCount).toBe(0);
    expect(pool.pinnedSlices).toBe(0);
  });
});
