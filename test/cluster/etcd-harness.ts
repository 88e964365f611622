/**
 * @module test/cluster/etcd-harness
 * A real etcd (Debian's etcd-server, /usr/bin/etcd) for the cluster tests: one member on free
 * 127.0.0.1 ports in a temp dir, waited for until healthy, that a test can stop, restart (same
 * data, same ports) or kill -9. Plus a tiny TCP proxy that can cut one link (bytes in both
 * directions are dropped, as on a partitioned network) and heal it; in front of a broker, it can
 * cut one peer's links only (tagged by the client id of their `hello`).
 *
 * `ETCD_BINARY` is null when etcd is missing: tests skip loudly outside CI and fail in CI.
 */
import { decode } from "@msgpack/msgpack";
import type { Socket, TCPSocketListener } from "bun";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const ETCD_BINARY = Bun.which("etcd");

/** Call at the top of each etcd test file: throws in CI when etcd is missing, else warns. */
export function etcdOrSkip(fileName: string): boolean {
  if (ETCD_BINARY !== null) return true;
  if (process.env.CI === "true") throw new Error("etcd is required in CI (apt-get install etcd-server)");
  console.warn(`skipping ${fileName}: etcd is not installed (apt-get install etcd-server)`);
  return false;
}

const HEALTHY_WAIT_MS = 15_000;
/** Starts tried when etcd finds its freshly chosen port taken. */
const PORT_RACE_ATTEMPTS = 3;
const STOP_WAIT_MS = 10_000;

/** A port that was free a moment ago (bound on port 0, then released). */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** An etcd serving its clients over TLS (files: PEM paths); with clientCertAuth it requires client certificates. */
export interface EtcdTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA clients check etcd's certificate against (and, with clientCertAuth, etcd checks theirs). */
  readonly caFile: string;
  readonly clientCertAuth: boolean;
  /** The certificate the harness's own health checks present when clientCertAuth is on. */
  readonly clientCertFile?: string;
  readonly clientKeyFile?: string;
}

export class EtcdServer {
  /** Chosen free at construction; a first start that loses a port race picks new ones (start). */
  clientPort = freePort();
  peerPort = freePort();
  /** Once etcd has run here, restarts must keep its ports (its data names them). */
  private hasRun = false;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-etcd-"));
  private child: ReturnType<typeof Bun.spawn> | null = null;

  constructor(readonly tls: EtcdTlsFiles | null = null) {}

  get endpoint(): string {
    return `${this.tls === null ? "http" : "https"}://127.0.0.1:${this.clientPort}`;
  }

  /** What fetch() needs to reach this etcd (its CA, and the client certificate it requires). */
  fetchTls(): { ca: string; cert?: string; key?: string } | undefined {
    if (this.tls === null) return undefined;
    const ca = fs.readFileSync(this.tls.caFile, "utf8");
    if (this.tls.clientCertFile === undefined || this.tls.clientKeyFile === undefined) return { ca };
    return { ca, cert: fs.readFileSync(this.tls.clientCertFile, "utf8"), key: fs.readFileSync(this.tls.clientKeyFile, "utf8") };
  }

  private tlsArgs(): string[] {
    if (this.tls === null) return [];
    const args = ["--cert-file", this.tls.certFile, "--key-file", this.tls.keyFile];
    // etcd 3.4 asks every client for a certificate once it has a trusted CA, so server-only TLS gives none.
    return this.tls.clientCertAuth ? [...args, "--trusted-ca-file", this.tls.caFile, "--client-cert-auth"] : args;
  }

  /** Starts (or restarts) the member on the same ports and data, and waits until healthy. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startOnce();
        this.hasRun = true;
        return;
      } catch (error) {
        // freePort() released its port before etcd bound it, and another process took it in
        // between: on a first start, choose new ports and try again (a few times at most).
        if (this.hasRun || attempt >= PORT_RACE_ATTEMPTS || !String(error).includes("address already in use")) throw error;
        this.clientPort = freePort();
        this.peerPort = freePort();
        fs.rmSync(path.join(this.dir, "data"), { recursive: true, force: true });
      }
    }
  }

  private async startOnce(): Promise<void> {
    if (this.child !== null) throw new Error("etcd is already running");
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.child = Bun.spawn(
      [
        ETCD_BINARY ?? "etcd",
        "--name", "test",
        "--data-dir", path.join(this.dir, "data"),
        "--listen-client-urls", this.endpoint,
        "--advertise-client-urls", this.endpoint,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", `test=${peer}`,
        "--log-level", "error",
        ...this.tlsArgs(),
      ],
      { stdout: "ignore", stderr: Bun.file(path.join(this.dir, "etcd.log")) },
    );
    try {
      await this.waitHealthy();
    } catch (error) {
      this.child?.kill("SIGKILL");
      await this.child?.exited;
      this.child = null;
      throw error;
    }
  }

  private async waitHealthy(): Promise<void> {
    const deadline = Date.now() + HEALTHY_WAIT_MS;
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null) throw new Error(`etcd exited: ${fs.readFileSync(path.join(this.dir, "etcd.log"), "utf8").slice(-2000)}`);
      try {
        const tls = this.fetchTls();
        const answer = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000), ...(tls === undefined ? {} : { tls }) });
        if (answer.ok && ((await answer.json()) as { health?: string }).health === "true") return;
      } catch {
        // not listening yet
      }
      await Bun.sleep(50);
    }
    throw new Error(`etcd was not healthy within ${HEALTHY_WAIT_MS} ms`);
  }

  /** SIGTERM and wait (or SIGKILL with `signal`). */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WAIT_MS);
    await child.exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * What an in-process test broker needs to join cluster `name` on `etcd`: etcd's shortest lease
 * (2 s, fence margin 0.5 s) so failovers stay short, and no Kafka listener unless a test asks.
 */
export function clusterBrokerOptions(etcd: EtcdServer, name: string, brokerId: number) {
  return { cluster: `etcd://127.0.0.1:${etcd.clientPort}/${name}`, brokerId, kafkaPort: -1, clusterLeaseTtlMs: 2000, clusterFenceMarginMs: 500 };
}

export async function startEtcd(tls: EtcdTlsFiles | null = null): Promise<EtcdServer> {
  const server = new EtcdServer(tls);
  try {
    await server.start();
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
  return server;
}

interface ProxyLink {
  client: Socket<ProxyLink>;
  upstream: Socket<undefined> | null;
  /** Bytes waiting for the upstream (not open yet, or its buffer full). */
  toUpstream: Uint8Array[];
  /** Bytes waiting for the client's buffer to drain. */
  toClient: Uint8Array[];
  /** Cut links drop every byte; healing closes them (their streams have holes). */
  cut: boolean;
  /** With `tagLinks`: the client id the link's first frame (`hello`) named, once it came. */
  tag: string | null;
  /** The client's first bytes, until they hold its first frame. */
  firstBytes: Uint8Array;
}

/** Largest first frame read for its tag (a `hello` is a few dozen bytes). */
const HELLO_BYTES_MAX = 4096;

/**
 * The `clientId` of a native `hello` frame (u32 big-endian length, one msgpack map) at the start
 * of `bytes`: undefined while the frame is incomplete, "" when it is not one.
 */
export function helloClientId(bytes: Uint8Array): string | undefined {
  if (bytes.length < 4) return undefined;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (length > HELLO_BYTES_MAX) return "";
  if (bytes.length < 4 + length) return undefined;
  try {
    const frame = decode(bytes.subarray(4, 4 + length)) as { clientId?: unknown };
    return typeof frame.clientId === "string" ? frame.clientId : "";
  } catch {
    return "";
  }
}

/**
 * A TCP proxy from a free local port to `targetPort`. cut(): from now on bytes in both directions
 * are silently dropped, on open connections and on new ones (a partition, not a refusal: the
 * peer sees nothing, so only its own timeouts notice). heal(): cut connections are closed and
 * new ones pass again.
 */
export class TcpProxy {
  private readonly links = new Set<ProxyLink>();
  private cutNow = false;
  /** Client ids (tags) whose links are cut, with `tagLinks`. */
  private readonly cutTags = new Set<string>();
  private readonly listener: TCPSocketListener<ProxyLink>;

  /**
   * `tagLinks`: each link is tagged with the client id of its first frame (a native `hello`; the
   * replica fetcher says `replica-<brokerId>`), held back until that frame is whole, so
   * cutTag() can cut one peer's links and leave the others.
   */
  constructor(private targetPort: number, private readonly options: { tagLinks?: boolean } = {}) {
    this.listener = Bun.listen<ProxyLink>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (client) => this.open(client),
        data: (client, bytes) => {
          const link = client.data;
          if (link.cut) return;
          link.toUpstream.push(new Uint8Array(bytes));
          if (!this.tagged(link, bytes)) return;
          if (link.upstream !== null) flush(link.upstream, link.toUpstream);
        },
        drain: (client) => flush(client, client.data.toClient),
        close: (client) => this.close(client.data),
        error: (client) => this.close(client.data),
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private open(client: Socket<ProxyLink>): void {
    const link: ProxyLink = { client, upstream: null, toUpstream: [], toClient: [], cut: this.cutNow, tag: this.options.tagLinks === true ? null : "", firstBytes: new Uint8Array(0) };
    client.data = link;
    this.links.add(link);
    if (link.cut) return;
    Bun.connect({
      hostname: "127.0.0.1",
      port: this.targetPort,
      socket: {
        open: (upstream) => {
          link.upstream = upstream;
          if (link.tag !== null) flush(upstream, link.toUpstream);
        },
        data: (_upstream, bytes) => {
          if (link.cut) return;
          link.toClient.push(new Uint8Array(bytes));
          flush(link.client, link.toClient);
        },
        drain: (upstream) => {
          if (link.tag !== null) flush(upstream, link.toUpstream);
        },
        close: () => this.close(link),
        error: () => this.close(link),
      },
    }).catch(() => this.close(link));
  }

  private close(link: ProxyLink | undefined): void {
    if (link === undefined || !this.links.delete(link)) return;
    link.client.end();
    link.upstream?.end();
  }

  /** True once the link's tag is known (at once without `tagLinks`); a link whose tag is cut is cut then. */
  private tagged(link: ProxyLink, bytes: Uint8Array): boolean {
    if (link.tag !== null) return true;
    const joined = new Uint8Array(link.firstBytes.length + bytes.length);
    joined.set(link.firstBytes);
    joined.set(bytes, link.firstBytes.length);
    const tag = helloClientId(joined);
    if (tag === undefined) {
      link.firstBytes = joined;
      return false;
    }
    link.tag = tag;
    link.firstBytes = new Uint8Array(0);
    if (this.cutTags.has(tag)) link.cut = true;
    return !link.cut;
  }

  /** Where new links go from now on (a restarted target listens on a new port). */
  retarget(targetPort: number): void {
    this.targetPort = targetPort;
  }

  cut(): void {
    this.cutNow = true;
    for (const link of this.links) link.cut = true;
  }

  /** Cuts the links (open and new) whose first frame names client id `tag` (needs `tagLinks`). */
  cutTag(tag: string): void {
    this.cutTags.add(tag);
    for (const link of this.links) if (link.tag === tag) link.cut = true;
  }

  heal(): void {
    this.cutNow = false;
    this.cutTags.clear();
    for (const link of [...this.links]) if (link.cut) this.close(link);
  }

  [Symbol.dispose](): void {
    for (const link of [...this.links]) this.close(link);
    this.listener.stop(true);
  }
}

/** Writes what the socket takes; the rest stays queued for its drain callback. */
function flush(socket: Socket<unknown>, queue: Uint8Array[]): void {
  while (queue.length > 0) {
    const head = queue[0] as Uint8Array;
    const written = socket.write(head);
    if (written <= 0) return;
    if (written < head.byteLength) {
      queue[0] = head.subarray(written);
      return;
    }
    queue.shift();
  }
}
