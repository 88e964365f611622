/**
 * @module cluster/cluster-producer-ids
 * Cluster-wide idempotent-producer ids. Every broker of a cluster hands out ids, and a producer's
 * batches may land on any of them after a failover, so ids must be unique across the cluster, not
 * per broker. One etcd key (`/runnel/<cluster>/producer-ids`, `{reservedEnd}`) counts the ids
 * handed out so far; a broker takes a block of ids by advancing it with a txn compared on the
 * key's mod revision (an absent key has mod revision 0), so two brokers never get one block.
 * The counter only grows: ids have gaps (a broker's unused rest of a block), never repeats.
 */
import { RunnelError } from "../errors.ts";
import type { EtcdGateway } from "./etcd-gateway.ts";
import { decodeRecord, type EtcdLayout, producerIdsRecordSchema } from "./etcd-layout.ts";

/** Ids one etcd write reserves (same as the single-node file's block). */
export const CLUSTER_ID_BLOCK = 1_000;
/** Lost compare-and-swap races before a reservation gives up (other brokers won each time). */
const RESERVE_ATTEMPTS_MAX = 20;

export interface IdBlock {
  /** First id of the block. */
  readonly start: number;
  /** One past the last id of the block. */
  readonly end: number;
}

/** Advances the counter by `count` and answers the block taken. Throws CLUSTER_UNAVAILABLE. */
export async function reserveProducerIdBlock(gateway: EtcdGateway, layout: EtcdLayout, count = CLUSTER_ID_BLOCK): Promise<IdBlock> {
  const key = layout.producerIdsKey;
  for (let attempt = 0; attempt < RESERVE_ATTEMPTS_MAX; attempt += 1) {
    const { kvs } = await gateway.range(key);
    const stored = kvs[0];
    const start = stored === undefined ? 0 : counterOf(stored.value);
    const end = start + count;
    const result = await gateway.txn(
      [{ key, target: "modRevision", result: "equal", value: stored?.modRevision ?? 0 }],
      [{ op: "put", key, value: JSON.stringify({ reservedEnd: end }) }],
    );
    if (result.succeeded) return { start, end };
  }
  throw new RunnelError("CLUSTER_UNAVAILABLE", `could not reserve producer ids in etcd: ${RESERVE_ATTEMPTS_MAX} compare-and-swap attempts lost to other brokers; retry`);
}

/** The stored counter; a value of the wrong shape refuses (reusing ids would break idempotence). */
export function counterOf(value: string): number {
  const record = decodeRecord(producerIdsRecordSchema, value);
  if (record === undefined) throw new RunnelError("CLUSTER_UNAVAILABLE", `the cluster's producer id counter holds ${JSON.stringify(value.slice(0, 100))}, not {"reservedEnd":N}; fix or delete the key`);
  return record.reservedEnd;
}
