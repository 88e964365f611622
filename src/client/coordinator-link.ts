/**
 * @module client/coordinator-link
 * Sends a group's requests to the group's coordinator (docs/protocol.md, findCoordinator): asks
 * the bootstrap connection `findCoordinator`, connects there, and follows the coordinator when it
 * moves. NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE and a lost
 * connection (BROKER_UNAVAILABLE) forget the coordinator; the request is sent again — to the one
 * found next — with a doubling backoff, until its timeout. On a single node the coordinator is
 * the bootstrap broker itself, and its connection is used as it is. A broker without
 * findCoordinator (UNKNOWN_OPERATION: an older one) is taken as its own coordinator too.
 *
 * Non-obvious: the coordinator's connection gives up connecting after 2 s at most, so a dead
 * coordinator is replaced by asking the bootstrap list again rather than waited for.
 */
import { RunnelError, toRunnelError } from "../errors.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { readInt, readString, type WireMap } from "./wire.ts";

const MOVED_CODES: ReadonlySet<string> = new Set(["NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "BROKER_UNAVAILABLE"]);
const COORDINATOR_CONNECT_TIMEOUT_MS_MAX = 2_000;
const BACKOFF_MS_MAX = 1_000;

/** Anything a group request can be sent on: a Connection, or a CoordinatorLink. */
export interface GroupRequester {
  request(op: string, fields: WireMap, timeoutMs?: number): Promise<WireMap>;
}

export class CoordinatorLink implements GroupRequester {
  /** The coordinator's connection, or null until found (the bootstrap connection itself on a single node). */
  private coordinator: Connection | null = null;
  private finding: Promise<Connection> | null = null;
  private closed = false;

  constructor(
    private readonly bootstrap: Connection,
    private readonly options: ConnectionOptions & { retryBackoffMs?: number },
    private readonly group: string,
  ) {}

  /** "host:port" of the coordinator in use, or null while none is known. */
  get coordinatorAddress(): string | null {
    return this.coordinator?.address ?? null;
  }

  async request(op: string, fields: WireMap, timeoutMs: number = this.bootstrap.requestTimeoutMs): Promise<WireMap> {
    const deadlineMs = Date.now() + timeoutMs;
    let backoffMs = this.options.retryBackoffMs ?? 50;
    for (;;) {
      let connection: Connection | null = null;
      try {
        connection = await this.find(Math.max(1, deadlineMs - Date.now()));
        return await connection.request(op, fields, Math.max(1, deadlineMs - Date.now()));
      } catch (error) {
        const failure = toRunnelError(error);
        if (this.closed || !MOVED_CODES.has(failure.code) || Date.now() + backoffMs >= deadlineMs) throw failure;
        this.forget(connection);
        await Bun.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, BACKOFF_MS_MAX);
      }
    }
  }

  /** Closes the coordinator's connection (not the bootstrap one, which belongs to the caller). */
  async close(): Promise<void> {
    this.closed = true;
    const coordinator = this.coordinator;
    this.coordinator = null;
    if (coordinator !== null && coordinator !== this.bootstrap) await coordinator.close();
  }

  /** The coordinator's connection; asking the bootstrap connection takes at most `timeoutMs` (the request's time left). */
  private find(timeoutMs: number): Promise<Connection> {
    if (this.coordinator !== null) return Promise.resolve(this.coordinator);
    this.finding ??= this.ask(timeoutMs).finally(() => {
      this.finding = null;
    });
    return this.finding;
  }

  private async ask(timeoutMs: number): Promise<Connection> {
    let answer: WireMap;
    try {
      answer = await this.bootstrap.request("findCoordinator", { group: this.group }, timeoutMs);
    } catch (error) {
      if (toRunnelError(error).code !== "UNKNOWN_OPERATION") throw error;
      return (this.coordinator = this.bootstrap);
    }
    const port = readInt(answer.port, "findCoordinator", "port");
    let host = readString(answer.host, "findCoordinator", "host");
    // A broker bound to every interface names no host: it is the one we asked, at that port.
    if (host === "" || host === "0.0.0.0" || host === "::") host = this.bootstrap.host;
    if (`${host}:${port}` === this.bootstrap.address || (host === this.bootstrap.host && port === this.bootstrap.port)) return (this.coordinator = this.bootstrap);
    if (this.closed) throw new RunnelError("CLIENT_CLOSED", "the group member is closed");
    const connectTimeoutMs = Math.min(this.options.connectTimeoutMs ?? 10_000, COORDINATOR_CONNECT_TIMEOUT_MS_MAX);
    return (this.coordinator = new Connection({ ...this.options, broker: `${host.includes(":") ? `[${host}]` : host}:${port}`, connectTimeoutMs }));
  }

  /** The coordinator moved (or died): the next request asks again. */
  private forget(connection: Connection | null): void {
    if (connection === null || connection !== this.coordinator) return;
    this.coordinator = null;
    if (connection !== this.bootstrap) void connection.close().catch(() => undefined);
  }
}
