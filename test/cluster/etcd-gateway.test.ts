/**
 * The etcd gateway client against a real etcd 3.4 (test/cluster/etcd-harness.ts): key-values,
 * transactions on each compare target, leases, watches that resume after etcd restarts and
 * re-list after a compaction, and bounded calls that fail with CLUSTER_UNAVAILABLE.
 *
 * Needs `etcd` (Debian etcd-server; .ci/run installs it). Skipped loudly outside CI without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdGateway, type KeyValue, type WatchEvent, prefixEnd } from "../../src/cluster/etcd-gateway.ts";
import { RunnelError } from "../../src/errors.ts";
import { type EtcdServer, etcdOrSkip, startEtcd, TcpProxy } from "./etcd-harness.ts";

const HAVE_ETCD = etcdOrSkip("etcd-gateway.test.ts");

/** Polls `condition` until it holds; fails after `boundMs`. */
async function until(condition: () => boolean, boundMs = 20_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${boundMs} ms`);
    await Bun.sleep(20);
  }
}

describe.skipIf(!HAVE_ETCD)("EtcdGateway against a real etcd", () => {
  let etcd: EtcdServer;
  let gateway: EtcdGateway;
  beforeAll(async () => {
    etcd = await startEtcd();
    gateway = new EtcdGateway({ endpoints: [etcd.endpoint], requestTimeoutMs: 2000 });
  });
  afterAll(async () => {
    await etcd[Symbol.asyncDispose]();
  });

  test("put then range by prefix returns the keys in order, with their revisions", async () => {
    await gateway.put("/kv/b", "two");
    const first = await gateway.put("/kv/a", "one");
    await gateway.put("/kw/other", "outside");
    const listed = await gateway.range("/kv/", { prefix: true });
    expect(listed.kvs.map((kv) => [kv.key, kv.value])).toEqual([["/kv/a", "one"], ["/kv/b", "two"]]);
    expect(listed.kvs[0]?.modRevision).toBe(first.revision);
    expect(listed.revision).toBeGreaterThanOrEqual(first.revision);
    expect((await gateway.delete("/kv/", { prefix: true })).deleted).toBe(2);
    expect((await gateway.range("/kv/", { prefix: true })).kvs).toEqual([]);
  });

  test("a txn runs success when every compare holds and failure (with its ranges) otherwise", async () => {
    const created = await gateway.txn([{ key: "/txn/k", target: "createRevision", result: "equal", value: 0 }], [{ op: "put", key: "/txn/k", value: "v1" }]);
    expect(created.succeeded).toBe(true);
    const again = await gateway.txn(
      [{ key: "/txn/k", target: "createRevision", result: "equal", value: 0 }],
      [{ op: "put", key: "/txn/k", value: "never" }],
      [{ op: "range", key: "/txn/k" }],
    );
    expect(again.succeeded).toBe(false);
    expect(again.ranges[0]?.[0]?.value).toBe("v1");
    const onMod = await gateway.txn([{ key: "/txn/k", target: "modRevision", result: "equal", value: created.revision }], [{ op: "put", key: "/txn/k", value: "v2" }]);
    expect(onMod.succeeded).toBe(true);
    const staleMod = await gateway.txn([{ key: "/txn/k", target: "modRevision", result: "equal", value: created.revision }], [{ op: "put", key: "/txn/k", value: "v3" }]);
    expect(staleMod.succeeded).toBe(false);
    expect((await gateway.txn([{ key: "/txn/k", target: "value", result: "equal", value: "v2" }], [])).succeeded).toBe(true);
    expect((await gateway.txn([{ key: "/txn/k", target: "version", result: "equal", value: 2 }], [])).succeeded).toBe(true);
    expect((await gateway.txn([{ key: "/txn/k", target: "version", result: "greater", value: 2 }], [])).succeeded).toBe(false);
  });

  test("a key on a lease lives while kept alive and goes when the lease is revoked", async () => {
    const lease = await gateway.leaseGrant(5);
    expect(lease.ttlSeconds).toBe(5);
    await gateway.put("/lease/k", "held", { lease: lease.id });
    expect(await gateway.leaseKeepAlive(lease.id)).toBe(5);
    expect((await gateway.range("/lease/k")).kvs[0]?.lease).toBe(lease.id);
    await gateway.leaseRevoke(lease.id);
    expect((await gateway.range("/lease/k")).kvs).toEqual([]);
    expect(await gateway.leaseKeepAlive(lease.id)).toBe(0);
    await gateway.leaseRevoke(lease.id); // already gone: not an error
  });

  test("a watch lists the prefix, then delivers puts and deletes in order", async () => {
    await gateway.put("/w1/a", "0");
    const snapshots: KeyValue[][] = [];
    const events: WatchEvent[] = [];
    const watch = gateway.watchPrefix("/w1/", { onSnapshot: (kvs) => snapshots.push([...kvs]), onEvents: (batch) => events.push(...batch) });
    await until(() => snapshots.length === 1);
    expect(snapshots[0]?.map((kv) => kv.value)).toEqual(["0"]);
    await gateway.put("/w1/a", "1");
    await gateway.delete("/w1/a");
    await gateway.put("/w2/elsewhere", "x");
    await until(() => events.length === 2);
    expect(events.map((event) => [event.type, event.kv.key, event.kv.value])).toEqual([["put", "/w1/a", "1"], ["delete", "/w1/a", ""]]);
    await watch.close();
  });

  test("a watch resumes after etcd restarts, missing nothing written while it was down", async () => {
    const events: WatchEvent[] = [];
    const errors: RunnelError[] = [];
    let listed = false;
    const watch = gateway.watchPrefix("/w3/", { onSnapshot: () => (listed = true), onEvents: (batch) => events.push(...batch), onError: (error) => errors.push(error) });
    // A put before the watch's first listing would be in that listing, not an event.
    await until(() => listed);
    await gateway.put("/w3/before", "1");
    await until(() => events.length === 1);
    await etcd.stop();
    await etcd.start();
    await gateway.put("/w3/after-1", "2");
    await gateway.put("/w3/after-2", "3");
    await until(() => events.length === 3, 15_000);
    expect(events.map((event) => event.kv.key)).toEqual(["/w3/before", "/w3/after-1", "/w3/after-2"]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]?.code).toBe("CLUSTER_UNAVAILABLE");
    await watch.close();
  }, 30_000);

  test("a watch from a compacted revision lists the prefix again instead of missing changes", async () => {
    const first = await gateway.put("/w4/k", "old");
    await gateway.put("/w4/k", "new");
    const latest = await gateway.put("/w4/other", "x");
    await gateway.compact(latest.revision);
    const snapshots: KeyValue[][] = [];
    const watch = gateway.watchPrefix("/w4/", { onSnapshot: (kvs) => snapshots.push([...kvs]), onEvents: () => {} }, first.revision);
    await until(() => snapshots.length === 1);
    expect(snapshots[0]?.map((kv) => [kv.key, kv.value])).toEqual([["/w4/k", "new"], ["/w4/other", "x"]]);
    expect(watch.revision).toBeGreaterThan(latest.revision);
    await watch.close();
  });

  test("a call through a cut link fails with CLUSTER_UNAVAILABLE within its time bound", async () => {
    using proxy = new TcpProxy(etcd.clientPort);
    const cutOff = new EtcdGateway({ endpoints: [proxy.endpoint], requestTimeoutMs: 300 });
    await cutOff.put("/cut/k", "through the proxy");
    proxy.cut();
    const failure = await cutOff.range("/cut/k").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RunnelError);
    expect((failure as RunnelError).code).toBe("CLUSTER_UNAVAILABLE");
    expect((failure as RunnelError).message).toContain("did not answer within 300 ms");
    proxy.heal();
    expect((await cutOff.range("/cut/k")).kvs[0]?.value).toBe("through the proxy");
  });

  test("the next endpoint is tried after one fails", async () => {
    const twoEndpoints = new EtcdGateway({ endpoints: ["http://127.0.0.1:1", etcd.endpoint], requestTimeoutMs: 1000 });
    await expect(twoEndpoints.range("/x")).rejects.toThrow("http://127.0.0.1:1");
    expect((await twoEndpoints.range("/x")).kvs).toEqual([]);
  });
});

describe("prefixEnd", () => {
  test("increments the last byte below 0xff", () => {
    expect(Buffer.from(prefixEnd("/a/")).toString()).toBe("/a0");
    expect([...prefixEnd("a\u00ff")]).toEqual([0x61, 0xc3, 0xc0]);
  });
});
