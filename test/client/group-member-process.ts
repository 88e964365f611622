/**
 * @module test/client/group-member-process
 * A group member as its own process, for tests that SIGKILL one: runs a GroupConsumer on
 * `broker group topic sessionTimeoutMs` and prints one JSON line per event to stdout —
 * `assigned` / `revoked` / `lost` (with partitions and the wall-clock `atMs`) and `consumed`
 * (partition and offset, with `owned: false` if it came from a partition not held at that
 * moment), and `committed` (partition and offset, once the broker acknowledged a commit). SIGTERM prints `closing`, closes it (commit, leave) and exits 0.
 */
import { GroupConsumer, type TopicPartition } from "../../src/client/group-consumer.ts";

const [broker, groupId, topic, sessionTimeoutText] = process.argv.slice(2);
if (broker === undefined || groupId === undefined || topic === undefined) throw new Error("usage: broker group topic [sessionTimeoutMs]");

const held = new Set<number>();
const print = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ ...event, atMs: Date.now() })}\n`);
};
const partitionsOf = (list: TopicPartition[]): number[] => list.map((entry) => entry.partition).sort((left, right) => left - right);

const consumer = new GroupConsumer({
  broker,
  groupId,
  sessionTimeoutMs: Number(sessionTimeoutText ?? 10_000),
  autoCommitIntervalMs: 200,
  maxWaitMs: 100,
  onAssigned: (partitions) => {
    for (const partition of partitionsOf(partitions)) held.add(partition);
    print({ event: "assigned", partitions: partitionsOf(partitions) });
  },
  onRevoked: (partitions) => {
    for (const partition of partitionsOf(partitions)) held.delete(partition);
    print({ event: "revoked", partitions: partitionsOf(partitions) });
  },
  onCommitted: (offsets) => {
    for (const { partition, offset } of offsets) print({ event: "committed", partition, offset });
  },
  onLost: (partitions) => {
    for (const partition of partitionsOf(partitions)) held.delete(partition);
    print({ event: "lost", partitions: partitionsOf(partitions) });
  },
}).subscribe(topic);

process.on("SIGTERM", () => {
  print({ event: "closing" });
  void consumer.close().then(
    () => {
      print({ event: "closed" });
      process.exit(0);
    },
    (error: unknown) => {
      print({ event: "error", message: String(error) });
      process.exit(1);
    },
  );
});

print({ event: "started" });
try {
  for await (const message of consumer) {
    print({ event: "consumed", partition: message.partition, offset: message.offset, owned: held.has(message.partition) });
  }
} catch (error) {
  print({ event: "error", message: String(error) });
  process.exit(1);
}
