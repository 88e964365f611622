/**
 * SASL on the Kafka listener (authentication scram): kcat (librdkafka) with SCRAM-SHA-256 and
 * SCRAM-SHA-512 produces and consumes; a wrong password and an unknown user fail with the same
 * message; without SASL the connection is closed; PLAIN is refused on plaintext unless
 * saslPlainOverPlaintext; handshake v0's raw-token framing; kafkajs with SCRAM; truncated and
 * oversized SASL frames close the connection and the broker carries on.
 */
import { runKcat } from "../../support/kcat.ts";
import { describe, expect, test } from "bun:test";
import { API_KEYS } from "../../../src/listeners/kafka/definitions.ts";
import { KAFKA_ERROR } from "../../../src/listeners/kafka/errors.ts";
import { CredentialStore } from "../../../src/security/credential-store.ts";
import { deriveVerifier, ScramClientExchange } from "../../../src/security/scram.ts";
import { startTestBroker, tempDir } from "../../server/helpers.ts";
import { makeTestPki } from "../../support/tls-certs.ts";
import { RawKafka } from "./raw-kafka.ts";

const KCAT = Bun.which("kcat");
if (KCAT === null) {
  if (process.env.CI === "true") throw new Error("kcat is required in CI (apt-get install kcat)");
  console.warn("skipping the kcat SASL tests: kcat is not installed (apt-get install kcat)");
}

function dataDirWithUsers(): string {
  const dataDir = tempDir("runnel-sasl-");
  const store = CredentialStore.open(dataDir);
  store.upsert("bob", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "bob-pw", 4096), "SCRAM-SHA-512": deriveVerifier("SCRAM-SHA-512", "bob-pw", 4096) });
  return dataDir;
}

/** `waitSeconds`: kcat's metadata timeout; short where the run is meant to fail (it waits it out). */
function kcat(port: number | null, args: string[], stdin?: string, waitSeconds = 5): ReturnType<typeof runKcat> {
  return runKcat(port, args, { waitSeconds, ...(stdin === undefined ? {} : { stdin }) });
}

function sasl(mechanism: string, user: string, password: string): string[] {
  return ["-X", "security.protocol=sasl_plaintext", "-X", `sasl.mechanisms=${mechanism}`, "-X", `sasl.username=${user}`, "-X", `sasl.password=${password}`];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

describe.skipIf(KCAT === null)("kcat with SASL", () => {
  test("SCRAM-SHA-256 and SCRAM-SHA-512: kcat produces and consumes back", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    server.broker.context.log.createTopic("sasl", { partitions: 1 });
    const port = server.broker.kafkaPort;
    const produced = await kcat(port, [...sasl("SCRAM-SHA-256", "bob", "bob-pw"), "-P", "-t", "sasl", "-p", "0"], "one\ntwo\n");
    expect(produced.code).toBe(0);
    const consumed = await kcat(port, [...sasl("SCRAM-SHA-512", "bob", "bob-pw"), "-C", "-t", "sasl", "-o", "beginning", "-e", "-f", "%s\n"]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe("one\ntwo\n");
  });

  test("a wrong password and an unknown user fail alike; no SASL at all is refused", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    const port = server.broker.kafkaPort;
    const wrong = await kcat(port, [...sasl("SCRAM-SHA-256", "bob", "nope"), "-L"], undefined, 1);
    const unknown = await kcat(port, [...sasl("SCRAM-SHA-256", "nobody", "nope"), "-L"], undefined, 1);
    expect(wrong.code).not.toBe(0);
    expect(unknown.code).not.toBe(0);
    expect(wrong.stderr).toContain("unknown user or wrong password");
    expect(unknown.stderr).toContain("unknown user or wrong password");
    const anonymous = await kcat(port, ["-L"], undefined, 1);
    expect(anonymous.code).not.toBe(0);
  }, 60_000);

  test("PLAIN is refused without TLS, and allowed with saslPlainOverPlaintext", async () => {
    const dataDir = dataDirWithUsers();
    {
      await using server = await startTestBroker({ dataDir, authentication: "scram" });
      const refused = await kcat(server.broker.kafkaPort, [...sasl("PLAIN", "bob", "bob-pw"), "-L"], undefined, 1);
      expect(refused.code).not.toBe(0);
    }
    await using server = await startTestBroker({ dataDir, authentication: "scram", saslPlainOverPlaintext: true });
    const allowed = await kcat(server.broker.kafkaPort, [...sasl("PLAIN", "bob", "bob-pw"), "-L"]);
    expect(allowed.code).toBe(0);
    expect((await kcat(server.broker.kafkaPort, [...sasl("PLAIN", "bob", "bad"), "-L"], undefined, 1)).code).not.toBe(0);
  }, 60_000);

  test("PLAIN is offered on a TLS Kafka listener (sasl_ssl) without saslPlainOverPlaintext", async () => {
    const pki = makeTestPki();
    try {
      await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram", kafkaTlsCert: pki.serverCert, kafkaTlsKey: pki.serverKey });
      const overTls = (password: string) => ["-X", "security.protocol=sasl_ssl", "-X", `ssl.ca.location=${pki.caCert}`, "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=bob", "-X", `sasl.password=${password}`, "-L"];
      const listed = await kcat(server.broker.kafkaPort, overTls("bob-pw"));
      expect(listed.code).toBe(0);
      expect((await kcat(server.broker.kafkaPort, overTls("bad"), undefined, 1)).code).not.toBe(0);
    } finally {
      pki.cleanup();
    }
  }, 60_000);
});

describe("Kafka SASL frames", () => {
  test("before authenticating, a Metadata request closes the connection; ApiVersions is answered", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    await using client = await RawKafka.connect(server.broker.kafkaPort as number);
    expect((await client.request(API_KEYS.apiVersions, 0, {})).errorCode).toBe(0);
    client.send(API_KEYS.metadata, 1, { topics: null });
    expect(await client.closedWithin()).toBe(true);
  });

  test("before authenticating, a frame over 512 KiB closes the connection", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    await using client = await RawKafka.connect(server.broker.kafkaPort as number);
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 1024 * 1024);
    client.write(header);
    expect(await client.closedWithin()).toBe(true);
  });

  test("SaslHandshake v1 + SaslAuthenticate v2 with SCRAM-SHA-256, then Metadata is served", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    await using client = await RawKafka.connect(server.broker.kafkaPort as number);
    const handshake = await client.request(API_KEYS.saslHandshake, 1, { mechanism: "SCRAM-SHA-256" });
    expect(handshake).toEqual({ errorCode: 0, mechanisms: ["SCRAM-SHA-256", "SCRAM-SHA-512"] });
    const scram = new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "bob", password: "bob-pw" });
    const first = await client.request(API_KEYS.saslAuthenticate, 2, { authBytes: encoder.encode(scram.first()) });
    expect(first.errorCode).toBe(0);
    const final = await client.request(API_KEYS.saslAuthenticate, 2, { authBytes: encoder.encode(scram.final(decoder.decode(first.authBytes as Uint8Array))) });
    expect(final.errorCode).toBe(0);
    scram.verify(decoder.decode(final.authBytes as Uint8Array));
    expect(server.broker.context.authenticator.counters.successes).toBe(1);
    expect((await client.request(API_KEYS.metadata, 1, { topics: null })).brokers).toHaveLength(1);
  });

  test("handshake v0: the SCRAM tokens travel as raw size-prefixed frames", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    await using client = await RawKafka.connect(server.broker.kafkaPort as number);
    expect((await client.request(API_KEYS.saslHandshake, 0, { mechanism: "SCRAM-SHA-512" })).errorCode).toBe(0);
    const scram = new ScramClientExchange({ mechanism: "SCRAM-SHA-512", user: "bob", password: "bob-pw" });
    const raw = async (text: string): Promise<string> => {
      const token = encoder.encode(text);
      const framed = new Uint8Array(4 + token.length);
      new DataView(framed.buffer).setUint32(0, token.length);
      framed.set(token, 4);
      client.write(framed);
      const answer = await client.nextFrame();
      if (answer === null) throw new Error("closed");
      return decoder.decode(answer);
    };
    scram.verify(await raw(scram.final(await raw(scram.first()))));
    expect((await client.request(API_KEYS.metadata, 1, { topics: null })).brokers).toHaveLength(1);
  });

  test("a failed SaslAuthenticate is answered with SASL_AUTHENTICATION_FAILED, then the connection closes", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    await using client = await RawKafka.connect(server.broker.kafkaPort as number);
    await client.request(API_KEYS.saslHandshake, 1, { mechanism: "SCRAM-SHA-256" });
    const answer = await client.request(API_KEYS.saslAuthenticate, 1, { authBytes: encoder.encode("n,,n=bob") });
    expect(answer.errorCode).toBe(KAFKA_ERROR.SASL_AUTHENTICATION_FAILED);
    expect(await client.closedWithin()).toBe(true);
  });

  test("an unknown mechanism gets UNSUPPORTED_SASL_MECHANISM and the offered list", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    await using client = await RawKafka.connect(server.broker.kafkaPort as number);
    expect(await client.request(API_KEYS.saslHandshake, 1, { mechanism: "GSSAPI" })).toEqual({ errorCode: KAFKA_ERROR.UNSUPPORTED_SASL_MECHANISM, mechanisms: ["SCRAM-SHA-256", "SCRAM-SHA-512"] });
  });

  test("truncated and oversized SASL frames close the connection; the broker serves the next client", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    const port = server.broker.kafkaPort as number;
    {
      // SaslAuthenticate v1 whose bytes field claims 1000 bytes but carries 3.
      await using client = await RawKafka.connect(port);
      await client.request(API_KEYS.saslHandshake, 1, { mechanism: "SCRAM-SHA-256" });
      const frame = new Uint8Array([0, 0, 0, 19, 0, 36, 0, 1, 0, 0, 0, 9, 0, 4, 116, 101, 115, 116, 0, 0, 3, 232, 1, 2, 3].slice(0, 23));
      new DataView(frame.buffer).setUint32(0, frame.length - 4);
      client.write(frame);
      expect(await client.closedWithin()).toBe(true);
    }
    {
      await using client = await RawKafka.connect(port);
      await client.request(API_KEYS.saslHandshake, 1, { mechanism: "SCRAM-SHA-256" });
      const answer = await client.request(API_KEYS.saslAuthenticate, 1, { authBytes: new Uint8Array(100_000).fill(0x61) });
      expect(answer.errorCode).toBe(KAFKA_ERROR.SASL_AUTHENTICATION_FAILED);
      expect(await client.closedWithin()).toBe(true);
    }
    await using next = await RawKafka.connect(port);
    expect((await next.request(API_KEYS.apiVersions, 0, {})).errorCode).toBe(0);
  });
});

/** The part of kafkajs's API these tests use (declared here: the type check passes without the package). */
interface KafkajsSasl {
  logLevel: { NOTHING: number };
  Kafka: new (config: { clientId: string; brokers: string[]; logLevel: number; retry: { retries: number }; sasl: { mechanism: string; username: string; password: string } }) => {
    producer(): { connect(): Promise<void>; disconnect(): Promise<void>; send(record: { topic: string; acks: number; messages: Array<{ value: string; partition: number }> }): Promise<unknown> };
    admin(): { connect(): Promise<void>; disconnect(): Promise<void>; listTopics(): Promise<string[]> };
  };
}

const KAFKAJS = "kafkajs";
const kafkajs = await (async (): Promise<KafkajsSasl | null> => {
  try {
    return (await import(KAFKAJS)) as KafkajsSasl;
  } catch {
    if (process.env.CI === "true") throw new Error("kafkajs is required in CI (npm install)");
    console.warn("skipping the kafkajs SASL tests: the kafkajs package is not installed (npm install)");
    return null;
  }
})();

describe.skipIf(kafkajs === null)("kafkajs with SASL", () => {
  test("SCRAM-SHA-256 and SCRAM-SHA-512: kafkajs produces and lists topics; a wrong password is refused", async () => {
    const { Kafka, logLevel } = kafkajs as KafkajsSasl;
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    server.broker.context.log.createTopic("js-sasl", { partitions: 1 });
    const brokers = [`127.0.0.1:${server.broker.kafkaPort}`];
    const producer = new Kafka({ clientId: "sasl-256", brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 }, sasl: { mechanism: "scram-sha-256", username: "bob", password: "bob-pw" } }).producer();
    try {
      await producer.connect();
      await producer.send({ topic: "js-sasl", acks: -1, messages: [{ value: "hi", partition: 0 }] });
    } finally {
      await producer.disconnect();
    }
    expect(server.broker.context.log.partition("js-sasl", 0).nextOffset).toBe(1);
    const admin = new Kafka({ clientId: "sasl-512", brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 }, sasl: { mechanism: "scram-sha-512", username: "bob", password: "bob-pw" } }).admin();
    try {
      await admin.connect();
      expect(await admin.listTopics()).toEqual(["js-sasl"]);
    } finally {
      await admin.disconnect();
    }
    const wrong = new Kafka({ clientId: "sasl-bad", brokers, logLevel: logLevel.NOTHING, retry: { retries: 0 }, sasl: { mechanism: "scram-sha-256", username: "bob", password: "nope" } }).admin();
    await expect(wrong.connect()).rejects.toThrow(/unknown user or wrong password/);
    await wrong.disconnect();
  }, 30_000);
});

const PYTHON = "/usr/bin/python3";
const kafkaPython = Bun.which(PYTHON) !== null && Bun.spawnSync([PYTHON, "-c", "import kafka"]).exitCode === 0;
if (!kafkaPython) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} with kafka-python is required in CI (apt-get install python3-kafka)`);
  console.warn("skipping the kafka-python SASL tests: python3-kafka is not installed");
}

/** kafka-python 2.0.2 (SaslHandshake v0, then raw tokens): produces one message, prints OK or the error's class. */
const KAFKA_PYTHON_SASL = `
import sys
from kafka import KafkaProducer
port, mechanism, user, password = sys.argv[1:5]
try:
    producer = KafkaProducer(bootstrap_servers="127.0.0.1:" + port, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                             sasl_plain_username=user, sasl_plain_password=password, acks="all", request_timeout_ms=5000, api_version_auto_timeout_ms=5000)
    producer.send("py-sasl", value=b"from-python", partition=0).get(timeout=10)
    producer.close()
    print("OK")
except Exception as error:
    print(type(error).__name__)
`;

describe.skipIf(!kafkaPython)("kafka-python with SASL", () => {
  test("SCRAM-SHA-256 and SCRAM-SHA-512 over handshake v0's raw tokens produce; a wrong password and an unknown user fail", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    server.broker.context.log.createTopic("py-sasl", { partitions: 1 });
    const run = async (mechanism: string, user: string, password: string): Promise<string> => {
      const child = Bun.spawn([PYTHON, "-c", KAFKA_PYTHON_SASL, String(server.broker.kafkaPort), mechanism, user, password], { stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => child.kill(), 30_000);
      const [stdout] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      clearTimeout(timer);
      return stdout.trim();
    };
    expect(await run("SCRAM-SHA-256", "bob", "bob-pw")).toBe("OK");
    expect(await run("SCRAM-SHA-512", "bob", "bob-pw")).toBe("OK");
    expect(server.broker.context.log.partition("py-sasl", 0).nextOffset).toBe(2);
    const wrong = await run("SCRAM-SHA-256", "bob", "nope");
    expect(wrong).not.toBe("OK");
    expect(await run("SCRAM-SHA-256", "nobody", "nope")).toBe(wrong);
  }, 60_000);
});
