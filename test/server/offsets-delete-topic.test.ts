/**
 * deleteTopic deletes the topic's committed consumer offsets, through a real broker: a topic
 * created again under the same name starts with nothing committed — in the same broker, after a
 * clean restart on the same data directory, and after a kill -9 right after the delete was
 * answered — while the offsets of other topics and groups stay as they were.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { spawnBroker } from "../durability/broker-process.ts";
import { type Message, startTestBroker, tempDir, TestClient } from "./helpers.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = tempDir("runnel-offsets-delete-");
  dirs.push(dir);
  return dir;
}

const NOTHING = { offset: -1, metadata: "" };

/** Topics `doomed` and `kept` (2 partitions each) and commits of three groups over both. */
async function seed(client: TestClient): Promise<void> {
  for (const topic of ["doomed", "kept"]) expect(await client.request({ op: "createTopic", topic, partitions: 2 })).not.toHaveProperty("error");
  const commits: Array<[string, Array<{ topic: string; partition: number; offset: number; metadata?: string }>]> = [
    ["g1", [{ topic: "doomed", partition: 0, offset: 5 }, { topic: "doomed", partition: 1, offset: 6, metadata: "d" }, { topic: "kept", partition: 0, offset: 7, metadata: "k" }]],
    ["g2", [{ topic: "doomed", partition: 0, offset: 8 }]],
    ["g3", [{ topic: "kept", partition: 1, offset: 9 }]],
  ];
  for (const [group, offsets] of commits) {
    const answer = await client.request({ op: "commitOffsets", group, offsets });
    expect(answer.results).toEqual(offsets.map(({ topic, partition }) => ({ topic, partition })));
  }
}

/** What fetchOffsets says for the two partitions of `doomed`, per group. */
async function doomedOffsets(client: TestClient, group: string): Promise<unknown> {
  const answer = await client.request({ op: "fetchOffsets", group, partitions: [{ topic: "doomed", partition: 0 }, { topic: "doomed", partition: 1 }] });
  return answer.offsets;
}

/** Everything each group has committed (fetchOffsets without partitions), sorted. */
async function allOffsets(client: TestClient): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  for (const group of ["g1", "g2", "g3"]) {
    const answer = await client.request({ op: "fetchOffsets", group });
    result[group] = (answer.offsets as Message[]).toSorted((a, b) => `${a.topic}/${a.partition}`.localeCompare(`${b.topic}/${b.partition}`));
  }
  return result;
}

const SURVIVORS = {
  g1: [{ topic: "kept", partition: 0, offset: 7, metadata: "k" }],
  g2: [],
  g3: [{ topic: "kept", partition: 1, offset: 9, metadata: "" }],
};

/** Creates `doomed` again and checks that no group has anything committed on it. */
async function expectRecreatedWithNothingCommitted(client: TestClient): Promise<void> {
  expect(await client.request({ op: "createTopic", topic: "doomed", partitions: 2 })).not.toHaveProperty("error");
  for (const group of ["g1", "g2", "g3"]) {
    expect(await doomedOffsets(client, group)).toEqual([
      { topic: "doomed", partition: 0, ...NOTHING },
      { topic: "doomed", partition: 1, ...NOTHING },
    ]);
  }
  expect(await allOffsets(client)).toEqual(SURVIVORS);
}

describe("deleteTopic and committed offsets", () => {
  test("a topic deleted and created again has nothing committed; other topics and groups keep theirs", async () => {
    await using broker = await startTestBroker();
    await using client = await TestClient.connect(broker.port);
    await seed(client);
    expect(await doomedOffsets(client, "g1")).toEqual([
      { topic: "doomed", partition: 0, offset: 5, metadata: "" },
      { topic: "doomed", partition: 1, offset: 6, metadata: "d" },
    ]);
    expect(await client.request({ op: "deleteTopic", topic: "doomed" })).toEqual({ id: expect.any(Number) });
    expect(await doomedOffsets(client, "g2")).toEqual([
      { topic: "doomed", partition: 0, ...NOTHING },
      { topic: "doomed", partition: 1, ...NOTHING },
    ]);
    await expectRecreatedWithNothingCommitted(client);
    const fresh = await client.request({ op: "commitOffsets", group: "g2", offsets: [{ topic: "doomed", partition: 1, offset: 1 }] });
    expect(fresh.results).toEqual([{ topic: "doomed", partition: 1 }]);
    expect(await doomedOffsets(client, "g2")).toEqual([
      { topic: "doomed", partition: 0, ...NOTHING },
      { topic: "doomed", partition: 1, offset: 1, metadata: "" },
    ]);
  });

  test("the deleted offsets stay deleted across a restart on the same data directory", async () => {
    const dataDir = newDir();
    {
      await using broker = await startTestBroker({ dataDir });
      await using client = await TestClient.connect(broker.port);
      await seed(client);
      await client.request({ op: "deleteTopic", topic: "doomed" });
    }
    await using broker = await startTestBroker({ dataDir });
    await using client = await TestClient.connect(broker.port);
    await expectRecreatedWithNothingCommitted(client);
  });

  test("a commit pipelined just before deleteTopic is deleted with the topic, one just after is refused", async () => {
    await using broker = await startTestBroker();
    await using client = await TestClient.connect(broker.port);
    await seed(client);
    const offsets = [{ topic: "doomed", partition: 0, offset: 50 }];
    const before = client.send({ op: "commitOffsets", group: "g2", offsets });
    const deletion = client.send({ op: "deleteTopic", topic: "doomed" });
    const secondDeletion = client.send({ op: "deleteTopic", topic: "doomed" });
    const after = client.send({ op: "commitOffsets", group: "g2", offsets });
    const answers = [await client.next(), await client.next(), await client.next(), await client.next()];
    expect(answers.map((answer) => answer.id)).toEqual([before, deletion, secondDeletion, after]);
    expect(answers[0]).toEqual({ id: before, results: [{ topic: "doomed", partition: 0 }] });
    expect(answers[1]).toEqual({ id: deletion });
    expect(answers[2]).toMatchObject({ error: { code: "UNKNOWN_TOPIC" } });
    expect(answers[3]).toMatchObject({ results: [{ topic: "doomed", partition: 0, error: { code: "UNKNOWN_TOPIC" } }] });
    await expectRecreatedWithNothingCommitted(client);
  });

  test("the deletion is durable once answered: a kill -9 right after it does not bring the offsets back", async () => {
    const dataDir = newDir();
    const first = await spawnBroker(dataDir, 0);
    try {
      await using client = await TestClient.connect(first.port);
      await seed(client);
      expect(await client.request({ op: "deleteTopic", topic: "doomed" })).toEqual({ id: expect.any(Number) });
    } finally {
      await first.kill();
    }
    const second = await spawnBroker(dataDir, 0);
    try {
      await using client = await TestClient.connect(second.port);
      await expectRecreatedWithNothingCommitted(client);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
