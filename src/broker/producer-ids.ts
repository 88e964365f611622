/**
 * @module broker/producer-ids
 * Hands out idempotent-producer ids that are never reused, across restarts included.
 *
 * File `<dataDir>/producer-ids`, one line of JSON written atomically:
 *
 *   {"version":1,"reservedEnd":N}
 *
 * Ids are reserved in blocks of ID_BLOCK: the file is rewritten (temp file, fsync, rename) only
 * when a block runs out, so `initProducer` costs a disk write once per ID_BLOCK producers. After
 * a restart the counter starts at reservedEnd, skipping what was left of the last block: ids
 * have gaps, never repeats.
 *
 * The counter is also what produce checks batches against (`isIssued`): an idempotent batch
 * whose id is at or above the next id was never handed out by this broker and is refused
 * (UNKNOWN_PRODUCER_ID). Non-obvious: after a restart every id below reservedEnd counts as
 * issued — the ones handed out before it are among them, and so is the unused rest of the last
 * block, which no one holds (the file records blocks, not single ids).
 */
import { z } from "zod";
import { RunnelError, toRunnelError } from "../errors.ts";
import { nativeStorage, type Storage } from "../log/storage.ts";

export const PRODUCER_IDS_FILE = "producer-ids";
export const ID_BLOCK = 1_000;
/** Epochs are i16 in the batch header. */
export const PRODUCER_EPOCH_MAX = 0x7fff;

const fileSchema = z.strictObject({ version: z.literal(1), reservedEnd: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

/** Where cluster-mode blocks come from: the etcd view (or a fake in tests). */
export interface ClusterIdSource {
  reserveProducerIds(count: number): Promise<{ start: number; end: number }>;
  /** One past the highest id any broker may have handed out, as known here. */
  producerIdsIssuedEnd(): number;
}

interface ClusterBlocks {
  readonly source: ClusterIdSource;
  next: number;
  end: number;
  spare: { start: number; end: number } | null;
  refilling: boolean;
}

export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
}

export class ProducerIdAllocator {
  private constructor(
    private readonly path: string,
    private readonly storage: Storage,
    private nextId: number,
    private reservedEnd: number,
  ) {}

  private cluster: ClusterBlocks | null = null;
  /** Cluster mode before the first block: hand out nothing (a local id could collide). */
  private clusterPending = false;

  /** Called at start in cluster mode, before the listeners open: no ids until `useCluster`. */
  expectCluster(): void {
    this.clusterPending = true;
  }

  /** Switches to cluster-wide ids; resolves once the first block is reserved. */
  async useCluster(source: ClusterIdSource): Promise<void> {
    const block = await source.reserveProducerIds(ID_BLOCK);
    this.cluster = { source, next: block.start, end: block.end, spare: null, refilling: false };
    this.clusterPending = false;
  }

  /** Reads the counter; a missing file starts at 0, an unreadable one refuses to start. */
  static open(dataDir: string, storage: Storage = nativeStorage): ProducerIdAllocator {
    const path = `${dataDir}/${PRODUCER_IDS_FILE}`;
    const bytes = storage.readFile(path);
    if (bytes === null) return new ProducerIdAllocator(path, storage, 0, 0);
    let parsed: z.ZodSafeParseResult<z.infer<typeof fileSchema>>;
    try {
      parsed = fileSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    } catch (error) {
      throw new RunnelError("STORAGE_ERROR", `${path} is not JSON; refusing to start, since producer ids could be reused`, { cause: error });
    }
    if (!parsed.success) throw new RunnelError("STORAGE_ERROR", `${path} is invalid (${parsed.error.issues[0]?.message ?? "?"}); refusing to start, since producer ids could be reused`);
    return new ProducerIdAllocator(path, storage, parsed.data.reservedEnd, parsed.data.reservedEnd);
  }

  /**
   * A fresh identity (new id, epoch 0); or, given the identity a producer holds, the same id
   * with the next epoch (fencing the old one). Throws STORAGE_FULL / STORAGE_ERROR when the
   * counter cannot be persisted.
   */
  initialize(current: Partial<ProducerIdentity>): ProducerIdentity {
    const { producerId, producerEpoch } = current;
    if (producerId !== undefined && producerEpoch !== undefined && this.isIssued(producerId) && producerEpoch < PRODUCER_EPOCH_MAX) {
      return { producerId, producerEpoch: producerEpoch + 1 };
    }
    return { producerId: this.allocate(), producerEpoch: 0 };
  }

  /**
   * True when `producerId` was (or, in the last block before a restart, may have been) handed
   * out by this broker: it is below the next id to hand out.
   */
  isIssued(producerId: number): boolean {
    const cluster = this.cluster;
    if (cluster !== null) return producerId >= 0 && producerId < Math.max(cluster.end, cluster.source.producerIdsIssuedEnd());
    return producerId >= 0 && producerId < this.nextId;
  }

  private allocate(): number {
    if (this.cluster !== null) return this.allocateInCluster(this.cluster);
    if (this.clusterPending) throw new RunnelError("CLUSTER_UNAVAILABLE", "this broker has not joined its cluster yet, so it has no cluster-wide producer ids; retry");
    if (this.nextId >= this.reservedEnd) {
      const reservedEnd = this.nextId + ID_BLOCK;
      try {
        this.storage.writeFileAtomic(this.path, `${JSON.stringify({ version: 1, reservedEnd })}\n`);
      } catch (error) {
        throw toRunnelError(error);
      }
      this.reservedEnd = reservedEnd;
    }
    return this.nextId++;
  }

  private allocateInCluster(cluster: ClusterBlocks): number {
    if (cluster.next >= cluster.end && cluster.spare !== null) {
      cluster.next = cluster.spare.start;
      cluster.end = cluster.spare.end;
      cluster.spare = null;
    }
    if (cluster.end - cluster.next <= ID_BLOCK / 2) this.refill(cluster);
    if (cluster.next >= cluster.end) {
      throw new RunnelError("CLUSTER_UNAVAILABLE", "this broker has no cluster-wide producer ids left and could not reserve more from etcd yet; retry");
    }
    return cluster.next++;
  }

  /** Reserves the next block in the background; a failure is retried by the next allocation. */
  private refill(cluster: ClusterBlocks): void {
    if (cluster.refilling || cluster.spare !== null) return;
    cluster.refilling = true;
    cluster.source.reserveProducerIds(ID_BLOCK).then(
      (block) => {
        cluster.spare = block;
        cluster.refilling = false;
      },
      () => {
        cluster.refilling = false;
      },
    );
  }
}
