/**
 * Cluster mode's options and its start-up failures: the etcd:// URL, the options that must go
 * together, and the one line `runnel serve` prints when it cannot join.
 */
import { describe, expect, test } from "bun:test";
import { describeStartupFailure } from "../../src/cli/startup-failure.ts";
import { parseClusterUrl } from "../../src/cluster/cluster-url.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { RunnelError } from "../../src/errors.ts";

function configError(flags: Record<string, string>): string {
  try {
    loadConfig({ flags, env: {} });
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return "";
}

describe("the cluster URL", () => {
  test("names the etcd endpoints and the cluster", () => {
    expect(parseClusterUrl("etcd://10.0.0.1:2379,etcd-2.lan:2379,[::1]:2379/prod-1")).toEqual({
      endpoints: ["http://10.0.0.1:2379", "http://etcd-2.lan:2379", "http://[::1]:2379"],
      cluster: "prod-1",
    });
  });
  test("is refused with what to write when a part is wrong", () => {
    expect(() => parseClusterUrl("http://127.0.0.1:2379/x")).toThrow("must start with etcd:// or etcds://");
    expect(() => parseClusterUrl("etcd://127.0.0.1:2379")).toThrow("names no cluster");
    expect(() => parseClusterUrl("etcd://127.0.0.1/x")).toThrow('"127.0.0.1" is not host:port');
    expect(() => parseClusterUrl("etcd://127.0.0.1:2379/a/b")).toThrow("the name must be 1-64 characters");
  });
});

describe("cluster options", () => {
  test("a cluster needs a broker id", () => {
    expect(configError({ cluster: "etcd://127.0.0.1:2379/x" })).toContain("brokerId");
    expect(configError({ cluster: "etcd://127.0.0.1:2379/x", brokerId: "3" })).toBe("");
  });
  test("the lease is whole seconds and the fence margin leaves room for keepalives", () => {
    expect(configError({ clusterLeaseTtlMs: "2500" })).toContain("multiple of 1000");
    expect(configError({ clusterLeaseTtlMs: "2000", clusterFenceMarginMs: "1500" })).toContain("clusterFenceMarginMs");
    expect(loadConfig({ flags: {}, env: {} }).clusterLeaseTtlMs).toBe(3000);
  });
});

describe("runnel serve's start-up line in cluster mode", () => {
  test("names etcd, not the data directory, when etcd cannot be reached", () => {
    const refused = Object.assign(new Error("Unable to connect"), { code: "ECONNREFUSED", path: "http://127.0.0.1:1/v3/lease/grant" });
    const error = new RunnelError("CLUSTER_UNAVAILABLE", "etcd at http://127.0.0.1:1 is unreachable", { cause: refused });
    expect(describeStartupFailure(error, { host: "127.0.0.1", port: 9600, dataDir: "./data" })).toBe("cannot join the cluster: etcd at http://127.0.0.1:1 is unreachable [CLUSTER_UNAVAILABLE]");
  });
});
