/**
 * @module listeners/kafka/listener
 * The Kafka listener: a second TCP listener beside the native one, on the same broker context
 * (same log, producer ids, notifier, limits, memory budget). Started and stopped by
 * server/broker.ts when kafkaPort is not -1. Connections count against connectionsMax together
 * with nothing else yet: the Kafka listener keeps its own set, bounded by the same number.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { BrokerContext } from "../../server/context.ts";
import type { ListenerTls } from "../../server/tls.ts";
import { adoptClientCertificate } from "../../security/certificate-principal.ts";
import { markTlsSession } from "./sasl.ts";
import { KafkaConnection } from "./connection.ts";
import type { KafkaContext } from "./context.ts";

type SocketData = { connection: KafkaConnection | null };

export interface KafkaListenerOptions {
  host: string;
  port: number;
  /** What Metadata reports; empty / 0 = the listening host / port. */
  advertisedHost: string;
  advertisedPort: number;
  /** TLS for this listener (server/tls.ts), or null for plaintext. */
  tls: ListenerTls | null;
  /** Told when a connection's waiting request settles or its answers drain (the broker's drain at stop). */
  onSettled?: () => void;
}

export class KafkaListener {
  private readonly connections = new Set<KafkaConnection>();
  private listener: TCPSocketListener<SocketData>;
  /** Listeners replaced by a TLS reload: no longer accepting, their connections still open. */
  private readonly retired: TCPSocketListener<SocketData>[] = [];
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  readonly context: KafkaContext;
  private readonly stopping = new AbortController();
  private readonly onSettled: () => void;

  constructor(broker: BrokerContext, options: KafkaListenerOptions) {
    this.onSettled = options.onSettled ?? (() => {});
    this.listener = this.open(options.host, options.port, options.tls);
    this.context = {
      broker,
      // Cluster mode: the broker's id, as Metadata lists it among the others.
      nodeId: broker.config.cluster === "" ? 0 : broker.config.brokerId,
      advertisedHost: options.advertisedHost === "" ? options.host : options.advertisedHost,
      advertisedPort: options.advertisedPort === 0 ? this.listener.port : options.advertisedPort,
      clusterId: "runnel",
      stopping: this.stopping.signal,
    };
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(25, Math.min(1_000, Math.floor(broker.config.frameTimeoutMs / 4))));
    this.sweepTimer.unref();
  }

  /**
   * New certificates for new connections (SIGHUP). Bun cannot change a listening socket's TLS,
   * so the old listener stops accepting (its connections stay) and a new one takes the port.
   */
  reloadTls(tls: ListenerTls | null, previousTls: ListenerTls | null): void {
    const previous = this.listener;
    const { hostname, port } = previous;
    previous.stop(false);
    this.retired.push(previous);
    try {
      this.listener = this.open(hostname, port, tls);
    } catch (error) {
      // The port could not be taken again: keep serving with the old certificates.
      this.listener = this.open(hostname, port, previousTls);
      throw error;
    }
  }

  private open(host: string, port: number, tls: ListenerTls | null): TCPSocketListener<SocketData> {
    return Bun.listen<SocketData>({
      hostname: host,
      port,
      data: { connection: null },
      ...(tls === null ? {} : { tls }),
      socket: {
        binaryType: "uint8array",
        open: (socket) => this.accept(socket, tls !== null),
        data: (socket, chunk) => socket.data.connection?.onData(chunk),
        drain: (socket) => socket.data.connection?.onDrain(),
        close: (socket) => this.forget(socket),
        error: (socket) => this.forget(socket),
        handshake: (socket, authorized, error) => {
          // Bun closes a socket whose client certificate failed verification; say why first.
          if (!authorized && tls?.requestCert === true) this.context.broker.logger.info({ peer: `${socket.remoteAddress}:${socket.remotePort}`, listener: "kafka", reason: error?.message }, "TLS client refused: no valid client certificate");
          // A verified client certificate names the connection's principal (mutual TLS).
          const connection = socket.data?.connection;
          if (tls?.requestCert === true && connection) adoptClientCertificate(connection.session, socket, authorized);
        },
      },
    });
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

  private accept(socket: Socket<SocketData>, tls: boolean): void {
    if (this.connections.size >= this.context.broker.config.connectionsMax || this.context.broker.isShuttingDown()) {
      socket.data = { connection: null };
      socket.end();
      return;
    }
    socket.setNoDelay(true);
    // sendfile writes past a user-space TLS session: TLS connections take the copy path.
    const connection = new KafkaConnection(socket as Socket<unknown>, this.context, this.onSettled, this.context.broker.zeroCopy && !tls);
    if (tls) markTlsSession(connection.session);
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
    for (const retired of this.retired) retired.stop(true);
  }
}
