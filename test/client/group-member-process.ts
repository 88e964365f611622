/**
 * @module test/client/group-member-process
 * A group member as its own process, for tests that SIGKILL one: runs a GroupConsumer on
 * `broker group topic sessionTimeoutMs` and prints one JSON line per event to stdout —
 * `assigned` / `revoked` / `lost` (with partitions and the wall-clock `atMs`) and `consumed`
 * (partition and offset, with `owned: false` if it came from a partition not held at that
 * moment), `committed` (partition and offset, once the broker acknowledged a commit), and every
 * 500 ms `state` (the partitions its consumer serves, with their next offsets, for failure messages). SIGTERM prints `closing`, closes it (commit, leave) and exits 0.
 */
import { GroupConsumer, type TopicPartition } from "../../src/client/group-consumer.ts";

const [broker, groupId, topic, sessionTimeoutText] = process.argv.slice(2);
if (broker === undefined || groupId === undefined || topic === undefined) throw new Error("usage: broker group topic [sessionTimeoutMs]");

const held = new Set<number>();
/**
 * Resolves once the line is out of the process (in the pipe). The loop awaits it before asking
 * for the next message, which counts this one as processed (so auto-commit may commit it): while
 * the pipe is full (a loaded machine, a slow reader) lines queue in the process, and a SIGKILL
 * or the process.exit() after close() would drop lines of messages whose offsets are committed,
 * and the test would wait for them forever. Not a synchronous write: that would stop the
 * heartbeats too while the pipe is full.
 */
const print = (event: Record<string, unknown>): Promise<void> =>
  new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify({ ...event, atMs: Date.now() })}\n`, () => resolve()));
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
      void print({ event: "closed" }).then(() => process.exit(0));
    },
    (error: unknown) => {
      void print({ event: "error", message: String(error) }).then(() => process.exit(1));
    },
  );
});

print({ event: "started" });
// What the consumer serves and where it stands, for the test's failure message.
setInterval(() => print({ event: "state", partitions: partitionsOf(consumer.assignment()), positions: consumer.positions().map(({ partition, offset }) => [partition, offset]) }), 500).unref();
try {
  for await (const message of consumer) {
    await print({ event: "consumed", partition: message.partition, offset: message.offset, owned: held.has(message.partition) });
  }
} catch (error) {
  await print({ event: "error", message: String(error) });
  process.exit(1);
}
