/**
 * TLS on every listener, with a throwaway CA made by openssl (test/support/tls-certs.ts): native
 * produce and consume over TLS (bytes identical, sent by the copy path), mutual TLS refusing a
 * client without a certificate, HTTPS /health, the Kafka listener over TLS with kcat, start-up
 * refusing bad certificate files, and a certificate reload that new connections see while an
 * old connection keeps working.
 */
import { runKcat } from "../support/kcat.ts";
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { Consumer, Producer } from "../../src/client/index.ts";
import { Connection } from "../../src/client/connection.ts";
import { ConfigError, configSchema } from "../../src/config.ts";
import { loadTlsSettings } from "../../src/server/tls.ts";
import { startTestBroker } from "../server/helpers.ts";
import { makeTestPki, peerCommonName } from "../support/tls-certs.ts";

const pki = makeTestPki();
afterAll(() => pki.cleanup());
const pem = (file: string) => fs.readFileSync(file, "utf8");
const tlsServer = { tlsCert: pki.serverCert, tlsKey: pki.serverKey };

function randomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let index = 0; index < length; index++) {
    state = (state * 1_103_515_245 + 12_345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

describe("the native listener over TLS", () => {
  test("messages produced over TLS come back byte for byte, sent by the copy path (or gathered with their head), not sendfile", async () => {
    await using test = await startTestBroker({ ...tlsServer, kafkaPort: -1 });
    const tls = { ca: pem(pki.caCert) };
    const broker = `127.0.0.1:${test.port}`;
    const values = Array.from({ length: 40 }, (_, index) => randomBytes(10_000 + index * 997, index + 1));
    const producer = new Producer({ broker, tls, lingerMs: 0 });
    for (const value of values) await producer.send("over-tls", { value });
    await producer.close();
    const consumer = new Consumer({ broker, tls, from: "earliest" }).subscribe("over-tls");
    const received: Uint8Array[] = [];
    while (received.length < values.length) for (const message of await consumer.nextBatch()) received.push(message.value!);
    await consumer.close();
    expect(received.map((value) => Buffer.from(value).toString("hex"))).toEqual(values.map((value) => Buffer.from(value).toString("hex")));
    const stats = test.broker.stats;
    expect(stats.bytesSentCopy + stats.bytesSentGathered).toBeGreaterThan(values.reduce((sum, value) => sum + value.length, 0));
    expect(test.broker.stats.bytesSentSendfile).toBe(0);
  });

  test("a consumer group member joins, is assigned and reads over TLS", async () => {
    await using test = await startTestBroker({ ...tlsServer, kafkaPort: -1 });
    const tls = { ca: pem(pki.caCert) };
    const broker = `127.0.0.1:${test.port}`;
    const producer = new Producer({ broker, tls, lingerMs: 0 });
    for (const value of ["g1", "g2", "g3"]) await producer.send("group-tls", { value });
    await producer.close();
    const member = new Consumer({ broker, tls, groupId: "tls-readers", from: "earliest" }).subscribe("group-tls");
    const received: string[] = [];
    while (received.length < 3) for (const message of await member.nextBatch()) received.push(Buffer.from(message.value!).toString());
    await member.close();
    expect(received).toEqual(["g1", "g2", "g3"]);
  });

  test("a plaintext client cannot talk to a TLS listener, and a client that does not trust the CA is refused", async () => {
    await using test = await startTestBroker({ ...tlsServer, kafkaPort: -1 });
    const plain = new Connection({ broker: `127.0.0.1:${test.port}`, connectTimeoutMs: 1_000, requestTimeoutMs: 1_000 });
    await expect(plain.connect()).rejects.toThrow();
    plain.close();
    const untrusting = new Connection({ broker: `127.0.0.1:${test.port}`, tls: true, connectTimeoutMs: 1_000 });
    await expect(untrusting.connect()).rejects.toThrow(/certificate|TLS/i);
    untrusting.close();
  });

  test("with tlsCa the broker requires a client certificate: without one the client is refused, with one it is served", async () => {
    await using test = await startTestBroker({ ...tlsServer, tlsCa: pki.caCert, kafkaPort: -1 });
    const broker = `127.0.0.1:${test.port}`;
    const anonymous = new Connection({ broker, tls: { ca: pem(pki.caCert) }, connectTimeoutMs: 1_000 });
    await expect(anonymous.connect()).rejects.toMatchObject({ code: "BROKER_UNAVAILABLE" });
    anonymous.close();
    const identified = new Connection({ broker, tls: { ca: pem(pki.caCert), cert: pem(pki.clientCert), key: pem(pki.clientKey) } });
    expect((await identified.connect()).version).toBeGreaterThan(0);
    identified.close();
  });
});

describe("start-up with bad TLS files", () => {
  const configOf = (overrides: Record<string, string>) => configSchema.parse({ port: 0, ...overrides });

  test("a missing file, a non-PEM file and a key of another certificate each stop start-up with one line naming the option", () => {
    const notPem = path.join(pki.dir, "not-pem.txt");
    fs.writeFileSync(notPem, "hello\n");
    const other = pki.issueServerCert("other");
    const attempts: Array<[Record<string, string>, RegExp]> = [
      [{ tlsCert: path.join(pki.dir, "absent.crt"), tlsKey: pki.serverKey }, /^--tls-cert .*absent\.crt: cannot read the certificate file \[ENOENT\]$/],
      [{ tlsCert: pki.serverCert, tlsKey: notPem }, /^--tls-key .*not-pem\.txt: not a PEM private key/],
      [{ tlsCert: pki.serverCert, tlsKey: other.key }, /^--tls-key .*other\.key does not belong to --tls-cert .*server\.crt/],
      [{ tlsCert: pki.serverCert }, /^--tls-key is missing/],
      [{ tlsCa: pki.caCert }, /a CA alone does not turn TLS on/],
      [{ kafkaTlsCert: pki.serverCert, kafkaTlsKey: other.key }, /^--kafka-tls-key .* does not belong to --kafka-tls-cert/],
    ];
    for (const [overrides, message] of attempts) {
      let caught: unknown = null;
      try {
        loadTlsSettings(configOf(overrides));
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toMatch(message);
      expect((caught as Error).message).not.toContain("\n");
    }
  });

  test("the broker does not start on a mismatched pair", async () => {
    const other = pki.issueServerCert("mismatch");
    await expect(startTestBroker({ tlsCert: pki.serverCert, tlsKey: other.key })).rejects.toThrow(/does not belong to/);
  });

  test("per-listener overrides pick their own files; unset ones inherit the shared ones", () => {
    const kafka = pki.issueServerCert("kafka-own");
    const settings = loadTlsSettings(configOf({ ...tlsServer, kafkaTlsCert: kafka.cert, kafkaTlsKey: kafka.key }));
    expect(settings.native?.cert).toBe(pem(pki.serverCert));
    expect(settings.kafka?.cert).toBe(pem(kafka.cert));
    expect(settings.http?.cert).toBe(pem(pki.serverCert));
    expect(settings.native?.requestCert).toBeUndefined();
  });

  test("'none' as a listener's override refuses the shared file: no client certificates on HTTP, or plaintext HTTP", () => {
    const noHttpCa = loadTlsSettings(configOf({ ...tlsServer, tlsCa: pki.caCert, httpTlsCa: "none" }));
    expect(noHttpCa.native?.requestCert).toBe(true);
    expect(noHttpCa.kafka?.requestCert).toBe(true);
    expect(noHttpCa.http?.cert).toBe(pem(pki.serverCert));
    expect(noHttpCa.http?.requestCert).toBeUndefined();
    const plainHttp = loadTlsSettings(configOf({ ...tlsServer, httpTlsCert: "none" }));
    expect(plainHttp.http).toBeNull();
    expect(plainHttp.native).not.toBeNull();
  });
});

test("the HTTP listener answers /health over HTTPS", async () => {
  await using test = await startTestBroker({ ...tlsServer, kafkaPort: -1 });
  const response = await fetch(`https://127.0.0.1:${test.broker.http!.port}/health`, { tls: { ca: pem(pki.caCert) } });
  expect(response.status).toBe(200);
  expect(await response.text()).toBe("alive\n");
});

test("a certificate reload: new connections get the new certificate, an established connection keeps working", async () => {
  await using test = await startTestBroker({ ...tlsServer });
  const broker = `127.0.0.1:${test.port}`;
  const tls = { ca: pem(pki.caCert) };
  const old = new Producer({ broker, tls, lingerMs: 0 });
  await old.send("reloaded", { value: "before" });
  expect(await peerCommonName(pki, test.port)).toBe("localhost");
  expect(await peerCommonName(pki, test.broker.kafkaPort!)).toBe("localhost");
  expect(await peerCommonName(pki, test.broker.http!.port)).toBe("localhost");

  const renewed = pki.issueServerCert("renewed");
  const config = configSchema.parse({ port: 0, tlsCert: renewed.cert, tlsKey: renewed.key });
  expect(test.broker.reloadTls(loadTlsSettings(config)).sort()).toEqual(["http", "kafka", "native"]);

  expect(await peerCommonName(pki, test.port)).toBe("renewed");
  expect(await peerCommonName(pki, test.broker.kafkaPort!)).toBe("renewed");
  expect(await peerCommonName(pki, test.broker.http!.port)).toBe("renewed");
  // The producer's connection was opened before the reload and is still the one it uses.
  expect((await old.send("reloaded", { value: "after" })).offset).toBe(1);
  // Native connections accepted: the producer's one and the two probes; none was dropped.
  expect(test.broker.stats.connectionsAccepted).toBe(3);
  await old.close();
  // Reloading the same files again changes nothing.
  expect(test.broker.reloadTls(loadTlsSettings(config))).toEqual([]);
});

const KCAT = Bun.which("kcat");
if (KCAT === null) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat TLS test: kcat is not installed (apt-get install kcat)");
}

function kcat(port: number, args: string[], stdin?: string): ReturnType<typeof runKcat> {
  return runKcat(port, ["-X", "security.protocol=ssl", "-X", `ssl.ca.location=${pki.caCert}`, ...args], stdin === undefined ? {} : { stdin });
}

describe.skipIf(KCAT === null)("the Kafka listener over TLS", () => {
  test("kcat (librdkafka) produces and consumes back over TLS, and with mutual TLS only with its client certificate", async () => {
    await using test = await startTestBroker({ ...tlsServer, kafkaTlsCa: pki.caCert });
    const port = test.broker.kafkaPort!;
    const clientCert = ["-X", `ssl.certificate.location=${pki.clientCert}`, "-X", `ssl.key.location=${pki.clientKey}`];
    const produced = await kcat(port, [...clientCert, "-P", "-t", "kafka-tls"], "one\ntwo\nthree\n");
    expect(produced.stderr).toBe("");
    expect(produced.code).toBe(0);
    const consumed = await kcat(port, [...clientCert, "-C", "-t", "kafka-tls", "-o", "beginning", "-e", "-q"]);
    expect(consumed.stdout).toBe("one\ntwo\nthree\n");
    expect(test.broker.stats.bytesSentSendfile).toBe(0);
    const anonymous = await kcat(port, ["-L", "-m", "3"]);
    expect(anonymous.code).not.toBe(0);
    // The native listener has no CA of its own: it serves TLS without asking for a certificate.
    const native = new Connection({ broker: `127.0.0.1:${test.port}`, tls: { ca: pem(pki.caCert) } });
    expect((await native.connect()).version).toBeGreaterThan(0);
    native.close();
  }, 60_000);
});

const PYTHON = "/usr/bin/python3";
const pythonReady = fs.existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import msgpack"]).exitCode === 0;
if (!pythonReady) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} with msgpack is required in CI (apt-get install python3-msgpack)`);
  console.warn("skipping the Python TLS test: python3 with msgpack is not installed");
}

describe.skipIf(!pythonReady)("the Python example client over TLS", () => {
  test("produces and consumes with mutual TLS (ssl module), and is refused without its certificate", async () => {
    await using test = await startTestBroker({ ...tlsServer, tlsCa: pki.caCert, kafkaPort: -1 });
    const client = path.join(import.meta.dir, "../../examples/python/runnel_client.py");
    const run = async (args: string[], stdin?: string) => {
      const child = Bun.spawn([PYTHON, client, "--broker", `127.0.0.1:${test.port}`, "--tls-ca", pki.caCert, ...args], { stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => child.kill(), 20_000);
      const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
      clearTimeout(timer);
      return { code, stdout, stderr };
    };
    const identity = ["--tls-cert", pki.clientCert, "--tls-key", pki.clientKey];
    expect((await run([...identity, "produce", "py-tls"], "alpha\nbeta\n")).code).toBe(0);
    const consumed = await run([...identity, "consume", "py-tls", "2"]);
    expect(consumed.stdout).toBe("0 0 - alpha\n0 1 - beta\n");
    const refused = await run(["consume", "py-tls", "1"]);
    expect(refused.code).not.toBe(0);
  }, 60_000);
});
