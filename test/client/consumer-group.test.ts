/**
 * Consumer with a groupId and subscribe() is a group member (it hands its work to
 * client/group-consumer.ts): two consumers share a topic's partitions, each message is consumed
 * once across them, and when one closes the other takes every partition. assign() stays outside
 * any group (tools), and the two ways do not mix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Admin } from "../../src/client/admin.ts";
import { Consumer, type Message } from "../../src/client/consumer.ts";
import type { TopicPartition } from "../../src/client/group-member.ts";
import { Producer } from "../../src/client/producer.ts";
import { until } from "../support/wait.ts";
import { type RealBroker, startRealBroker } from "./real-broker.ts";

const PARTITIONS = 4;
const MESSAGES = 200;

let broker: RealBroker;
let admin: Admin;

beforeAll(async () => {
  broker = await startRealBroker();
  admin = new Admin({ broker: broker.address });
});

afterAll(async () => {
  await admin.close();
  await broker.stop();
});

/** A consumer running its loop in the background, keeping what it got and what it holds. */
class Running {
  readonly messages: Message[] = [];
  readonly held = new Set<number>();
  readonly consumer: Consumer;
  private readonly loop: Promise<void>;

  constructor(topic: string, group: string) {
    const note = (partitions: TopicPartition[], add: boolean) => {
      for (const { partition } of partitions) {
        if (add) this.held.add(partition);
        else this.held.delete(partition);
      }
    };
    const consumer = new Consumer({
      broker: broker.address,
      groupId: group,
      maxWaitMs: 100,
      sessionTimeoutMs: 3_000,
      autoCommitIntervalMs: 100,
      onAssigned: (partitions) => note(partitions, true),
      onRevoked: (partitions) => note(partitions, false),
      onLost: (partitions) => note(partitions, false),
    }).subscribe(topic);
    this.consumer = consumer;
    this.loop = (async () => {
      for await (const message of consumer) this.messages.push(message);
    })();
  }

  async close(): Promise<void> {
    await this.consumer.close();
    await this.loop;
  }
}

const at = (message: Message): string => `${message.partition}/${message.offset}`;

describe("Consumer as a group member", () => {
  test("two consumers of one group share the partitions; each message is consumed once; a close hands its share to the other", async () => {
    await admin.createTopic("shared", { partitions: PARTITIONS });
    const producer = new Producer({ broker: broker.address });
    const first = new Running("shared", "sharers");
    const second = new Running("shared", "sharers");
    await until(() => first.held.size > 0 && second.held.size > 0 && first.held.size + second.held.size === PARTITIONS, 15_000);
    expect([...first.held].filter((partition) => second.held.has(partition))).toEqual([]);
    expect(first.consumer.assignment().map((entry) => entry.partition).sort()).toEqual([...first.held].sort());

    await Promise.all(Array.from({ length: MESSAGES }, (_, index) => producer.send("shared", { value: `m${index}`, partition: index % PARTITIONS })));
    await until(() => first.messages.length + second.messages.length >= MESSAGES, 15_000);
    const all = [...first.messages, ...second.messages].map(at);
    expect(new Set(all).size).toBe(MESSAGES);
    expect(all.length).toBe(MESSAGES);
    for (const message of first.messages) expect(first.held.has(message.partition)).toBe(true);
    for (const message of second.messages) expect(second.held.has(message.partition)).toBe(true);

    await first.close();
    await until(() => second.held.size === PARTITIONS, 15_000);
    await Promise.all(Array.from({ length: MESSAGES }, (_, index) => producer.send("shared", { value: `n${index}`, partition: index % PARTITIONS })));
    await until(() => second.messages.length >= MESSAGES + (MESSAGES - first.messages.length), 15_000);
    // The first member committed what it processed before letting go: nothing is read twice.
    const after = [...first.messages, ...second.messages].map(at);
    expect(new Set(after).size).toBe(after.length);
    expect(after.length).toBe(2 * MESSAGES);
    await second.close();
    await producer.close();
    expect((await admin.describeGroup("sharers")).members).toEqual([]);
  });

  test("assign() consumes the given partitions without joining the group", async () => {
    await admin.createTopic("tooling", { partitions: 2 });
    const producer = new Producer({ broker: broker.address });
    await producer.send("tooling", { value: "x", partition: 1 });
    await producer.close();
    const consumer = new Consumer({ broker: broker.address, groupId: "tools", maxWaitMs: 100 }).assign([{ topic: "tooling", partition: 1 }]);
    const first = await consumer.next();
    expect(first.done).toBe(false);
    expect((await admin.describeGroup("tools")).members).toEqual([]);
    await consumer.commit();
    expect((await admin.committedOffsets("tools", [{ topic: "tooling", partition: 1 }]))[0]!.offset).toBe(1);
    await consumer.close();
  });

  test("a group subscription and assign() do not mix", () => {
    const subscribed = new Consumer({ broker: broker.address, groupId: "mix" }).subscribe("tooling");
    expect(() => subscribed.assign([{ topic: "tooling", partition: 0 }])).toThrow(/does not mix/);
    const assigned = new Consumer({ broker: broker.address, groupId: "mix" }).assign([{ topic: "tooling", partition: 0 }]);
    expect(() => assigned.subscribe("tooling")).toThrow(/does not mix/);
  });
});
