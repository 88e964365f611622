/**
 * Kill -9 torture: the broker runs as a child process while idempotent producers (two
 * `written`, two `synced`) send to four partitions and a consumer group reads and commits.
 * At seeded random moments (after a random number of new acknowledgements) the broker gets
 * SIGKILL and is restarted on the same port over the same data directory; clients reconnect
 * and retry. After every restart and at the end the topic is audited: every acknowledged
 * message present exactly once at its acknowledged offset, no duplicates from retries, order
 * per producer and partition, checksums, contiguous offsets; committed offsets never behind
 * an acknowledged commit; the broker back within its start deadline.
 *
 * Seed: RUNNEL_TORTURE_SEED (default 5). Kill cycles: RUNNEL_TORTURE_KILLS (default 12).
 * RUNNEL_TORTURE_IDEMPOTENT=0 runs the producers without idempotence: the control experiment,
 * which should fail with duplicates (retries of batches whose answer the kill swallowed).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Admin } from "../../src/client/admin.ts";
import { Connection } from "../../src/client/connection.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { type Durability, Producer } from "../../src/client/producer.ts";
import { prng } from "../support/prng.ts";
import { type Acked, auditTopic } from "./log-audit.ts";
import { type BrokerProcess, spawnBroker, waitFor } from "./broker-process.ts";

const SEED = Number(process.env.RUNNEL_TORTURE_SEED ?? 5);
const KILLS = Number(process.env.RUNNEL_TORTURE_KILLS ?? 12);
const TOPIC = "torture";
const PARTITIONS = 4;
const GROUP = "torture-group";
const BURST = 40;
const IDEMPOTENT = process.env.RUNNEL_TORTURE_IDEMPOTENT !== "0";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-torture-"));
let broker: BrokerProcess | null = null;
afterAll(async () => {
  await broker?.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface Load {
  running: boolean;
  acked: Map<string, Acked>;
  failed: string[];
  loops: Promise<void>[];
  producers: Producer[];
}

/** One producer sending bursts of `<name>:<seq>` round-robin over the partitions until stopped. */
async function produceLoop(load: Load, producer: Producer, name: string): Promise<void> {
  let sequence = 0;
  while (load.running) {
    const burst: Promise<void>[] = [];
    for (let index = 0; index < BURST; index++) {
      const value = `${name}:${sequence}`;
      const partition = sequence % PARTITIONS;
      sequence++;
      burst.push(
        producer.send(TOPIC, { value, partition }).then(
          (result) => void load.acked.set(value, { partition: result.partition, offset: result.offset }),
          () => void load.failed.push(value),
        ),
      );
    }
    await Promise.all(burst);
    await Bun.sleep(2); // pacing, so the audits stay small; not a wait for a condition
  }
}

interface GroupReader {
  running: boolean;
  /** Commits the broker acknowledged: partition -> highest committed offset. */
  committedAcked: Map<number, number>;
  lastOffset: Map<number, number>;
  seen: number;
  problems: string[];
  done: Promise<void>;
  consumer: Consumer;
}

/**
 * Reads every partition under a group name, checks offsets advance by one, commits every 200
 * messages. It assigns the partitions itself (no membership, whose soft state a broker restart
 * drops and whose rejoin re-reads from the last commit): what is tested is the commits' durability.
 */
function startGroupReader(address: string): GroupReader {
  const consumer = new Consumer({ broker: address, groupId: GROUP, autoCommit: false, from: "earliest", maxWaitMs: 50, retryTimeoutMs: 60_000, connectTimeoutMs: 30_000 });
  consumer.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition })));
  const reader: GroupReader = { running: true, committedAcked: new Map(), lastOffset: new Map(), seen: 0, problems: [], consumer, done: Promise.resolve() };
  reader.done = (async () => {
    while (reader.running) {
      const next = await consumer.next();
      if (next.done) return;
      const message = next.value;
      const previous = reader.lastOffset.get(message.partition) ?? -1;
      if (message.offset !== previous + 1) reader.problems.push(`consumer got ${message.partition}@${message.offset} after ${previous}`);
      reader.lastOffset.set(message.partition, message.offset);
      reader.seen++;
      if (reader.seen % 200 === 0) await commitQuietly(reader);
    }
  })();
  return reader;
}

async function commitQuietly(reader: GroupReader): Promise<void> {
  const offsets = [...reader.lastOffset].map(([partition, offset]) => ({ topic: TOPIC, partition, offset: offset + 1 }));
  try {
    await reader.consumer.commit(offsets);
  } catch {
    return; // the broker was down: not acknowledged, so nothing is promised
  }
  for (const { partition, offset } of offsets) reader.committedAcked.set(partition, Math.max(offset, reader.committedAcked.get(partition) ?? 0));
}

async function checkCommits(admin: Admin, committedBeforeKill: ReadonlyMap<number, number>, problems: string[]): Promise<void> {
  const partitions = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition }));
  for (const { partition, offset } of await admin.committedOffsets(GROUP, partitions)) {
    const acknowledged = committedBeforeKill.get(partition) ?? -1;
    if (offset < acknowledged) problems.push(`group commit for partition ${partition} is ${offset}, behind the acknowledged ${acknowledged}`);
  }
}

describe("Durability torture", () => {
  test(`every acknowledged message survives ${KILLS} seeded SIGKILLs exactly once, in order (seed ${SEED})`, async () => {
    const random = prng(SEED);
    broker = await spawnBroker(dataDir, 0, ["--log-level", "info"]);
    const port = broker.port;
    const address = `127.0.0.1:${port}`;
    const clientOptions = { broker: address, connectTimeoutMs: 30_000, requestTimeoutMs: 10_000, reconnectBackoffMs: 10, reconnectBackoffMaxMs: 100 };
    const admin = new Admin(clientOptions);
    await admin.createTopic(TOPIC, { partitions: PARTITIONS, config: { "segment.bytes": 256 * 1024, "flush.ms": 200 } });
    const durabilities: Durability[] = ["written", "written", "synced", "synced"];
    const load: Load = { running: true, acked: new Map(), failed: [], loops: [], producers: [] };
    durabilities.forEach((durability, index) => {
      const producer = new Producer({ ...clientOptions, durability, idempotent: IDEMPOTENT, lingerMs: 2, deliveryTimeoutMs: 120_000, retryBackoffMs: 10, retryBackoffMaxMs: 200 });
      load.producers.push(producer);
      load.loops.push(produceLoop(load, producer, `p${index}${durability[0]}`));
    });
    const reader = startGroupReader(address);
    const verifier = new Connection(clientOptions);
    const problems: string[] = [];
    const startTimes: number[] = [];
    const recoveryTimes: number[] = [];
    let verified = 0;
    let duplicatesAnswered = 0;
    try {
      for (let cycle = 0; cycle < KILLS; cycle++) {
        const target = load.acked.size + 300 + Math.floor(random() * 4_000);
        await waitFor(() => load.acked.size >= target, 20_000, `${target} acknowledged messages before kill ${cycle + 1}`);
        duplicatesAnswered += Number((await admin.stats()).batchesDuplicate);
        await broker.kill();
        const committedBeforeKill = new Map(reader.committedAcked);
        const ackedBeforeKill = new Map(load.acked);
        broker = await spawnBroker(dataDir, port, ["--log-level", "info"]);
        startTimes.push(broker.startMs);
        recoveryTimes.push((broker.startLine.recovery as { durationMs: number }).durationMs);
        expect(broker.startLine.recovery).toMatchObject({ clean: false, partitions: PARTITIONS });
        const audit = await auditTopic(verifier, TOPIC, PARTITIONS, ackedBeforeKill, problems);
        verified = Math.max(verified, audit.ackedVerified);
        await checkCommits(admin, committedBeforeKill, problems);
        expect(problems).toEqual([]);
      }
      load.running = false;
      await Promise.all(load.loops);
      for (const producer of load.producers) await producer.close();
      const final = await auditTopic(verifier, TOPIC, PARTITIONS, load.acked, problems);
      await waitFor(() => reader.seen >= final.records, 20_000, "the group reader to catch up");
      reader.running = false;
      await commitQuietly(reader);
      await checkCommits(admin, reader.committedAcked, problems);
      expect(problems.concat(reader.problems)).toEqual([]);
      expect(final.ackedVerified).toBe(load.acked.size);
      expect(reader.seen).toBe(final.records);
      expect(load.failed).toEqual([]);
      expect(Math.max(...startTimes)).toBeLessThan(20_000);
      const stats = await admin.stats();
      duplicatesAnswered += Number(stats.batchesDuplicate);
      const retries = load.producers.reduce((sum, producer) => sum + producer.metrics.retries, 0);
      console.log(
        `torture: seed ${SEED}, ${KILLS} kill cycles, ${final.records} messages in ${final.batches} batches, ${final.ackedVerified} acknowledged verified exactly once ` +
          `(mid-run audits verified up to ${verified}), consumer read ${reader.seen}, max restart-to-listening ${Math.round(Math.max(...startTimes))} ms ` +
          `(median ${Math.round(median(startTimes))} ms), max log recovery ${Math.round(Math.max(...recoveryTimes))} ms, ` +
          `${retries} producer retries, ${duplicatesAnswered} retried batches answered as duplicates (at least)`,
      );
    } finally {
      load.running = false;
      reader.running = false;
      await reader.consumer.close().catch(() => undefined);
      await verifier.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
    }
    expect(await broker.stop()).toBe(0);
    broker = null;
  }, 120_000);
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
