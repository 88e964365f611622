import { describe, expect, test } from "bun:test";
import { encodeBatch } from "../../src/format/record-batch.ts";
import { type Message, startTestBroker, TestClient, waitUntil } from "./helpers.ts";

describe("broker: limits and abuse", () => {
  test("an oversized frame closes only that connection, after an error frame", async () => {
    await using server = await startTestBroker();
    await using bad = await TestClient.connect(server.port);
    await using good = await TestClient.connect(server.port);
    bad.writeRaw(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0x80]));
    expect(await bad.next()).toMatchObject({ id: null, error: { code: "MESSAGE_TOO_LARGE" } });
    await bad.closedPromise;
    expect(bad.closed).toBe(true);
    const stats = await good.request({ op: "stats" });
    expect(stats).toMatchObject({ framesOversized: 1, connectionsOpen: 1 });
  });

  test("a connection past connectionsMax gets TOO_MANY_CONNECTIONS and is closed", async () => {
    await using server = await startTestBroker({ connectionsMax: 2 });
    await using first = await TestClient.connect(server.port);
    await using second = await TestClient.connect(server.port);
    await first.request({ op: "stats" });
    await second.request({ op: "stats" });
    await using third = await TestClient.connect(server.port);
    expect(await third.next()).toMatchObject({ id: null, error: { code: "TOO_MANY_CONNECTIONS" } });
    await third.closedPromise;
    expect((await first.request({ op: "stats" })).connectionsRejected).toBe(1);
  });

  test("a half-sent frame times out and closes the connection with TIMEOUT", async () => {
    await using server = await startTestBroker({ frameTimeoutMs: 100 });
    await using slow = await TestClient.connect(server.port);
    slow.writeRaw(new Uint8Array([0, 0, 0, 10, 0x81]));
    expect(await slow.next()).toMatchObject({ id: null, error: { code: "TIMEOUT" } });
    await slow.closedPromise;
  });

  test("an idle connection is closed after idleTimeoutMs", async () => {
    await using server = await startTestBroker({ idleTimeoutMs: 1000 });
    await using idle = await TestClient.connect(server.port);
    await idle.request({ op: "stats" });
    await idle.closedPromise;
    expect(idle.closed).toBe(true);
  });

  test("a client that stops reading makes the broker stop reading it, then all answers arrive in order", async () => {
    await using server = await startTestBroker({ requestsInFlightMax: 4 });
    await using reader = await TestClient.connect(server.port);
    await using observer = await TestClient.connect(server.port);
    const values = Array.from({ length: 200 }, (_, i) => ({ value: new Uint8Array(1000).fill(i) }));
    await reader.request({ op: "produce", batches: [{ topic: "bp", partition: 0, batch: encodeBatch(values, { nowMs: 1 }) }] });
    reader.socket.pause();
    const ids: number[] = [];
    for (let index = 0; index < 300; index++) ids.push(reader.send({ op: "fetch", partitions: [{ topic: "bp", partition: 0, offset: 0 }] }));
    let observed: Message = {};
    await waitUntil(async () => {
      observed = await observer.request({ op: "stats" });
      return observed.connectionsPaused === 1;
    }, 10_000, "the broker to pause the reader");
    expect(observed.requests as number).toBeLessThan(300);
    reader.socket.resume();
    for (const id of ids) expect((await reader.next()).id).toBe(id);
  });
});
