/**
 * The HTTP listener with authentication scram: /health and /ready stay open; /metrics, the console
 * page and its API need HTTP Basic credentials of a Runnel user (401 with a challenge otherwise,
 * the same for an unknown user and a wrong password); an address that keeps failing gets 429;
 * the failures are counted in /metrics.
 */
import { describe, expect, test } from "bun:test";
import { parseBasic } from "../../../src/listeners/http/basic-auth.ts";
import { CredentialStore } from "../../../src/security/credential-store.ts";
import { deriveVerifier } from "../../../src/security/scram.ts";
import { startTestBroker, tempDir } from "../../server/helpers.ts";

function dataDirWithUsers(): string {
  const dataDir = tempDir("runnel-basic-");
  CredentialStore.open(dataDir).upsert("carol", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "carol:pw", 4096) });
  return dataDir;
}

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
}

describe("HTTP Basic authentication", () => {
  test("probes are open; metrics, console and API need a user's credentials", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram" });
    const http = server.broker.http;
    if (http === null) throw new Error("no HTTP listener");
    const base = `http://${http.host}:${http.port}`;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    for (const path of ["/metrics", "/", "/api/overview", "/api/topics"]) {
      const anonymous = await fetch(`${base}${path}`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("www-authenticate")).toContain("Basic");
      expect((await fetch(`${base}${path}`, { headers: basic("carol", "carol:pw") })).status).toBe(200);
    }
    const wrong = await fetch(`${base}/api/topics`, { headers: basic("carol", "nope") });
    const unknown = await fetch(`${base}/api/topics`, { headers: basic("nobody", "nope") });
    expect(wrong.status).toBe(401);
    expect(await unknown.json()).toEqual(await wrong.json());
    const metrics = await (await fetch(`${base}/metrics`, { headers: basic("carol", "carol:pw") })).text();
    expect(metrics).toContain('runnel_authentications_total{result="failure"} 2');
  });

  test("an address that keeps failing gets 429 until its bucket refills; a correct password is then refused too", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers(), authentication: "scram", authFailuresBurst: 3, authFailuresPerMinute: 1 });
    const http = server.broker.http;
    if (http === null) throw new Error("no HTTP listener");
    const base = `http://${http.host}:${http.port}/api/topics`;
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) statuses.push((await fetch(base, { headers: basic("carol", `guess${attempt}`) })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await fetch(base, { headers: basic("carol", "carol:pw") })).status).toBe(429);
  });

  test("with authentication none nothing asks for credentials", async () => {
    await using server = await startTestBroker({ dataDir: dataDirWithUsers() });
    const http = server.broker.http;
    if (http === null) throw new Error("no HTTP listener");
    expect((await fetch(`http://${http.host}:${http.port}/metrics`)).status).toBe(200);
  });

  test("parseBasic reads user and password (the password may hold ':'), and refuses malformed headers", () => {
    expect(parseBasic(`Basic ${btoa("a:b:c")}`)).toEqual({ user: "a", password: "b:c" });
    expect(parseBasic(null)).toBeNull();
    expect(parseBasic("Bearer xyz")).toBeNull();
    expect(parseBasic(`Basic ${btoa(":nouser")}`)).toBeNull();
    expect(parseBasic(`Basic ${"A".repeat(5000)}`)).toBeNull();
  });
});
