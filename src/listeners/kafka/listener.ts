/**
 * @module listeners/kafka/listener
 * The Kafka listener: a second TCP listener beside the native one, on the same broker context
 * (same log, producer ids, notifier, limits, memory budget). Started and stopped by
 * server/broker.ts when kafkaPort is not -1. Connections count against connectionsMax together
 * with nothing else yet: the Kafka listener keeps its own set, bounded by the same number.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { BrokerContext } from "../../server/context.ts";
import { KafkaConnection } from "./connection.ts";
import type { KafkaContext } from "./context.ts";

type SocketData = { connection: KafkaConnection | null };

export interface KafkaListenerOptions {
  host: string;
  port: number;
  /** What Metadata reports; empty / 0 = the listening host / port. */
  advertisedHost: string;
  advertisedPort: number;
  /** Told when a connection's waiting request settles or its answers drain (the broker's drain at stop). */
  onSettled?: () => void;
}

export class KafkaListener {
  private readonly connections = new Set<KafkaConnection>();
  private readonly listener: TCPSocketListener<SocketData>;
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  readonly context: KafkaContext;
  private readonly stopping = new AbortController();
  private readonly onSettled: () => void;

  constructor(broker: BrokerContext, options: KafkaListenerOptions) {
    this.onSettled = options.onSettled ?? (() => {});
    this.listener = Bun.listen<SocketData>({
      hostname: options.host,
      port: options.port,
      data: { connection: null },
      socket: {
        binaryType: "uint8array",
        open: (socket) => this.accept(socket),
        data: (socket, chunk) => socket.data.connection?.onData(chunk),
        drain: (socket) => socket.data.connection?.onDrain(),
        close: (socket) => this.forget(socket),
        error: (socket) => this.forget(socket),
      },
    });
    this.context = {
      broker,
      nodeId: 0,
      advertisedHost: options.advertisedHost === "" ? options.host : options.advertisedHost,
      advertisedPort: options.advertisedPort === 0 ? this.listener.port : options.advertisedPort,
      clusterId: "runnel",
      stopping: this.stopping.signal,
    };
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(25, Math.min(1_000, Math.floor(broker.config.frameTimeoutMs / 4))));
    this.sweepTimer.unref();
  }

  get host(): string {
    return this.listener.hostname;
  }

  get port(): number {
    return this.listener.port;
  }

  /** True when no connection has a request in hand or answers queued. */
  get isQuiet(): boolean {
    return [...this.connections].every((connection) => connection.isQuiet || connection.isClosed);
  }

  private accept(socket: Socket<SocketData>): void {
    if (this.connections.size >= this.context.broker.config.connectionsMax || this.context.broker.isShuttingDown()) {
      socket.data = { connection: null };
      socket.end();
      return;
    }
    socket.setNoDelay(true);
    const connection = new KafkaConnection(socket as Socket<unknown>, this.context, this.onSettled);
    socket.data = { connection };
    this.connections.add(connection);
  }

  private forget(socket: Socket<SocketData>): void {
    const connection = socket.data?.connection;
    if (!connection) return;
    connection.onClose();
    this.connections.delete(connection);
  }

  private sweep(): void {
    const nowMs = Date.now();
    for (const connection of this.connections) {
      connection.checkTimeouts(nowMs);
      if (connection.isClosed) this.connections.delete(connection);
    }
  }

  /** Stops accepting (`closeConnections` false) or also closes every connection. */
  stop(closeConnections: boolean): void {
    // Requests waiting on other clients (a JoinGroup waiting for the group) answer now, so the broker drains.
    this.stopping.abort();
    if (!closeConnections) return this.listener.stop(false);
    clearInterval(this.sweepTimer);
    for (const connection of this.connections) connection.close("broker stopping");
    this.connections.clear();
    this.listener.stop(true);
  }
}
