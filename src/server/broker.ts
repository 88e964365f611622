/**
 * @module server/broker
 * The broker: opens the log and the consumer-offset store, listens with Bun.listen, owns the
 * connections, and stops cleanly.
 *
 * Connection limit: a connection past `connectionsMax` gets one TOO_MANY_CONNECTIONS error frame
 * (`id: null`) and is closed. Timeouts: one sweep timer checks every connection's idle and
 * partial-frame clocks. Shutdown (`stop`): stop accepting, end long polls early, answer what is
 * in flight (bounded by shutdownTimeoutMs), then close connections, the offset store and the log
 * (which flushes and writes the clean-shutdown marker).
 */
import type { Socket, TCPSocketListener } from "bun";
import packageJson from "../../package.json" with { type: "json" };
import { coordinatedGroups } from "../broker/groups.ts";
import { type BrokerMetrics, createBrokerMetrics } from "../broker/metrics.ts";
import { timedStorage } from "../broker/timed-storage.ts";
import { type GroupRuntime, startGroupRuntime } from "../broker/group-runtime.ts";
import type { Config } from "../config.ts";
import { bufferedBytesBudget, httpPortOf, topicDefaultsOf } from "../config.ts";
import { type ListenerName, type ListenerTls, loadTlsSettings, sameTls, type TlsSettings } from "./tls.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import type { LogManager, RecoverySummary } from "../log/api.ts";
import { openLogManager } from "../log/log-manager.ts";
import { nativeStorage, type Storage } from "../log/storage.ts";
import { BrokerView } from "../listeners/http/broker-view.ts";
import { type HttpListener, startHttpListener } from "../listeners/http/server.ts";
import type { Logger } from "../logger.ts";
import { libc } from "../native/libc.ts";
import { createRequestDecoder, encodeErrorFrame, requestSchemas } from "../protocol/messages.ts";
import { API_KEYS } from "../listeners/kafka/definitions.ts";
import { KafkaListener } from "../listeners/kafka/listener.ts";
import { Connection } from "./connection.ts";
import type { BrokerContext } from "./context.ts";
import { MemoryBudget } from "./memory-budget.ts";
import { ReadTurns } from "./read-turns.ts";
import { CreateQuota } from "./create-quota.ts";
import { type CommittedOffsets, OffsetStore } from "../broker/offset-store.ts";
import { ReplicatedOffsets } from "../cluster/replicated-offsets.ts";
import { PartitionNotifier } from "../broker/partition-notifier.ts";
import { ProducerIdAllocator } from "../broker/producer-ids.ts";
import type { ClusterView } from "../cluster/cluster-view.ts";
import { ReplicaManager } from "../cluster/replica-manager.ts";
import { type BrokerStats, createStats } from "./stats.ts";
import { AclStore } from "../security/acl-store.ts";
import { adoptClientCertificate } from "../security/certificate-principal.ts";
import { Authenticator } from "../security/authenticator.ts";
import { parseClusterUrl } from "../cluster/cluster-url.ts";
import { etcdAccessOf } from "../cluster/cluster-tls.ts";
import { EtcdClusterView } from "../cluster/etcd-cluster-view.ts";
import { drainLeadership } from "../cluster/controlled-shutdown.ts";
import { followAssignments } from "../cluster/local-replicas.ts";
import { WorkerPool } from "./workers/worker-pool.ts";

type SocketData = { connection: Connection | null };

export interface Broker {
  readonly host: string;
  readonly port: number;
  readonly context: BrokerContext;
  readonly recovery: RecoverySummary;
  readonly stats: BrokerStats;
  /** The HTTP listener's address (metrics, health, console); null when it is off. */
  readonly http: { host: string; port: number } | null;
  /** The Kafka listener's port, or null when it is off (kafkaPort -1). */
  readonly kafkaPort: number | null;
  /** Stops accepting, answers in-flight requests, closes everything. Idempotent. */
  stop(): Promise<void>;
  /**
   * Serves new TLS settings (SIGHUP) to new connections; established ones keep theirs. Returns
   * the listeners that changed. A listener cannot switch between plaintext and TLS this way
   * without its clients noticing, but it is allowed: the operator asked for it.
   */
  reloadTls(next: TlsSettings): ListenerName[];
  /** The network workers (`networkWorkers` > 1: server/workers/); null when the main thread owns the connections. */
  readonly workers: WorkerPool | null;
}

export interface BrokerOptions {
  config: Config;
  logger: Logger;
  /** The log's file seam; tests inject faults (EIO, ENOSPC) through it. Native by default. */
  storage?: Storage;
  /** The cluster this broker joins (cluster/cluster-view.ts); absent for a single node. */
  cluster?: ClusterView;
}

function sweepIntervalMs(config: Config): number {
  const shortest = Math.min(config.frameTimeoutMs, config.idleTimeoutMs > 0 ? config.idleTimeoutMs : Number.POSITIVE_INFINITY);
  return Math.max(25, Math.min(1_000, Math.floor(shortest / 4)));
}

export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const { config, logger } = options;
  // Certificates first: a bad file stops start-up before anything listens or opens.
  const tls = loadTlsSettings(config);
  // The HTTP listener comes first: /health answers and /ready says 503 during a long recovery.
  const httpPort = httpPortOf(config);
  const metrics = httpPort === null ? null : createBrokerMetrics(Object.keys(requestSchemas), Object.keys(API_KEYS));
  const view = new BrokerView(packageJson.version, config.dataDir);
  view.authenticationRequired = config.authentication === "scram";
  const http = httpPort === null ? null : listenHttp(config, httpPort, view, logger, tls.http);
  const storage = options.storage ?? nativeStorage;
  let log: LogManager;
  try {
    log = await openLogManager({
      dataDir: config.dataDir,
      topicDefaults: topicDefaultsOf(config),
      openSegmentsMax: config.openSegmentsMax,
      preallocateBytesMax: config.preallocateBytesMax,
      logger,
      storage: metrics === null ? storage : timedStorage(storage, metrics.fdatasync),
    });
  } catch (error) {
    await http?.stop();
    throw error;
  }
  let offsets: OffsetStore;
  let producerIds: ProducerIdAllocator;
  let acls: AclStore;
  let authenticator: Authenticator;
  try {
    acls = AclStore.open(config.dataDir);
    authenticator = Authenticator.open(config, logger);
    producerIds = ProducerIdAllocator.open(config.dataDir);
    if (config.cluster !== "") producerIds.expectCluster();
    offsets = OffsetStore.open(config.dataDir, { entriesMax: config.committedOffsetsMax, logger });
  } catch (error) {
    await log.close();
    await http?.stop();
    throw error;
  }
  await forgetOffsetsOfMissingTopics(offsets, log, logger);
  log.startBackgroundTasks({ retentionCheckIntervalMs: config.retentionCheckIntervalMs });
  const broker = new RunningBroker(config, logger, log, offsets, producerIds, { metrics, view, http }, tls, acls, authenticator, options.cluster ?? null);
  try {
    broker.listen();
    if (config.networkWorkers > 1) await broker.startNetworkWorkers();
    // After listen: the membership record carries the ports the listeners really got.
    if (config.cluster !== "") await broker.joinCluster();
    return broker;
  } catch (error) {
    // The port is taken (or the address is not ours): close the log cleanly, so its lock is
    // released and the next start is a clean one, then report the listen error as it came.
    await broker.stop();
    throw error;
  }
}

/** The local store, but every group request is COORDINATOR_NOT_AVAILABLE (retriable): cluster mode before joinCluster. */
function notCoordinatingYet(store: OffsetStore): CommittedOffsets {
  const refuse = (): never => {
    throw new RunnelError("COORDINATOR_NOT_AVAILABLE", "this broker has not joined its cluster yet");
  };
  return {
    get size() {
      return store.size;
    },
    requireCoordinator: refuse,
    fetch: refuse,
    fetchAll: refuse,
    committedGroups: () => [],
    committedTopics: () => new Set(),
    isTopicBeingRemoved: () => false,
    commit: () => Promise.reject(new RunnelError("COORDINATOR_NOT_AVAILABLE", "this broker has not joined its cluster yet")),
    removeTopic: (topic, afterRemoval) => store.removeTopic(topic, afterRemoval),
    removeGroup: () => Promise.reject(new RunnelError("COORDINATOR_NOT_AVAILABLE", "this broker has not joined its cluster yet")),
    close: () => Promise.resolve(),
  };
}

/** Starts the HTTP listener; a port it cannot take stops start-up with a line naming the option. */
function listenHttp(config: Config, port: number, view: BrokerView, logger: Logger, tls: ListenerTls | null): HttpListener {
  try {
    return startHttpListener({ host: config.httpHost, port, view, logger, tls });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = code === "EADDRINUSE" ? "the port is in use" : error instanceof Error ? error.message : String(error);
    throw new Error(`cannot listen for HTTP on ${config.httpHost}:${port}: ${reason}${typeof code === "string" ? ` [${code}]` : ""}; choose another --http-port, or -1 to turn the HTTP listener off`);
  }
}

/** The HTTP side of a running broker: metrics the data path feeds, what the listener reads, the listener. */
interface Observability {
  metrics: BrokerMetrics | null;
  view: BrokerView;
  http: HttpListener | null;
}

/**
 * Committed offsets of a topic that no longer exists are removed at start. deleteTopic removes
 * them before the topic's data, except on a full disk (handlers/topics.ts), and a crash between
 * the two steps must not leave offsets to greet a topic created again under the same name.
 * A failure here is logged, not fatal: the next start tries again.
 */
async function forgetOffsetsOfMissingTopics(offsets: OffsetStore, log: LogManager, logger: Logger): Promise<void> {
  const existing = new Set(log.listTopics());
  for (const topic of offsets.committedTopics()) {
    if (existing.has(topic)) continue;
    try {
      await offsets.removeTopic(topic);
      logger.info({ topic }, "forgot the committed offsets of a topic that no longer exists");
    } catch (error) {
      logger.warn({ topic, error: toRunnelError(error).message }, "could not forget the committed offsets of a deleted topic; the next start tries again");
    }
  }
}

class RunningBroker implements Broker {
  readonly context: BrokerContext;
  readonly stats = createStats();
  private readonly connections = new Set<Connection>();
  private listener: TCPSocketListener<SocketData> | null = null;
  /** Native listeners replaced by a TLS reload: no longer accepting, their connections still open. */
  private readonly retired: TCPSocketListener<SocketData>[] = [];
  private kafka: KafkaListener | null = null;
  /** With networkWorkers > 1 the workers own the native connections (server/workers/). */
  workers: WorkerPool | null = null;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private shuttingDown = false;
  private stopping: Promise<void> | null = null;
  private settledWaiter: (() => void) | null = null;
  private readonly groups: GroupRuntime;
  /** This broker's view of its cluster (cluster mode only; etcd's or, in tests, a static one). */
  private clusterView: ClusterView | null;
  /** The etcd view when this broker joined an etcd cluster (cluster/etcd-cluster-view.ts). */
  private etcdView: EtcdClusterView | null = null;
  /** The data plane over clusterView (cluster/replica-manager.ts); null on a single node. */
  private replicaManager: ReplicaManager | null;
  private stopFollowing: (() => void) | null = null;
  /** Cluster mode, once joined: committed offsets in __consumer_offsets (cluster/replicated-offsets.ts). */
  private replicatedOffsets: ReplicatedOffsets | null = null;
  /** Until an etcd cluster is joined no broker is known to coordinate a group: the local store, refusing group requests. */
  private readonly offsetsBeforeJoin: CommittedOffsets;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly log: LogManager,
    private readonly offsets: OffsetStore,
    producerIds: ProducerIdAllocator,
    private readonly observability: Observability,
    private tls: TlsSettings,
    acls: AclStore,
    authenticator: Authenticator,
    cluster: ClusterView | null,
  ) {
    this.groups = startGroupRuntime(config, log);
    this.offsetsBeforeJoin = config.cluster === "" ? offsets : notCoordinatingYet(offsets);
    const notifier = new PartitionNotifier(config.fetchWaitersMax);
    this.clusterView = cluster;
    this.replicaManager = cluster === null ? null : new ReplicaManager({ view: cluster, log, config, logger, notifier });
    const owner = this;
    this.context = {
      config,
      get offsets(): CommittedOffsets {
        return owner.replicatedOffsets ?? owner.offsetsBeforeJoin;
      },
      get coordinators(): ReplicatedOffsets | null {
        return owner.replicatedOffsets;
      },
      get advertised(): { host: string; port: number } {
        return { host: config.kafkaAdvertisedHost || owner.host, port: owner.port };
      },
      log,
      notifier,
      producerIds,
      groups: this.groups.coordinator,
      heartbeatWaits: this.groups.waits,
      stats: this.stats,
      memory: new MemoryBudget(bufferedBytesBudget(config)),
      readTurns: new ReadTurns(),
      logger,
      startedAtMs: Date.now(),
      zeroCopy: config.zeroCopy && libc.sendfile !== null,
      isShuttingDown: () => this.shuttingDown,
      metrics: observability.metrics,
      createQuota: new CreateQuota(config.partitionCreatesPerSecond, config.partitionCreatesBurst),
      acls,
      authenticator,
      // Getters: in etcd mode the view and the data plane exist only once joinCluster has run.
      get cluster(): ClusterView | null {
        return owner.clusterView;
      },
      get replication(): ReplicaManager | null {
        return owner.replicaManager;
      },
    };
  }

  get http(): { host: string; port: number } | null {
    const listener = this.observability.http;
    return listener === null ? null : { host: listener.host, port: listener.port };
  }

  get host(): string {
    return this.listener?.hostname ?? this.config.host;
  }

  get port(): number {
    return this.workers?.port ?? this.listener?.port ?? this.config.port;
  }

  get kafkaPort(): number | null {
    return this.kafka?.port ?? null;
  }

  get recovery(): RecoverySummary {
    return this.log.recovery;
  }

  listen(): this {
    // With network workers they listen (startNetworkWorkers), not the main thread.
    if (this.config.networkWorkers === 1) this.listener = this.openNativeListener(this.config.port);
    this.context.replication?.start();
    // A view given at construction (tests' StaticClusterView): its topics reach the log as etcd's do.
    if (this.clusterView !== null) this.stopFollowing = followAssignments(this.clusterView, this.context);
    this.sweepTimer = setInterval(() => this.sweep(), sweepIntervalMs(this.config));
    if (this.config.kafkaPort !== -1) this.listenKafka();
    this.showReady();
    return this;
  }

  /**
   * networkWorkers > 1: the workers take the native port (reusePort) and own its connections;
   * this thread keeps the log (server/workers/worker-pool.ts). Native TLS stays single-threaded.
   */
  async startNetworkWorkers(): Promise<void> {
    if (this.tls.native !== null) throw new Error("networkWorkers > 1 does not serve TLS on the native listener yet; set networkWorkers to 1 or serve TLS on the Kafka listener");
    const decode = createRequestDecoder(this.config.frameBytesMax);
    this.workers = await WorkerPool.start({ context: this.context, decode, logger: this.logger, onSettled: () => this.settledWaiter?.() }, this.config.networkWorkers);
    this.observability.view.listeners[0] = { name: "native", address: `${this.host}:${this.port}` };
    this.logger.info({ networkWorkers: this.workers.workerCount, port: this.port }, "network workers listening");
  }

  /** Joins the etcd cluster named by `cluster` (BROKER_ID_IN_USE, CLUSTER_UNAVAILABLE when it cannot). */
  async joinCluster(): Promise<void> {
    const address = parseClusterUrl(this.config.cluster);
    const kafkaPort = this.kafkaPort === null ? null : this.config.kafkaAdvertisedPort || this.kafkaPort;
    const view = await EtcdClusterView.start({
      endpoints: address.endpoints,
      cluster: address.cluster,
      self: { brokerId: this.config.brokerId, host: this.config.advertisedHost || this.config.kafkaAdvertisedHost || this.host, port: this.config.advertisedPort || this.port, kafkaPort },
      leaseTtlMs: this.config.clusterLeaseTtlMs,
      fenceMarginMs: this.config.clusterFenceMarginMs,
      access: etcdAccessOf(this.config, address.endpoints[0]?.startsWith("https:") === true),
      member: { storage: nativeStorage, dataDir: this.config.dataDir, acceptDataLoss: this.config.clusterAcceptDataLoss },
      logger: this.logger,
      leaderBalance: { autoLeaderRebalance: this.config.autoLeaderRebalanceEnable, imbalanceCheckIntervalMs: this.config.leaderImbalanceCheckIntervalMs },
    });
    this.etcdView = view;
    this.clusterView = view;
    await this.context.producerIds.useCluster(view);
    this.replicaManager = new ReplicaManager({ view, log: this.log, config: this.config, logger: this.logger, notifier: this.context.notifier });
    this.replicaManager.start();
    this.replicatedOffsets = new ReplicatedOffsets({ view, log: this.log, config: this.config, logger: this.logger, notifier: this.context.notifier, replication: () => this.replicaManager });
    this.observability.view.groups = coordinatedGroups(this.groups.coordinator, this.replicatedOffsets);
    this.stopFollowing = followAssignments(view, this.context);
    this.logger.info({ cluster: address.cluster, brokerId: this.config.brokerId, brokers: view.brokers().length, controller: view.controllerId() }, "joined the cluster");
  }

  /** The native listener, with TLS when configured (its connections then take the copy path). */
  private openNativeListener(port: number): TCPSocketListener<SocketData> {
    const decode = createRequestDecoder(this.config.frameBytesMax);
    const hooks = { onSettled: () => this.settledWaiter?.() };
    const tls = this.tls.native;
    return Bun.listen<SocketData>({
      hostname: this.config.host,
      port,
      data: { connection: null },
      ...(tls === null ? {} : { tls }),
      socket: {
        binaryType: "uint8array",
        open: (socket) => this.accept(socket, decode, hooks, tls !== null),
        data: (socket, chunk) => socket.data.connection?.onData(chunk),
        drain: (socket) => socket.data.connection?.onDrain(),
        close: (socket) => this.forget(socket),
        error: (socket, error) => {
          this.logger.debug({ err: error, peer: `${socket.remoteAddress}:${socket.remotePort}` }, "socket error");
          this.forget(socket);
        },
        handshake: (socket, authorized, error) => {
          // Bun closes a socket whose client certificate failed verification; say why first.
          if (!authorized && tls?.requestCert === true) this.logger.info({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: error?.message }, "TLS client refused: no valid client certificate");
          // A verified client certificate names the connection's principal (mutual TLS).
          const connection = socket.data?.connection;
          if (tls?.requestCert === true && connection) adoptClientCertificate(connection.session, socket, authorized);
        },
      },
    });
  }

  /**
   * SIGHUP with new certificates: listeners whose TLS changed start serving the new ones to new
   * connections; established connections keep their session. Bun cannot swap the certificates
   * of a listening socket (listener.reload takes handlers only), so the listener is replaced:
   * the old one stops accepting (its connections stay open) and a new one takes the same port.
   */
  reloadTls(next: TlsSettings): ListenerName[] {
    const changed: ListenerName[] = [];
    if (this.listener !== null && !sameTls(this.tls.native, next.native)) {
      this.replaceNativeListener(this.listener, next.native);
      changed.push("native");
    }
    if (this.kafka !== null && !sameTls(this.tls.kafka, next.kafka)) {
      this.kafka.reloadTls(next.kafka, this.tls.kafka);
      this.tls = { ...this.tls, kafka: next.kafka };
      changed.push("kafka");
    }
    const http = this.observability.http;
    if (http !== null && !sameTls(this.tls.http, next.http)) {
      http.reloadTls(next.http, this.tls.http);
      this.tls = { ...this.tls, http: next.http };
      changed.push("http");
    }
    return changed;
  }

  private listenKafka(): void {
    const { config } = this;
    this.kafka = new KafkaListener(this.context, {
      host: config.kafkaHost,
      port: config.port === 0 ? 0 : config.kafkaPort,
      advertisedHost: config.kafkaAdvertisedHost,
      advertisedPort: config.kafkaAdvertisedPort,
      tls: this.tls.kafka,
      onSettled: () => this.settledWaiter?.(),
    });
  }

  /** Hands the HTTP listener what it reads, then turns /ready to 200. */
  private showReady(): void {
    const view = this.observability.view;
    view.context = this.context;
    view.groups = coordinatedGroups(this.groups.coordinator, this.offsets);
    view.listeners = [{ name: "native", address: `${this.host}:${this.port}` }];
    const http = this.http;
    if (http !== null) view.listeners.push({ name: "http", address: `${http.host}:${http.port}` });
    if (this.kafka !== null && this.kafkaPort !== null) view.listeners.push({ name: "kafka", address: `${this.config.kafkaHost}:${this.kafkaPort}` });
    view.phase = "ready";
  }

  /** The swap of reloadTls; if the port cannot be taken again, the old certificates come back. */
  private replaceNativeListener(previous: TCPSocketListener<SocketData>, next: ListenerTls | null): void {
    const port = previous.port;
    const previousTls = this.tls.native;
    previous.stop(false);
    this.tls = { ...this.tls, native: next };
    try {
      this.listener = this.openNativeListener(port);
    } catch (error) {
      this.tls = { ...this.tls, native: previousTls };
      this.listener = this.openNativeListener(port);
      throw error;
    } finally {
      this.retired.push(previous);
    }
  }

  private accept(socket: Socket<SocketData>, decode: ReturnType<typeof createRequestDecoder>, hooks: { onSettled: () => void }, tls: boolean): void {
    if (this.connections.size >= this.config.connectionsMax || this.shuttingDown) {
      this.stats.connectionsRejected++;
      const code = this.shuttingDown ? "SHUTTING_DOWN" : "TOO_MANY_CONNECTIONS";
      socket.data = { connection: null };
      socket.write(encodeErrorFrame(null, new RunnelError(code, `the broker is at its limit of ${this.config.connectionsMax} connections`)));
      socket.end();
      return;
    }
    socket.setNoDelay(true);
    // sendfile writes past a user-space TLS session: TLS connections take the copy path.
    const connection = new Connection(socket as Socket<unknown>, this.context, decode, hooks, this.context.zeroCopy && !tls);
    socket.data = { connection };
    this.connections.add(connection);
    this.stats.connectionsAccepted++;
    this.stats.connectionsOpen = this.openConnections();
  }

  private forget(socket: Socket<SocketData>): void {
    const connection = socket.data?.connection;
    if (!connection) return;
    connection.onClose();
    this.connections.delete(connection);
    this.stats.connectionsOpen = this.openConnections();
  }

  /** Native connections: the main thread's own plus the network workers'. */
  private openConnections(): number {
    return this.connections.size + (this.workers?.connectionCount ?? 0);
  }

  private sweep(): void {
    const nowMs = Date.now();
    for (const connection of this.connections) {
      connection.checkTimeouts(nowMs);
      // A connection closed here may never get its socket close callback (a vanished peer).
      if (connection.isClosed) this.connections.delete(connection);
    }
    this.stats.connectionsOpen = this.openConnections();
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    // Controlled shutdown first, still serving: leadership moves while clients can follow it.
    if (this.etcdView !== null) await drainLeadership(this.etcdView, this.config.controlledShutdownTimeoutMs, this.logger);
    this.shuttingDown = true;
    this.observability.view.phase = "stopping";
    this.listener?.stop(false);
    this.workers?.stopAccepting();
    this.kafka?.stop(false);
    // Leave the cluster first: the lease is revoked, so the controller moves leadership at once.
    this.stopFollowing?.();
    await this.etcdView?.close();
    this.context.notifier.wakeAll();
    this.groups.stop();
    await this.context.replication?.stop();
    await this.waitForQuiet(this.config.shutdownTimeoutMs);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.context.memory.close();
    for (const connection of [...this.connections]) connection.close();
    this.connections.clear();
    this.listener?.stop(true);
    for (const retired of this.retired) retired.stop(true);
    this.kafka?.stop(true);
    await this.workers?.close();
    await this.replicatedOffsets?.close();
    await this.offsets.close();
    await this.log.close();
    await this.observability.http?.stop();
  }

  /** Resolves when every connection is quiet, or after `timeoutMs`. */
  private async waitForQuiet(timeoutMs: number): Promise<void> {
    const allQuiet = () => [...this.connections].every((connection) => connection.isQuiet || connection.isClosed) && (this.kafka?.isQuiet ?? true) && (this.workers?.isQuiet ?? true);
    if (allQuiet()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      this.settledWaiter = () => {
        if (allQuiet()) finish();
      };
    });
    this.settledWaiter = null;
  }
}
