/**
 * SCRAM core (security/scram.ts): RFC 7677's SCRAM-SHA-256 test vector on both sides, SHA-512
 * round trips, the nonce rules (prefix, fresh per exchange, a replayed client-final refused),
 * channel binding "n,," only, saslname escaping, and an unknown user failing exactly like a wrong
 * password.
 */
import { describe, expect, test } from "bun:test";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
  deriveVerifier,
  escapeSaslName,
  parseClientFirst,
  passwordMatches,
  ScramClientExchange,
  ScramError,
  type ScramMechanism,
  ScramServerExchange,
  type ScramVerifier,
  unescapeSaslName,
} from "../../src/security/scram.ts";

const RFC_SALT = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
const RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const SECRET = new Uint8Array(32).fill(7);

function serverFor(mechanism: ScramMechanism, users: Map<string, ScramVerifier>): ScramServerExchange {
  return new ScramServerExchange({ mechanism, lookup: (user) => users.get(user) ?? null, serverSecret: SECRET, fakeIterations: 4096 });
}

function exchange(mechanism: ScramMechanism, users: Map<string, ScramVerifier>, user: string, password: string): { user: string } {
  const client = new ScramClientExchange({ mechanism, user, password });
  const server = serverFor(mechanism, users);
  const serverFirst = server.first(client.first());
  const { serverFinal, user: authenticated } = server.final(client.final(serverFirst));
  client.verify(serverFinal);
  return { user: authenticated };
}

describe("SCRAM", () => {
  test("the client computes RFC 7677's client-final from its server-first and accepts its server-final", () => {
    const client = new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "user", password: "pencil", clientNonce: RFC_CLIENT_NONCE });
    expect(client.first()).toBe(`n,,n=user,r=${RFC_CLIENT_NONCE}`);
    expect(client.final(RFC_SERVER_FIRST)).toBe(RFC_CLIENT_FINAL);
    expect(() => client.verify(RFC_SERVER_FINAL)).not.toThrow();
    expect(() => client.verify("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")).toThrow(ScramError);
  });

  test("the server accepts RFC 7677's proof for a verifier derived from 'pencil' and answers its server signature", () => {
    const verifier = deriveVerifier("SCRAM-SHA-256", "pencil", 4096, RFC_SALT);
    // Drive the server with the RFC's nonces: replace the random server nonce by the RFC's.
    const server = serverFor("SCRAM-SHA-256", new Map([["user", verifier]]));
    const serverFirst = server.first(`n,,n=user,r=${RFC_CLIENT_NONCE}`);
    expect(serverFirst).toStartWith(`r=${RFC_CLIENT_NONCE}`);
    expect(serverFirst).toEndWith(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    const state = (server as unknown as { state: { nonce: string; authPrefix: string } }).state;
    state.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    state.authPrefix = `n=user,r=${RFC_CLIENT_NONCE},${RFC_SERVER_FIRST}`;
    expect(server.final(RFC_CLIENT_FINAL)).toEqual({ serverFinal: RFC_SERVER_FINAL, user: "user" });
  });

  for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const) {
    test(`${mechanism}: the right password authenticates, a wrong one and an unknown user fail alike`, () => {
      const users = new Map([["alice", deriveVerifier(mechanism, "correct horse", 4096)]]);
      expect(exchange(mechanism, users, "alice", "correct horse")).toEqual({ user: "alice" });
      const wrong = captureError(() => exchange(mechanism, users, "alice", "battery staple"));
      const unknown = captureError(() => exchange(mechanism, users, "mallory", "battery staple"));
      expect(wrong).toBe("authentication failed");
      expect(unknown).toBe(wrong);
    });
  }

  test("an unknown user sees a stable salt and the usual iteration count, like a known one", () => {
    const users = new Map<string, ScramVerifier>();
    const first = serverFor("SCRAM-SHA-256", users).first("n,,n=ghost,r=abc");
    const again = serverFor("SCRAM-SHA-256", users).first("n,,n=ghost,r=abc");
    expect(first.split(",").slice(1)).toEqual(again.split(",").slice(1));
    expect(first).toEndWith(",i=4096");
  });

  test("every exchange has a fresh server nonce that extends the client's", () => {
    const users = new Map([["alice", deriveVerifier("SCRAM-SHA-256", "pw", 4096)]]);
    const nonces = new Set<string>();
    for (let index = 0; index < 20; index++) {
      const serverFirst = serverFor("SCRAM-SHA-256", users).first("n,,n=alice,r=clientnonce");
      const nonce = serverFirst.split(",")[0]?.slice(2) ?? "";
      expect(nonce).toStartWith("clientnonce");
      expect(nonce.length).toBeGreaterThan("clientnonce".length);
      nonces.add(nonce);
    }
    expect(nonces.size).toBe(20);
  });

  test("a replayed client-final is refused, on the same exchange and on a new one", () => {
    const users = new Map([["alice", deriveVerifier("SCRAM-SHA-256", "pw", 4096)]]);
    const client = new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "alice", password: "pw", clientNonce: "fixed" });
    const server = serverFor("SCRAM-SHA-256", users);
    const clientFinal = client.final(server.first(client.first()));
    server.final(clientFinal);
    expect(() => server.final(clientFinal)).toThrow("accepted once");
    const second = serverFor("SCRAM-SHA-256", users);
    second.first(client.first());
    expect(() => second.final(clientFinal)).toThrow("nonce mismatch");
  });

  test("librdkafka's client-final (before 2.6.1: its client nonce prepended once more) is accepted, a replay of it is not", () => {
    const users = new Map([["bob", deriveVerifier("SCRAM-SHA-256", "pw", 4096)]]);
    const client = new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "bob", password: "pw", clientNonce: "cnonce" });
    const server = serverFor("SCRAM-SHA-256", users);
    const serverFirst = server.first(client.first());
    // What librdkafka 2.0 sends: r=<client nonce><server's r>, proof over exactly that text.
    const doubled = new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "bob", password: "pw", clientNonce: "cnonce" });
    const clientFinal = doubled.final(serverFirst).replace(",r=", ",r=cnonce");
    expect(clientFinal).toContain(",r=cnoncecnonce");
    const proofless = clientFinal.slice(0, clientFinal.lastIndexOf(",p="));
    const authMessage = `n=bob,r=cnonce,${serverFirst},${proofless}`;
    const proof = librdkafkaProof("pw", serverFirst, authMessage);
    expect(server.final(`${proofless},p=${proof}`).user).toBe("bob");
    const replay = serverFor("SCRAM-SHA-256", users);
    replay.first(client.first());
    expect(() => replay.final(`${proofless},p=${proof}`)).toThrow("nonce mismatch");
  });

  test("the client refuses a server nonce that does not extend its own, and too few iterations", () => {
    const client = new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "a", password: "p", clientNonce: "mine" });
    expect(() => client.final("r=theirs123,s=AAAA,i=4096")).toThrow("does not extend ours");
    expect(() => client.final("r=mine123,s=AAAA,i=1000")).toThrow("iterations");
    expect(() => new ScramClientExchange({ mechanism: "SCRAM-SHA-256", user: "a", password: "p", clientNonce: "mine" }).final("r=mine123,s=AAAA,i=2000000")).toThrow("iterations");
  });

  test("channel binding other than 'n,,' and SCRAM extensions are refused", () => {
    expect(() => parseClientFirst("y,,n=a,r=x")).toThrow("channel binding");
    expect(() => parseClientFirst("p=tls-unique,,n=a,r=x")).toThrow("channel binding");
    expect(() => parseClientFirst("n,,m=ext,n=a,r=x")).toThrow("extensions");
    expect(() => parseClientFirst("n,a=bob,n=alice,r=x")).toThrow("authorization identity");
    expect(parseClientFirst("n,a=alice,n=alice,r=x").user).toBe("alice");
  });

  test("a client-final whose channel binding differs from the gs2 header is refused", () => {
    const users = new Map([["alice", deriveVerifier("SCRAM-SHA-256", "pw", 4096)]]);
    const server = serverFor("SCRAM-SHA-256", users);
    const nonce = server.first("n,,n=alice,r=abc").split(",")[0]?.slice(2) ?? "";
    expect(() => server.final(`c=eSws,r=${nonce},p=AAAA`)).toThrow("channel binding");
  });

  test("user names with ',' and '=' are escaped as =2C and =3D and survive the exchange", () => {
    expect(escapeSaslName("a,b=c")).toBe("a=2Cb=3Dc");
    expect(unescapeSaslName("a=2Cb=3Dc")).toBe("a,b=c");
    expect(() => unescapeSaslName("a=4Fb")).toThrow(ScramError);
    const users = new Map([["a,b=c", deriveVerifier("SCRAM-SHA-256", "pw", 4096)]]);
    expect(exchange("SCRAM-SHA-256", users, "a,b=c", "pw")).toEqual({ user: "a,b=c" });
  });

  test("malformed and oversized messages are refused with a ScramError, never anything else", () => {
    const junk = ["", "n", "n,", "n,,", "n,,n=", "n,,n=a", "n,,n=a,r=", "n,,x", "n,,n=a,r=a b", "n,," + "n=a,r=" + "x".repeat(2000)];
    for (const message of junk) {
      expect(() => serverFor("SCRAM-SHA-256", new Map()).first(message)).toThrow(ScramError);
    }
    const server = serverFor("SCRAM-SHA-256", new Map());
    expect(() => server.final("c=biws,r=x,p=AAAA")).toThrow("before client-first");
  });

  test("passwordMatches checks a password against a verifier (HTTP Basic, SASL PLAIN)", () => {
    const verifier = deriveVerifier("SCRAM-SHA-512", "s3cret", 4096);
    expect(passwordMatches("SCRAM-SHA-512", verifier, "s3cret")).toBe(true);
    expect(passwordMatches("SCRAM-SHA-512", verifier, "s3cres")).toBe(false);
  });
});

/** ClientProof over `authMessage`, as any client computes it (RFC 5802). */
function librdkafkaProof(password: string, serverFirst: string, authMessage: string): string {
  const salt = Buffer.from(serverFirst.split(",")[1]?.slice(2) ?? "", "base64");
  const salted = pbkdf2Sync(password, salt, 4096, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const signature = createHmac("sha256", storedKey).update(authMessage).digest();
  return Buffer.from(clientKey.map((byte, index) => byte ^ (signature[index] ?? 0))).toString("base64");
}

function captureError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ScramError);
    return (error as Error).message;
  }
  throw new Error("expected a ScramError");
}
