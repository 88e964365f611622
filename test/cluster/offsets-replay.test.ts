import { describe, expect, test } from "bun:test";
import {
  encodeCommit,
  encodeGroupDeleted,
  encodeSnapshotEntry,
  encodeSnapshotMark,
  encodeTopicDeleted,
  OffsetsReplay,
  RECORD,
} from "../../src/cluster/offsets-replay.ts";
import { javaStringHash, offsetsPartitionOf } from "../../src/cluster/offsets-topic.ts";

const commit = (topic: string, partition: number, offset: number) => ({ topic, partition, offset, metadata: "" });

function replay(values: Uint8Array[]): OffsetsReplay {
  const state = new OffsetsReplay();
  for (const value of values) state.apply(value);
  return state;
}

describe("a group's partition of __consumer_offsets", () => {
  test("is Kafka's: Java's String.hashCode of the group id, made non-negative, modulo the partition count", () => {
    // What a JVM printed for "x".hashCode() (java 17, this box); the last one goes past the BMP (a surrogate pair).
    expect(javaStringHash("")).toBe(0);
    expect(javaStringHash("a")).toBe(97);
    expect(javaStringHash("group")).toBe(98629247);
    expect(javaStringHash("consumer-group-1")).toBe(147483020);
    expect(javaStringHash("grüße-😀")).toBe(347391577);
    expect(javaStringHash("analytics-group")).toBe(-609982088);
    // Kafka's partitionFor with its default 50 partitions, as the JVM computed it.
    expect(offsetsPartitionOf("analytics-group", 50)).toBe(10);
    expect(offsetsPartitionOf("orders-consumers", 50)).toBe(39);
  });

  test("spreads many groups over every partition", () => {
    const used = new Set(Array.from({ length: 1000 }, (_, index) => offsetsPartitionOf(`group-${index}`, 16)));
    expect(used.size).toBe(16);
  });
});

describe("replaying a partition of __consumer_offsets", () => {
  test("later commits of a group override earlier ones, entry by entry", () => {
    const state = replay([encodeCommit("g", [commit("t", 0, 5), commit("t", 1, 7)]), encodeCommit("g", [commit("t", 0, 9)])]).finish();
    expect(state.get("g", "t", 0)?.offset).toBe(9);
    expect(state.get("g", "t", 1)?.offset).toBe(7);
    expect(state.entryCount).toBe(2);
  });

  test("a deleted group and a deleted topic leave nothing behind", () => {
    const state = replay([
      encodeCommit("g", [commit("t", 0, 5)]),
      encodeCommit("h", [commit("t", 0, 3), commit("u", 0, 4)]),
      encodeGroupDeleted("g"),
      encodeTopicDeleted("t"),
    ]).finish();
    expect(state.groups.has("g")).toBe(false);
    expect(state.get("h", "t", 0)).toBeUndefined();
    expect(state.get("h", "u", 0)?.offset).toBe(4);
    expect(state.entryCount).toBe(1);
  });

  test("a complete snapshot replaces what came before it, so a group deleted before it stays deleted once older records are gone", () => {
    const state = replay([
      // The older records retention may already have deleted are missing here: the snapshot restates the rest.
      encodeSnapshotMark(RECORD.snapshotBegin, 7),
      encodeSnapshotEntry("h", [commit("t", 0, 3)]),
      encodeSnapshotMark(RECORD.snapshotEnd, 7),
      encodeCommit("h", [commit("t", 0, 8)]),
    ]).finish();
    expect(state.get("h", "t", 0)?.offset).toBe(8);
    expect([...state.groups.keys()]).toEqual(["h"]);
  });

  test("a snapshot cut short is ignored, and the commits after it still count", () => {
    const state = replay([
      encodeCommit("g", [commit("t", 0, 5)]),
      encodeSnapshotMark(RECORD.snapshotBegin, 1),
      encodeSnapshotEntry("g", [commit("t", 0, 5)]),
      // The leader died here; the next leader appends a commit and never ends snapshot 1.
      encodeCommit("g", [commit("t", 1, 2)]),
      encodeSnapshotMark(RECORD.snapshotBegin, 2),
      encodeSnapshotEntry("g", [commit("t", 0, 5)]),
    ]).finish();
    expect(state.get("g", "t", 0)?.offset).toBe(5);
    expect(state.get("g", "t", 1)?.offset).toBe(2);
  });

  test("commits interleaved with a snapshot reach the state the snapshot's end adopts", () => {
    const state = replay([
      encodeSnapshotMark(RECORD.snapshotBegin, 3),
      encodeSnapshotEntry("g", [commit("t", 0, 5)]),
      encodeCommit("g", [commit("t", 0, 6)]),
      encodeSnapshotMark(RECORD.snapshotEnd, 3),
    ]).finish();
    expect(state.get("g", "t", 0)?.offset).toBe(6);
  });

  test("records of another format are skipped and counted, not applied", () => {
    const state = replay([new Uint8Array([1, 2, 3]), encodeCommit("g", [commit("t", 0, 1)])]);
    expect(state.skipped).toBe(1);
    expect(state.finish().get("g", "t", 0)?.offset).toBe(1);
  });
});
