/**
 * @module cluster/incarnation
 * Which disk a broker id stands for. Every cluster broker's data directory holds
 * `cluster-member.json` = `{cluster, brokerId, incarnation}` (a random id made the first time
 * that directory joins), and etcd holds the incarnation it last knew for each broker id, at
 * `/runnel/<cluster>/incarnations/<id>` (no lease: it outlives the broker).
 *
 * Why: the ISR names broker ids, and an id is only as good as the disk behind it. A broker whose
 * disk was replaced comes back with the same id and an empty log; if etcd still counts it in an
 * ISR, the controller may make it leader and every acknowledged record of that partition is gone
 * (Kafka's hole, closed there by KIP-966). So before a broker registers — while the controller
 * cannot yet pick it — it compares its incarnation with etcd's:
 *
 * - same, or etcd has none (a new broker): register as usual;
 * - different (a new disk): take this id out of every ISR it is in with other members (by
 *   compare-and-swap on each partition record); where it is the *last* ISR member, refuse to
 *   start, naming the partitions, unless `clusterAcceptDataLoss` says to lead them empty; then
 *   record the new incarnation and register. The broker then catches up as a follower and
 *   rejoins ISRs the normal way.
 *
 * A data directory that belongs to another broker id or cluster stops start-up (like Kafka's
 * meta.properties): serving another broker's log under this id would be the same hole.
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import { z } from "zod";
import { RunnelError } from "../errors.ts";
import type { Storage } from "../log/storage.ts";
import type { PartitionState } from "./cluster-view.ts";
import type { EtcdGateway, KeyValue } from "./etcd-gateway.ts";
import { decodeRecord, encodePartition, type EtcdLayout, partitionRecordSchema } from "./etcd-layout.ts";

export const MEMBER_FILE = "cluster-member.json";

const memberSchema = z.object({ cluster: z.string(), brokerId: z.int().min(0), incarnation: z.string().regex(/^[0-9a-f]{32}$/) });
export type MemberRecord = z.infer<typeof memberSchema>;

const incarnationSchema = z.object({ incarnation: z.string() });

/** How many times a partition's ISR edit is retried when the record changed under it. */
const ISR_EDIT_ATTEMPTS = 5;

/**
 * This data directory's membership, made on first use. Throws INVALID_CONFIG when the directory
 * belongs to another broker id or cluster, or its file is damaged.
 */
export function localMember(storage: Storage, dataDir: string, cluster: string, brokerId: number): MemberRecord {
  const file = path.join(dataDir, MEMBER_FILE);
  const bytes = storage.readFile(file);
  if (bytes === null) {
    const made: MemberRecord = { cluster, brokerId, incarnation: crypto.randomBytes(16).toString("hex") };
    storage.writeFileAtomic(file, `${JSON.stringify(made)}\n`);
    return made;
  }
  const stored = decodeRecord(memberSchema, new TextDecoder().decode(bytes));
  if (stored === undefined) throw new RunnelError("INVALID_CONFIG", `${file} is damaged; it says which cluster broker this data directory is. Restore it, or move the directory away to start this broker empty`);
  if (stored.cluster !== cluster || stored.brokerId !== brokerId) {
    throw new RunnelError(
      "INVALID_CONFIG",
      `data directory ${dataDir} belongs to broker ${stored.brokerId} of cluster ${JSON.stringify(stored.cluster)}, not broker ${brokerId} of ${JSON.stringify(cluster)}; start it with --broker-id ${stored.brokerId} and that cluster, or give this broker another --data-dir`,
    );
  }
  return stored;
}

export interface IncarnationCheck {
  /** Partitions this broker was taken out of the ISR of (its disk is new). */
  readonly leftIsr: readonly string[];
  /** True when etcd knew another incarnation for this id: the broker's disk was replaced. */
  readonly replaced: boolean;
}

/**
 * Makes etcd's incarnation for `member.brokerId` this one, first taking the id out of the ISRs
 * it held on its old disk (see the module comment). Call before registering. Throws
 * INVALID_CONFIG naming the partitions where this id is the last ISR member, unless
 * `acceptDataLoss`.
 */
export async function claimIncarnation(gateway: EtcdGateway, layout: EtcdLayout, member: MemberRecord, acceptDataLoss: boolean): Promise<IncarnationCheck> {
  const key = layout.incarnationKey(member.brokerId);
  const [current] = (await gateway.range(key)).kvs;
  const known = current === undefined ? undefined : decodeRecord(incarnationSchema, current.value)?.incarnation;
  if (known === member.incarnation) return { leftIsr: [], replaced: false };
  const replaced = current !== undefined;
  const leftIsr = replaced ? await leaveIsrs(gateway, layout, member.brokerId, acceptDataLoss) : [];
  // Compared on the key's version as read: a second process claiming the id meanwhile makes one fail.
  const written = await gateway.txn(
    [{ key, target: "modRevision", result: "equal", value: current?.modRevision ?? 0 }],
    [{ op: "put", key, value: JSON.stringify({ incarnation: member.incarnation }) }],
  );
  if (!written.succeeded) throw new RunnelError("CLUSTER_UNAVAILABLE", `broker id ${member.brokerId}'s incarnation changed in etcd while this broker claimed it; is another broker starting with this id?`);
  return { leftIsr, replaced };
}

/** Takes `brokerId` out of every ISR it shares; refuses where it is the only member. */
async function leaveIsrs(gateway: EtcdGateway, layout: EtcdLayout, brokerId: number, acceptDataLoss: boolean): Promise<string[]> {
  const listed = await gateway.range(`${layout.prefix}topics/`, { prefix: true });
  const held: Array<{ topic: string; partition: number; kv: KeyValue }> = [];
  const last: string[] = [];
  for (const kv of listed.kvs) {
    const parsed = layout.parse(kv.key);
    if (parsed.kind !== "partition") continue;
    const record = decodeRecord(partitionRecordSchema, kv.value);
    if (record === undefined || !record.isr.includes(brokerId)) continue;
    if (record.isr.length === 1) last.push(`${parsed.topic}/${parsed.partition}`);
    else held.push({ topic: parsed.topic, partition: parsed.partition, kv });
  }
  if (last.length > 0 && !acceptDataLoss) {
    throw new RunnelError(
      "INVALID_CONFIG",
      `broker ${brokerId}'s data directory is new, but etcd counts this broker as the last in-sync replica of ${last.slice(0, 10).join(", ")}${last.length > 10 ? ` and ${last.length - 10} more` : ""}: leading them from an empty log would lose every acknowledged record. Restore the old disk, or start with --cluster-accept-data-loss true to lead them empty`,
    );
  }
  for (const { topic, partition, kv } of held) await removeFromIsr(gateway, layout, topic, partition, brokerId, kv);
  return held.map(({ topic, partition }) => `${topic}/${partition}`);
}

/** Edits the record as listed (`listed`) first, and re-reads it only when it changed meanwhile. */
async function removeFromIsr(gateway: EtcdGateway, layout: EtcdLayout, topic: string, partition: number, brokerId: number, listed: KeyValue): Promise<void> {
  const key = layout.partitionKey(topic, partition);
  for (let attempt = 0; attempt < ISR_EDIT_ATTEMPTS; attempt++) {
    const kv = attempt === 0 ? listed : (await gateway.range(key)).kvs[0];
    const record = kv === undefined ? undefined : decodeRecord(partitionRecordSchema, kv.value);
    if (kv === undefined || record === undefined || !record.isr.includes(brokerId) || record.isr.length === 1) return;
    // If the old disk still leads (restarted within its lease), it leads no more: no leader and a
    // higher epoch, the state the controller gives a dead leader's partition; it then elects a
    // remaining ISR member.
    const wasLeader = record.leader === brokerId;
    const next: Omit<PartitionState, "version"> = {
      ...record,
      leader: wasLeader ? -1 : record.leader,
      leaderEpoch: wasLeader ? record.leaderEpoch + 1 : record.leaderEpoch,
      isr: record.isr.filter((id) => id !== brokerId),
      replicas: record.replicas,
    };
    const result = await gateway.txn([{ key, target: "modRevision", result: "equal", value: kv.modRevision }], [{ op: "put", key, value: encodePartition(next) }]);
    if (result.succeeded) return;
  }
  throw new RunnelError("CLUSTER_UNAVAILABLE", `could not take broker ${brokerId} out of the ISR of ${topic}/${partition}: the record kept changing; start the broker again`);
}
