/**
 * A secured cluster (issue 14; docs/cluster.md, "Securing a cluster"): etcd reached over TLS
 * (`etcds://`, its CA, a client certificate when etcd requires one) and with etcd's own
 * authentication (a user whose password is in a file; the token replaced when etcd stops honouring
 * it), and brokers that replicate over mutual TLS, each follower presenting its broker certificate
 * as its principal.
 *
 * Needs `etcd` (Debian etcd-server) and `openssl`; skipped loudly outside CI without etcd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { Admin } from "../../src/client/admin.ts";
import { Consumer } from "../../src/client/consumer.ts";
import type { ClientTls } from "../../src/client/link.ts";
import { Producer } from "../../src/client/producer.ts";
import { fetcherTls } from "../../src/cluster/cluster-tls.ts";
import { parseClusterUrl } from "../../src/cluster/cluster-url.ts";
import { loadEtcdAccess, type EtcdAccessSource } from "../../src/cluster/etcd-access.ts";
import { EtcdGateway, type KeyValue } from "../../src/cluster/etcd-gateway.ts";
import { configSchema } from "../../src/config.ts";
import { RunnelError } from "../../src/errors.ts";
import { spawnBroker, waitFor } from "../durability/broker-process.ts";
import { startTestBroker, type TestBroker, tempDir } from "../server/helpers.ts";
import { makeTestPki, type TestPki } from "../support/tls-certs.ts";
import { type EtcdServer, etcdOrSkip, startEtcd } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("cluster-security.test.ts");
const root = path.resolve(import.meta.dir, "../..");

const NAMES = { caFile: "--ca", certFile: "--cert", keyFile: "--key", user: "--user", passwordFile: "--password-file" };

function source(overrides: Partial<EtcdAccessSource>): EtcdAccessSource {
  return { secure: true, caFile: "", certFile: "", keyFile: "", user: "", passwordFile: "", names: NAMES, ...overrides };
}

async function codeOf(action: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await action();
  } catch (error) {
    if (error instanceof RunnelError) return { code: error.code, message: error.message };
    return { code: "not a RunnelError", message: String(error) };
  }
  return { code: "no error", message: "" };
}

let pki: TestPki;
let dir: string;
let etcdPair: { cert: string; key: string } | null = null;
/**
 * etcd's certificate must allow client use too (extended key usage clientAuth): its gateway dials
 * etcd's own gRPC port presenting it, and is refused otherwise (etcd never becomes healthy).
 */
function etcdCert(): { cert: string; key: string } {
  etcdPair ??= pki.issueBrokerCert("etcd");
  return etcdPair;
}
beforeAll(() => {
  pki = makeTestPki();
  dir = tempDir("runnel-cluster-security-");
});
afterAll(() => {
  pki.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Root-only setup of etcd's authentication through its gateway (before it is enabled, no token). */
async function enableEtcdAuth(etcd: EtcdServer, user: string, password: string): Promise<void> {
  const tls = etcd.fetchTls();
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const post = async (urlPath: string, body: unknown) => {
    const answer = await fetch(`${etcd.endpoint}${urlPath}`, { method: "POST", body: JSON.stringify(body), ...(tls === undefined ? {} : { tls }) });
    if (!answer.ok) throw new Error(`${urlPath}: ${answer.status} ${await answer.text()}`);
  };
  await post("/v3/auth/user/add", { name: "root", password: "root-secret" });
  await post("/v3/auth/role/add", { name: "root" });
  await post("/v3/auth/user/grant", { user: "root", role: "root" });
  await post("/v3/auth/user/add", { name: user, password });
  await post("/v3/auth/role/add", { name: "runnel" });
  // The broker's user may touch Runnel's keys only.
  await post("/v3/auth/role/grant", { name: "runnel", perm: { permType: "READWRITE", key: b64("/runnel/"), range_end: b64("/runnel0") } });
  await post("/v3/auth/user/grant", { user, role: "runnel" });
  await post("/v3/auth/enable", {});
}

describe("etcd access settings", () => {
  test("etcds:// URLs name https endpoints; etcd:// plain http", () => {
    expect(parseClusterUrl("etcds://10.0.0.1:2379,10.0.0.2:2379/prod")).toEqual({ endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], cluster: "prod" });
    expect(parseClusterUrl("etcd://10.0.0.1:2379/prod").endpoints).toEqual(["http://10.0.0.1:2379"]);
  });

  test("each wrong setting is refused at start with the setting's name and what to do", async () => {
    const passwordFile = path.join(dir, "etcd.password");
    fs.writeFileSync(passwordFile, "s3cret\n");
    const emptyFile = path.join(dir, "empty.password");
    fs.writeFileSync(emptyFile, "");
    expect(await codeOf(() => loadEtcdAccess(source({ secure: false, caFile: pki.caCert })))).toEqual({ code: "INVALID_CONFIG", message: expect.stringContaining("use etcds://") });
    expect((await codeOf(() => loadEtcdAccess(source({ certFile: pki.clientCert })))).message).toContain("--key is missing");
    expect((await codeOf(() => loadEtcdAccess(source({ certFile: pki.clientCert, keyFile: pki.serverKey })))).message).toContain("does not belong to --cert");
    expect((await codeOf(() => loadEtcdAccess(source({ caFile: passwordFile })))).message).toContain("not a PEM CA certificate");
    expect((await codeOf(() => loadEtcdAccess(source({ user: "runnel" })))).message).toContain("needs a password");
    expect((await codeOf(() => loadEtcdAccess(source({ passwordFile })))).message).toContain("--user is not");
    expect((await codeOf(() => loadEtcdAccess(source({ user: "runnel", passwordFile: emptyFile })))).message).toContain("is empty");
    expect((await codeOf(() => loadEtcdAccess(source({ user: "runnel", passwordFile: path.join(dir, "missing") })))).message).toContain("cannot be read");
    const access = loadEtcdAccess(source({ caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey, user: "runnel", passwordFile }));
    expect(access.credentials).toEqual({ user: "runnel", password: "s3cret" });
    expect(access.tls?.ca).toContain("-----BEGIN CERTIFICATE");
    expect(access.tls?.key).toContain("PRIVATE KEY");
  });

  test("the replica fetcher uses TLS exactly when the native listener does, with the broker's certificate and the cluster CA", () => {
    const base = { dataDir: dir, logLevel: "silent" };
    expect(fetcherTls(configSchema.parse(base))).toBeNull();
    const broker = pki.issueBrokerCert("broker-x");
    const mutual = fetcherTls(configSchema.parse({ ...base, tlsCert: broker.cert, tlsKey: broker.key, tlsCa: pki.caCert }));
    expect(mutual?.cert).toBe(fs.readFileSync(broker.cert, "utf8"));
    expect(mutual?.ca).toBe(fs.readFileSync(pki.caCert, "utf8"));
    const serverOnly = fetcherTls(configSchema.parse({ ...base, tlsCert: broker.cert, tlsKey: broker.key }));
    expect(serverOnly?.ca).toBeUndefined();
    const ownCa = fetcherTls(configSchema.parse({ ...base, tlsCert: broker.cert, tlsKey: broker.key, clusterTlsCa: pki.caCert }));
    expect(ownCa?.ca).toBe(fs.readFileSync(pki.caCert, "utf8"));
  });
});

describe.skipIf(!HAVE_ETCD)("etcd over TLS with authentication", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd({ certFile: etcdCert().cert, keyFile: etcdCert().key, caFile: pki.caCert, clientCertAuth: false });
    await enableEtcdAuth(etcd, "runnel", "runnel-pw");
  });
  afterAll(async () => {
    await etcd?.[Symbol.asyncDispose]();
  });

  const secured = (password = "runnel-pw", withCa = true) =>
    new EtcdGateway({
      endpoints: [etcd.endpoint],
      requestTimeoutMs: 3000,
      access: { tls: withCa ? { ca: fs.readFileSync(pki.caCert, "utf8") } : null, credentials: { user: "runnel", password } },
    });

  test("reads, writes, leases and watches work, and a token etcd forgot (restart) is replaced without the caller noticing", async () => {
    const gateway = secured();
    await gateway.put("/runnel/sec/a", "1");
    expect((await gateway.range("/runnel/sec/a")).kvs.map((kv) => kv.value)).toEqual(["1"]);
    const lease = await gateway.leaseGrant(5);
    expect(await gateway.leaseKeepAlive(lease.id)).toBeGreaterThan(0);
    const seen: KeyValue[] = [];
    const watch = gateway.watchPrefix("/runnel/sec/", { onSnapshot: (kvs) => seen.push(...kvs), onEvents: (events) => seen.push(...events.map((event) => event.kv)) });
    try {
      // etcd's simple tokens live in the member's memory: after a restart every token is unknown (HTTP 401).
      await etcd.restart();
      await gateway.put("/runnel/sec/b", "2");
      expect((await gateway.range("/runnel/sec/", { prefix: true })).kvs.map((kv) => kv.value)).toEqual(["1", "2"]);
      const deadline = Date.now() + 15_000;
      while (!seen.some((kv) => kv.key === "/runnel/sec/b") && Date.now() < deadline) await Bun.sleep(50);
      expect(seen.map((kv) => kv.key)).toContain("/runnel/sec/b");
    } finally {
      await watch.close();
    }
    // The role reaches Runnel's keys only: etcd itself refuses the rest.
    expect((await codeOf(() => gateway.put("/elsewhere", "x"))).message).toContain("permission denied");
  }, 40_000);

  test("a wrong password is refused with the user's name and never the password; an untrusted certificate names the CA setting", async () => {
    const wrong = await codeOf(() => secured("not-the-password").range("/runnel/x"));
    expect(wrong.code).toBe("CLUSTER_UNAVAILABLE");
    expect(wrong.message).toContain('refused user "runnel"');
    expect(wrong.message).not.toContain("not-the-password");
    const untrusted = await codeOf(() => secured("runnel-pw", false).range("/runnel/x"));
    expect(untrusted.code).toBe("CLUSTER_UNAVAILABLE");
    expect(untrusted.message).toContain("not trusted");
  });

  test("`runnel cluster status` reads a secured etcd with --etcd-ca, --etcd-user and RUNNEL_ETCD_PASSWORD", async () => {
    const run = (password: string) =>
      Bun.spawnSync([process.execPath, "src/main.ts", "cluster", "status", "--cluster", `etcds://127.0.0.1:${etcd.clientPort}/empty`, "--etcd-ca", pki.caCert, "--etcd-user", "runnel", "--format", "json"], {
        cwd: root,
        env: { ...process.env, RUNNEL_ETCD_PASSWORD: password },
      });
    const ok = run("runnel-pw");
    expect(ok.stderr.toString()).toBe("");
    expect(JSON.parse(ok.stdout.toString()).cluster).toBe("empty");
    expect(ok.exitCode).toBe(0);
    const refused = run("wrong");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr.toString()).toContain('refused user "runnel"');
  });
});

describe.skipIf(!HAVE_ETCD)("etcd requiring client certificates", () => {
  test("a gateway with a client certificate gets in; without one the refusal says which settings decide it", async () => {
    const client = pki.issueClientCert("etcd-client");
    await using etcd = await startEtcd({ certFile: etcdCert().cert, keyFile: etcdCert().key, caFile: pki.caCert, clientCertAuth: true, clientCertFile: client.cert, clientKeyFile: client.key });
    const ca = fs.readFileSync(pki.caCert, "utf8");
    const withCert = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 3000, access: { tls: { ca, cert: fs.readFileSync(client.cert, "utf8"), key: fs.readFileSync(client.key, "utf8") }, credentials: null } });
    await withCert.put("/runnel/mtls/a", "1");
    expect((await withCert.range("/runnel/mtls/a")).kvs[0]?.value).toBe("1");
    const without = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 3000, access: { tls: { ca }, credentials: null } });
    const refused = await codeOf(() => without.range("/runnel/mtls/a"));
    expect(refused.code).toBe("CLUSTER_UNAVAILABLE");
    expect(refused.message).toContain("--cluster-etcd-cert");
  }, 30_000);
});

describe.skipIf(!HAVE_ETCD)("a cluster secured end to end", () => {
  test("brokers join through etcd over TLS with a password, replicate over mutual TLS, and a replicated write survives its leader's stop", async () => {
    await using etcd = await startEtcd({ certFile: etcdCert().cert, keyFile: etcdCert().key, caFile: pki.caCert, clientCertAuth: false });
    await enableEtcdAuth(etcd, "broker", "broker-etcd-pw");
    const passwordFile = path.join(dir, "broker-etcd.password");
    fs.writeFileSync(passwordFile, "broker-etcd-pw\n");
    const admin = pki.issueClientCert("admin");
    const clientTls: ClientTls = { ca: fs.readFileSync(pki.caCert, "utf8"), cert: fs.readFileSync(admin.cert, "utf8"), key: fs.readFileSync(admin.key, "utf8") };
    const secureBroker = (brokerId: number, overrides: Record<string, unknown> = {}): Promise<TestBroker> => {
      const own = pki.issueBrokerCert(`broker-${brokerId}`);
      return startTestBroker({
        cluster: `etcds://127.0.0.1:${etcd.clientPort}/secure`,
        brokerId,
        kafkaPort: -1,
        clusterLeaseTtlMs: 2000,
        clusterFenceMarginMs: 500,
        clusterEtcdCa: pki.caCert,
        clusterEtcdUser: "broker",
        clusterEtcdPasswordFile: passwordFile,
        // Mutual TLS on the native listener: every client, followers too, shows a certificate.
        tlsCert: own.cert,
        tlsKey: own.key,
        tlsCa: pki.caCert,
        authorizer: "acl",
        superUsers: "broker-1,broker-2,broker-3,admin",
        ...overrides,
      });
    };

    // A wrong etcd password stops start-up: nothing is joined.
    const wrongFile = path.join(dir, "wrong.password");
    fs.writeFileSync(wrongFile, "nope\n");
    const refused = await codeOf(() => secureBroker(9, { clusterEtcdPasswordFile: wrongFile }));
    expect(refused).toEqual({ code: "CLUSTER_UNAVAILABLE", message: expect.stringContaining('refused user "broker"') });

    await using one = await secureBroker(1);
    await using two = await secureBroker(2);
    const three = await secureBroker(3);
    const all = [one, two, three];
    const until = (condition: () => boolean, what: string): Promise<void> => waitFor(condition, 20_000, what);
    await until(() => all.every((test) => test.broker.context.cluster?.brokers().length === 3), "3 brokers see each other");
    const bootstrap = all.map((test) => `127.0.0.1:${test.port}`);
    const adminClient = new Admin({ broker: bootstrap, tls: clientTls });
    await adminClient.createTopic("secret", { partitions: 1, replicationFactor: 3, minInsyncReplicas: 2 });
    await adminClient.close();
    const state = () => one.broker.context.cluster?.partitionState("secret", 0);
    await until(() => all.every((test) => test.broker.context.log.hasTopic("secret")) && state()?.leader !== undefined && state()!.leader >= 0, "the topic led on every broker");

    const producer = new Producer({ broker: bootstrap, tls: clientTls, durability: "replicated", idempotent: false, lingerMs: 0, retryBackoffMs: 20 });
    // Acknowledged only once an ISR of at least 2 has it: the followers fetched it over mutual TLS.
    await Promise.all(Array.from({ length: 10 }, (_, i) => producer.send("secret", { value: `v${i}`, partition: 0 })));
    const leader = state()!.leader;
    const followers = all.filter((test) => test.broker.context.cluster?.brokerId !== leader);
    await until(() => followers.every((test) => test.broker.context.log.partition("secret", 0).nextOffset >= 10), "followers hold the 10 records");

    // The leader stops; another ISR member leads, with every acknowledged record.
    const leaderBroker = all.find((test) => test.broker.context.cluster?.brokerId === leader)!;
    await leaderBroker[Symbol.asyncDispose]();
    await until(() => {
      const now = followers[0]!.broker.context.cluster?.partitionState("secret", 0);
      return now !== undefined && now.leader >= 0 && now.leader !== leader;
    }, "a new leader");
    await producer.send("secret", { value: "after", partition: 0 });
    await producer.close();
    const consumer = new Consumer({ broker: followers.map((test) => `127.0.0.1:${test.port}`), tls: clientTls, maxWaitMs: 50, retryBackoffMs: 20 });
    consumer.assign([{ topic: "secret", partition: 0 }]);
    const values: string[] = [];
    try {
      while (values.length < 11) for (const message of await consumer.nextBatch()) values.push(new TextDecoder().decode(message.value!));
    } finally {
      await consumer.close();
    }
    expect(values).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), "after"]);
    if (leaderBroker !== three) await three[Symbol.asyncDispose]();
  }, 90_000);

  test("`runnel serve` with a wrong etcd password exits saying it cannot join the cluster and why", async () => {
    await using etcd = await startEtcd({ certFile: etcdCert().cert, keyFile: etcdCert().key, caFile: pki.caCert, clientCertAuth: false });
    await enableEtcdAuth(etcd, "broker", "right");
    const wrongFile = path.join(dir, "serve-wrong.password");
    fs.writeFileSync(wrongFile, "wrong\n");
    const dataDir = tempDir("runnel-cluster-security-serve-");
    try {
      const failure = await spawnBroker(dataDir, 0, ["--cluster", `etcds://127.0.0.1:${etcd.clientPort}/serve`, "--broker-id", "1", "--cluster-etcd-ca", pki.caCert, "--cluster-etcd-user", "broker", "--cluster-etcd-password-file", wrongFile]).then(
        async (started) => {
          await started.kill();
          return "started";
        },
        (error: unknown) => String(error),
      );
      expect(failure).toContain("cannot join the cluster");
      expect(failure).toContain('refused user "broker"');
      expect(failure).not.toContain("wrong\n");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
