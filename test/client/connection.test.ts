import { afterEach, describe, expect, test } from "bun:test";
import { RunnelError } from "../../src/errors.ts";
import { Connection, parseBrokerAddress } from "../../src/client/connection.ts";
import { FakeBroker } from "./fake-broker.ts";
import { until } from "../support/wait.ts";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function fake(options: ConstructorParameters<typeof FakeBroker>[0] = {}): FakeBroker {
  const broker = new FakeBroker(options);
  cleanups.push(() => broker.stop());
  return broker;
}

function connect(address: string, options: Partial<ConstructorParameters<typeof Connection>[0]> = {}): Connection {
  const connection = new Connection({ broker: address, ...options });
  cleanups.push(() => connection.close());
  return connection;
}

async function failure(promise: Promise<unknown>): Promise<RunnelError> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  if (!(error instanceof RunnelError)) throw new Error(`expected a RunnelError, got ${String(error)}`);
  return error;
}

describe("Connection", () => {
  test("parses host:port, [v6]:port and a bare host, and refuses the rest", () => {
    expect(parseBrokerAddress("10.0.0.5:9700")).toEqual({ host: "10.0.0.5", port: 9700 });
    expect(parseBrokerAddress("[::1]:9601")).toEqual({ host: "::1", port: 9601 });
    expect(parseBrokerAddress("broker.local")).toEqual({ host: "broker.local", port: 9600 });
    for (const bad of ["", "host:0", "host:70000", "a:b:c", "host:port"]) {
      expect(() => parseBrokerAddress(bad)).toThrow(RunnelError);
    }
  });

  test("pipelines requests and matches answers in order", async () => {
    const broker = fake();
    broker.createTopic("a", 1);
    const connection = connect(broker.address);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, index) => connection.request("metadata", { topics: index % 2 === 0 ? ["a"] : [] })));
    answers.forEach((answer, index) => expect((answer.topics as unknown[]).length).toBe(index % 2 === 0 ? 1 : 0));
    expect(broker.requestsOf("hello")).toHaveLength(1);
    const info = await connection.connect();
    expect(info).toMatchObject({ version: 1, serverVersion: "fake", requestsInFlightMax: 64 });
  });

  test("keeps at most requestsInFlightMax requests at the broker and queues the rest", async () => {
    const held: Array<() => void> = [];
    const broker = fake({ requestsInFlightMax: 2, onProduce: () => new Promise((resolve) => held.push(() => resolve({ results: [] }))) });
    const connection = connect(broker.address);
    await connection.connect();
    const requests = Array.from({ length: 5 }, () => connection.request("produce", { batches: [] }));
    await until(() => held.length === 2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(broker.requestsOf("produce")).toHaveLength(2);
    while (held.length > 0 || broker.requestsOf("produce").length < 5) {
      await until(() => held.length > 0);
      held.shift()!();
    }
    await Promise.all(requests);
    expect(broker.requestsOf("produce")).toHaveLength(5);
  });

  test("a request unanswered within its timeout fails with TIMEOUT, the earliest deadline first, and the link resets", async () => {
    const held: Array<() => void> = [];
    const broker = fake({ onProduce: () => new Promise((resolve) => held.push(() => resolve({ results: [] }))) });
    const connection = connect(broker.address);
    await connection.connect();
    const slow = connection.request("produce", { batches: [] }, 5_000);
    const quick = connection.request("produce", { batches: [] }, 150);
    const quickError = await failure(quick);
    expect(quickError.code).toBe("TIMEOUT");
    expect(quickError.message).toContain("150 ms");
    // Sent second with the shorter limit, it still fired first (its deadline re-armed the
    // link's one timer): the slow one fails by the reset, not by its own timeout.
    expect((await failure(slow)).code).toBe("BROKER_UNAVAILABLE");
    // The connection recovers: the next request reconnects and is answered.
    for (const release of held) release();
    expect(await connection.request("metadata", { topics: [] })).toMatchObject({ topics: [] });
  });

  test("a broker of another protocol version fails with UNSUPPORTED_VERSION naming host:port", async () => {
    const broker = fake({ version: 2 });
    const error = await failure(connect(broker.address).request("metadata", {}));
    expect(error.code).toBe("UNSUPPORTED_VERSION");
    expect(error.message).toContain(broker.address);
    expect(error.retriable).toBe(false);
  });

  test("a service that is not a Runnel broker fails the handshake with a clear error", async () => {
    const http = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (socket) => void socket.write("HTTP/1.1 400 Bad Request\r\n\r\n") },
    });
    cleanups.push(() => http.stop(true));
    const error = await failure(connect(`127.0.0.1:${http.port}`).request("metadata", {}));
    expect(error.code).toBe("UNSUPPORTED_VERSION");
    expect(error.message).toContain("did not answer the Runnel handshake");
  });

  test("an unreachable broker fails with BROKER_UNAVAILABLE after retrying for connectTimeoutMs", async () => {
    const error = await failure(connect("127.0.0.1:1", { connectTimeoutMs: 200, reconnectBackoffMs: 10 }).request("metadata", {}));
    expect(error.code).toBe("BROKER_UNAVAILABLE");
    expect(error.message).toMatch(/cannot reach the Runnel broker at 127\.0\.0\.1:1 \(ECONNREFUSED; \d+ attempts/);
    expect(error.retriable).toBe(true);
  });

  test("a lost connection fails the requests in flight as retriable and the next request reconnects", async () => {
    const broker: FakeBroker = fake({ onProduce: () => (broker.dropConnections(), new Promise(() => undefined)) });
    const connection = connect(broker.address, { reconnectBackoffMs: 5 });
    const lost = await failure(connection.request("produce", { batches: [] }));
    expect(lost.code).toBe("BROKER_UNAVAILABLE");
    expect(lost.message).toContain("may or may not have been applied");
    expect(lost.retriable).toBe(true);
    const again = await connection.request("metadata", {});
    expect(again.topics).toEqual([]);
    expect(broker.requestsOf("hello")).toHaveLength(2);
  });

  test("close() waits for the requests in flight, then refuses new ones", async () => {
    let release = () => {};
    const broker = fake({ onProduce: () => new Promise((resolve) => (release = () => resolve({ results: ["done"] }))) });
    const connection = connect(broker.address);
    const inFlight = connection.request("produce", { batches: [] });
    await until(() => broker.requestsOf("produce").length === 1);
    const closing = connection.close();
    release();
    expect((await inFlight).results).toEqual(["done"]);
    await closing;
    expect((await failure(connection.request("metadata", {}))).code).toBe("CLIENT_CLOSED");
  });

  test("an answer without an id fails the request it answers; INVALID_REQUEST keeps the connection", async () => {
    const broker = fake();
    const connection = connect(broker.address);
    const [unreadable, after] = await Promise.allSettled([connection.request("unreadable", {}), connection.request("metadata", {})]);
    expect((unreadable as PromiseRejectedResult).reason.code).toBe("INVALID_REQUEST");
    expect((after as PromiseFulfilledResult<Record<string, unknown>>).value.topics).toEqual([]);
    expect(broker.requestsOf("hello")).toHaveLength(1);
    const closing = await failure(connection.request("tooMany", {}));
    expect(closing.code).toBe("TOO_MANY_CONNECTIONS");
    expect(closing.retriable).toBe(true);
  });

  test("a broker error answer becomes a RunnelError with the broker's code", async () => {
    const broker = fake();
    const error = await failure(connect(broker.address).request("noSuchOp", {}));
    expect(error.code).toBe("UNKNOWN_OPERATION");
    expect(error.details?.brokerCode).toBe("UNKNOWN_OPERATION");
  });
});

