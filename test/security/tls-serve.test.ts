/**
 * `runnel serve` with TLS, as an operator runs it: the CLI reaches it with --tls-ca, a SIGHUP
 * after the config names a renewed certificate serves it to new connections while an old
 * connection keeps working, a SIGHUP naming a bad key keeps the current certificates, and a
 * mismatched pair at start-up exits with one line.
 */
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { Producer } from "../../src/client/producer.ts";
import { ROOT } from "../client/real-broker.ts";
import { spawnBroker, waitFor } from "../durability/broker-process.ts";
import { makeTestPki, peerCommonName } from "../support/tls-certs.ts";

const pki = makeTestPki();
afterAll(() => pki.cleanup());

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = Bun.spawnSync([process.execPath, path.join(ROOT, "src/main.ts"), ...args], { cwd: ROOT, timeout: 20_000, stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

test("SIGHUP with a renewed certificate: new connections get it, an old connection keeps working, a bad key changes nothing", async () => {
  const configFile = path.join(pki.dir, "runnel.json");
  fs.writeFileSync(configFile, JSON.stringify({ logLevel: "info", tlsCert: pki.serverCert, tlsKey: pki.serverKey }));
  const broker = await spawnBroker(path.join(pki.dir, "data"), 0, ["--config", configFile]);
  try {
    const address = `127.0.0.1:${broker.port}`;
    expect(cli(["topics", "create", "renewals", "--broker", address, "--tls-ca", pki.caCert]).code).toBe(0);
    expect(cli(["topics", "list", "--broker", address]).code).not.toBe(0);
    const old = new Producer({ broker: address, tls: { ca: fs.readFileSync(pki.caCert, "utf8") }, lingerMs: 0 });
    await old.send("renewals", { value: "before" });
    expect(await peerCommonName(pki, broker.port)).toBe("localhost");

    const renewed = pki.issueServerCert("renewed");
    fs.writeFileSync(configFile, JSON.stringify({ logLevel: "info", tlsCert: renewed.cert, tlsKey: renewed.key }));
    broker.process.kill("SIGHUP");
    await waitFor(() => broker.lines.some((line) => line.includes("TLS reloaded")), 10_000, "the TLS reload's log line");
    expect(await peerCommonName(pki, broker.port)).toBe("renewed");
    expect((await old.send("renewals", { value: "after" })).offset).toBe(1);

    fs.writeFileSync(configFile, JSON.stringify({ logLevel: "info", tlsCert: renewed.cert, tlsKey: pki.serverKey }));
    broker.process.kill("SIGHUP");
    await waitFor(() => broker.lines.some((line) => line.includes("TLS reload failed")), 10_000, "the failed TLS reload's log line");
    expect(broker.lines.find((line) => line.includes("TLS reload failed"))).toContain("does not belong to --tls-cert");
    expect(await peerCommonName(pki, broker.port)).toBe("renewed");
    expect((await old.send("renewals", { value: "still" })).offset).toBe(2);
    await old.close();
    const consumed = cli(["consume", "--topic", "renewals", "--from", "earliest", "--count", "3", "--broker", address, "--tls-ca", pki.caCert]);
    expect(consumed.stdout).toBe("before\nafter\nstill\n");
  } finally {
    expect(await broker.stop()).toBe(0);
  }
}, 60_000);

test("runnel serve with a key that does not match its certificate exits at once with one line", () => {
  const other = pki.issueServerCert("stranger");
  const result = cli(["serve", "--port", "0", "--http-port", "-1", "--kafka-port", "-1", "--data-dir", path.join(pki.dir, "never"), "--tls-cert", pki.serverCert, "--tls-key", other.key]);
  expect(result.code).toBe(1);
  expect(result.stderr.trim().split("\n")).toHaveLength(1);
  expect(result.stderr).toContain("--tls-key");
  expect(result.stderr).toContain("does not belong to --tls-cert");
});

test("runnel top reads an HTTPS listener with --tls-ca", async () => {
  const broker = await spawnBroker(path.join(pki.dir, "top-data"), 0, ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey]);
  try {
    const http = String(broker.startLine.http);
    const screen = cli(["top", "--once", "--interval-ms", "100", "--http", http, "--tls-ca", pki.caCert]);
    expect(screen.stderr).toBe("");
    expect(screen.code).toBe(0);
    expect(screen.stdout.length).toBeGreaterThan(0);
    expect(cli(["top", "--once", "--interval-ms", "100", "--http", http]).code).not.toBe(0);
  } finally {
    expect(await broker.stop()).toBe(0);
  }
}, 60_000);
