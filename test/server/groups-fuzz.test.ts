/**
 * Seeded fuzz of the group operations over the wire: joins, heartbeats (some held with
 * waitMs), leaves, lists, describes, deletes and fenced commits, with real and made-up member
 * ids, wrong-typed fields, stale and future epochs and generations, and owned lists naming
 * partitions and topics that do not exist. Every request gets an answer — a result or an error
 * with a known code — and afterwards the broker still serves a fresh group.
 */
import { describe, expect, test } from "bun:test";
import { ERROR_CODES } from "../../src/errors.ts";
import { prng } from "../support/prng.ts";
import { type Message, startTestBroker, TestClient } from "./helpers.ts";

const SEED = 20_261_207;
const CONNECTIONS = 4;
const REQUESTS_PER_CONNECTION = 150;

function pick<Value>(random: () => number, values: readonly Value[]): Value {
  return values[Math.floor(random() * values.length)] as Value;
}

function groupRequest(random: () => number, memberIds: string[]): Message {
  const group = pick(random, ["g1", "g2", "g3"]);
  const memberId = memberIds.length > 0 && random() < 0.7 ? pick(random, memberIds) : pick(random, ["ghost", "", "x".repeat(300), 7]);
  const owned = random() < 0.8 ? [{ topic: pick(random, ["fz", "other", "nope", "bad/name"]), partitions: [Math.floor(random() * 6), Math.floor(random() * 100)] }] : "lots";
  const epoch = pick(random, [0, 1, 2, 99, -1, 2 ** 40, "one"]);
  const choices: Message[] = [
    { op: "joinGroup", group, topics: random() < 0.9 ? ["fz", "other"].slice(0, 1 + Math.floor(random() * 2)) : [], sessionTimeoutMs: pick(random, [undefined, 2_000, 5, "soon"]) },
    { op: "joinGroup", group, topics: ["fz"], assignor: pick(random, ["sticky", "range", "roundRobin", "magic"]) },
    { op: "heartbeat", group, memberId, memberEpoch: epoch, owned, waitMs: pick(random, [0, 0, 20, -5]) },
    { op: "leaveGroup", group, memberId },
    { op: "listGroups" },
    { op: "describeGroup", group },
    { op: "deleteGroup", group },
    { op: "commitOffsets", group, memberId, generation: pick(random, [0, 1, 5, 1_000, undefined]), offsets: [{ topic: "fz", partition: Math.floor(random() * 4), offset: Math.floor(random() * 10) }] },
  ];
  return pick(random, choices);
}

describe("group operations under seeded garbage", () => {
  test("every request is answered with a result or a known error code, and the broker still serves a fresh group", async () => {
    const random = prng(SEED);
    await using server = await startTestBroker({ groupSessionTimeoutMsMin: 100 });
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => TestClient.connect(server.port)));
    try {
      await clients[0]!.request({ op: "createTopic", topic: "fz", partitions: 3 });
      const memberIds: string[] = [];
      const codes = new Set<string>();
      await Promise.all(
        clients.map(async (client) => {
          for (let index = 0; index < REQUESTS_PER_CONNECTION; index++) {
            const answer = await client.request(groupRequest(random, memberIds));
            if (typeof answer.memberId === "string") memberIds.push(answer.memberId);
            const error = answer.error as { code?: unknown } | undefined;
            if (error !== undefined) {
              expect(Object.hasOwn(ERROR_CODES, String(error.code))).toBe(true);
              codes.add(String(error.code));
            }
          }
        }),
      );
      expect(codes.has("INVALID_REQUEST")).toBe(true);
      expect(codes.has("UNKNOWN_MEMBER")).toBe(true);
      const fresh = await clients[0]!.request({ op: "joinGroup", group: "after-the-storm", topics: ["fz"] });
      expect((fresh.assigned as Array<{ partitions: number[] }>).flatMap((entry) => entry.partitions)).toEqual([0, 1, 2]);
    } finally {
      for (const client of clients) await client[Symbol.asyncDispose]();
    }
  }, 30_000);
});
