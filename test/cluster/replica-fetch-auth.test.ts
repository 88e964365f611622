/**
 * replicaFetch under authentication and authorization: with `authorizer: "acl"` it needs alter on
 * the cluster (a user without it is refused AUTHORIZATION_FAILED); with `authentication: "scram"`
 * the follower's fetcher authenticates as `clusterUser` (a super-user here) with the password from
 * `clusterPasswordFile`, so `replicated` produces are acknowledged; without those options a
 * scram cluster broker refuses to start its data plane (INVALID_CONFIG).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { Connection } from "../../src/client/connection.ts";
import type { WireMap } from "../../src/client/wire.ts";
import { fetcherCredentials } from "../../src/cluster/replica-fetcher.ts";
import { configSchema } from "../../src/config.ts";
import { RunnelError } from "../../src/errors.ts";
import { CredentialStore } from "../../src/security/credential-store.ts";
import { deriveVerifier } from "../../src/security/scram.ts";
import { tempDir } from "../server/helpers.ts";
import { batchOf, TestCluster } from "./harness.ts";

const passwordDir = tempDir("runnel-cluster-password-");
const passwordFile = path.join(passwordDir, "broker.password");
fs.writeFileSync(passwordFile, "broker-pw\n");
afterAll(() => fs.rmSync(passwordDir, { recursive: true, force: true }));

function addUsers(dataDir: string): void {
  const store = CredentialStore.open(dataDir);
  store.upsert("broker", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "broker-pw", 4096) });
  store.upsert("eve", { "SCRAM-SHA-256": deriveVerifier("SCRAM-SHA-256", "eve-pw", 4096) });
}

const secured = { authentication: "scram", authorizer: "acl", superUsers: "broker", clusterUser: "broker", clusterPasswordFile: passwordFile, replicaLagTimeMaxMs: 60_000 } as const;

describe("replicaFetch with authentication and ACLs", () => {
  test("the fetcher authenticates as clusterUser, so replicated produces are acknowledged; a user without alter on the cluster is refused", async () => {
    await using cluster = await TestCluster.start(2, secured, addUsers);
    cluster.createTopic("t", 1, 2);
    cluster.setPartition("t", 0, { leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2] });
    const asBroker = new Connection({ broker: `127.0.0.1:${cluster.broker(1).port}`, sasl: { user: "broker", password: "broker-pw" }, requestTimeoutMs: 20_000 });
    const asEve = new Connection({ broker: `127.0.0.1:${cluster.broker(1).port}`, sasl: { user: "eve", password: "eve-pw" }, requestTimeoutMs: 20_000 });
    try {
      const answer = await asBroker.request("produce", { durability: "replicated", batches: [{ topic: "t", partition: 0, batch: batchOf("a") }] });
      expect((answer.results as WireMap[])[0]?.error).toBeUndefined();
      expect(cluster.log(2, "t", 0).nextOffset).toBe(3);

      let refusal: unknown;
      try {
        await asEve.request("replicaFetch", { brokerId: 2, partitions: [{ topic: "t", partition: 0, leaderEpoch: 1, fetchOffset: 0, lastFetchedEpoch: -1 }] });
      } catch (error) {
        refusal = error;
      }
      expect((refusal as RunnelError).code).toBe("AUTHORIZATION_FAILED");
    } finally {
      asBroker.abort();
      asEve.abort();
    }
  });

  test("a cluster broker with authentication scram but no clusterUser or password file is refused (INVALID_CONFIG)", () => {
    const codeOf = (overrides: Record<string, unknown>) => {
      try {
        fetcherCredentials(configSchema.parse({ authentication: "scram", ...overrides }));
        return "none";
      } catch (error) {
        return error instanceof RunnelError ? error.code : String(error);
      }
    };
    expect(codeOf({})).toBe("INVALID_CONFIG");
    expect(codeOf({ clusterUser: "broker", clusterPasswordFile: path.join(passwordDir, "missing") })).toBe("INVALID_CONFIG");
    expect(fetcherCredentials(configSchema.parse({ authentication: "scram", clusterUser: "broker", clusterPasswordFile: passwordFile }))).toEqual({ user: "broker", password: "broker-pw" });
    expect(fetcherCredentials(configSchema.parse({}))).toBeNull();
  });
});
