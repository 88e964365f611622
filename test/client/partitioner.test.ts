import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { StickyPartitioner, murmur2, partitionForKey } from "../../src/client/partitioner.ts";

const encode = (text: string) => new TextEncoder().encode(text);

describe("murmur2", () => {
  // Apache Kafka's own vectors: clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (testMurmur2).
  const kafkaVectors: Array<[string, number]> = [
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ];

  test.each(kafkaVectors)("hashes %p as Kafka's Utils.murmur2 does", (text, expected) => {
    expect(murmur2(encode(text))).toBe(expected);
  });

  test("hashes only the first `length` bytes when given a length", () => {
    const padded = new Uint8Array(64);
    padded.set(encode("foobar"));
    expect(murmur2(padded, 6)).toBe(-790332482);
  });
});

describe("docs/protocol.md section 5: the murmur2 test vectors", () => {
  const doc = fs.readFileSync(path.resolve(import.meta.dir, "../../docs/protocol.md"), "utf8");
  const table = doc.slice(doc.indexOf("<!-- murmur2-vectors:begin -->"), doc.indexOf("<!-- murmur2-vectors:end -->"));
  const rows = [...table.matchAll(/^\| `([^`]*)`[^|]* \| (-?\d+) \| (\d+) \| (\d+) \|$/gm)];

  test("the doc lists vectors, Kafka's own among them", () => {
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows.map((row) => row[1])).toEqual(expect.arrayContaining(["21", "foobar", "abc", ""]));
  });

  test("every row of the doc matches the reference client: hash, positive hash and partition of 12", () => {
    for (const [, key = "", hash, positive, partition] of rows) {
      expect({ key, hash: murmur2(encode(key)), positive: murmur2(encode(key)) & 0x7fffffff, partition: partitionForKey(key, 12) }).toEqual({
        key,
        hash: Number(hash),
        positive: Number(positive),
        partition: Number(partition),
      });
    }
  });
});

describe("partitionForKey", () => {
  test("places keys with Kafka's (murmur2 & 0x7fffffff) % n rule", () => {
    expect(partitionForKey("21", 16)).toBe((-973932308 & 0x7fffffff) % 16);
    expect(partitionForKey("foobar", 7)).toBe((-790332482 & 0x7fffffff) % 7);
  });

  test("a string key and its UTF-8 bytes land on the same partition", () => {
    for (const key of ["user-1", "ünïcödé", "🚀 rocket", "x".repeat(5000)]) {
      expect(partitionForKey(key, 13)).toBe(partitionForKey(encode(key), 13));
    }
  });

  test("placement is stable: fixed keys keep fixed partitions across runs", () => {
    // Pinned so a change to hashing (which would move every keyed record) fails loudly.
    const placed = ["order-1", "order-2", "order-3", "customer-42", ""].map((key) => partitionForKey(key, 12));
    expect(placed).toEqual([10, 3, 3, 9, 9]);
    expect(murmur2(encode(""))).toBe(275646681);
  });
});

describe("StickyPartitioner", () => {
  test("sticks to one partition until that partition's batch is sealed", () => {
    let next = 0.1;
    const sticky = new StickyPartitioner(() => next);
    const first = sticky.partition("t", 4);
    expect(first).toBe(0);
    for (let i = 0; i < 100; i++) expect(sticky.partition("t", 4)).toBe(first);
    next = 0.6;
    sticky.batchSealed("t", 3, 4); // another partition's batch: no move
    expect(sticky.partition("t", 4)).toBe(first);
    sticky.batchSealed("t", first, 4);
    expect(sticky.partition("t", 4)).toBe(2);
  });

  test("moves to a different partition when the random pick repeats the previous one", () => {
    const sticky = new StickyPartitioner(() => 0);
    expect(sticky.partition("t", 3)).toBe(0);
    sticky.batchSealed("t", 0, 3);
    expect(sticky.partition("t", 3)).toBe(1);
  });

  test("keeps one choice per topic", () => {
    const values = [0.1, 0.9];
    const sticky = new StickyPartitioner(() => values.shift() ?? 0);
    expect(sticky.partition("a", 10)).toBe(1);
    expect(sticky.partition("b", 10)).toBe(9);
    expect(sticky.partition("a", 10)).toBe(1);
  });
});
