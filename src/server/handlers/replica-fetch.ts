/**
 * @module server/handlers/replica-fetch
 * `replicaFetch` (docs/protocol.md): a follower's fetch from a leader, for every partition it
 * follows there. The work per partition is the leader's (cluster/replica-manager.ts
 * onReplicaFetch); this file budgets the bytes, waits and writes the answer:
 *
 *   {id, partitions: [{topic, partition, leaderEpoch, highWatermark, logStartOffset, nextOffset,
 *    recordsBytes, divergingEpoch?: {epoch, endOffset}, error?}], records: bin32}
 *
 * `records` is last and sent with sendfile, as in `fetch`; entry i owns the next recordsBytes
 * bytes. Sizes as in fetch: the first partition with data always gets one whole batch, later
 * ones only what fits in `maxBytes`. When no partition has anything to send (no records, no
 * divergence, no error) the request parks on the partition notifier up to its maxWaitMs, so an
 * append wakes it at once and the follower's next fetch (which moves the high watermark)
 * follows without delay. A single node leads nothing: every entry is NOT_LEADER.
 *
 * Authorization (`authorizer: "acl"`): alter on the cluster, for the whole request. The answer
 * carries every record of the partitions named, whatever the topic ACLs say, so only brokers (as
 * super-users, or principals granted alter on the cluster) may ask.
 */
import { RunnelError, toRunnelError } from "../../errors.ts";
import type { Sleeper } from "../../broker/partition-notifier.ts";
import { readWhenWoken } from "../../broker/woken-reads.ts";
import type { ReplicaManager } from "../../cluster/replica-manager.ts";
import type { ReadSlice } from "../../log/api.ts";
import { encodeRecordsResponseHead, FETCH_HEAD_RESERVE_BYTES, type RequestOf, toWireError } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import { requireClusterAccess } from "../access.ts";
import type { BrokerContext, Reply } from "../context.ts";

type Request = RequestOf<"replicaFetch">;

interface Gathered {
  entries: Array<Record<string, unknown>>;
  slices: ReadSlice[];
  totalBytes: number;
  /** A divergence or an error: answer at once, the follower has something to act on. */
  urgent: boolean;
}

export function handleReplicaFetch(context: BrokerContext, request: Request, id: number, session: Session): Reply | Promise<Reply> {
  requireClusterAccess(context, session, "alter");
  const replication = context.replication ?? null;
  const gathered = gather(context, replication, request);
  const waitMs = Math.min(request.maxWaitMs, context.config.fetchWaitMsMax);
  if (replication !== null && gathered.totalBytes === 0 && !gathered.urgent && waitMs > 0 && !context.isShuttingDown()) {
    const parked = new ParkedReplicaFetch(context, replication, request, id);
    if (context.notifier.park(request.partitions, waitMs, parked)) return parked.answer.promise;
  }
  return toReply(id, gathered);
}

/** A caught-up follower's fetch waiting for the next append to one of its partitions (or its time). */
class ParkedReplicaFetch implements Sleeper {
  readonly answer = Promise.withResolvers<Reply>();

  constructor(
    private readonly context: BrokerContext,
    private readonly replication: ReplicaManager,
    private readonly request: Request,
    private readonly id: number,
  ) {}

  /** Data arrived: reads after the read event (broker/woken-reads.ts); time up or shutdown: now. */
  wake(woken: boolean): void {
    readWhenWoken(this, woken);
  }

  readAgain(): void {
    try {
      this.answer.resolve(toReply(this.id, gather(this.context, this.replication, this.request)));
    } catch (error) {
      this.answer.reject(error);
    }
  }
}

function gather(context: BrokerContext, replication: ReplicaManager | null, request: Request): Gathered {
  const budget = Math.min(request.maxBytes, context.config.frameBytesMax - FETCH_HEAD_RESERVE_BYTES);
  const gathered: Gathered = { entries: [], slices: [], totalBytes: 0, urgent: false };
  for (const entry of request.partitions) {
    const result: Record<string, unknown> = { topic: entry.topic, partition: entry.partition, recordsBytes: 0 };
    try {
      if (replication === null) throw new RunnelError("NOT_LEADER", "this broker is not in a cluster: it leads no replicated partition");
      const left = budget - gathered.totalBytes;
      // The first partition with data always gets one batch; later ones only what fits.
      const answer = replication.onReplicaFetch(request.brokerId, entry, gathered.totalBytes === 0 ? Math.max(left, 1) : Math.max(left, 0));
      Object.assign(result, answer.common);
      if (answer.kind === "diverging") {
        result.divergingEpoch = { epoch: answer.epoch, endOffset: answer.endOffset };
        gathered.urgent = true;
      } else if (answer.slice !== null) {
        if (gathered.totalBytes > 0 && answer.slice.length > left) answer.slice.release();
        else {
          result.recordsBytes = answer.slice.length;
          gathered.totalBytes += answer.slice.length;
          gathered.slices.push(answer.slice);
        }
      }
    } catch (error) {
      result.error = toWireError(toRunnelError(error));
      gathered.urgent = true;
    }
    gathered.entries.push(result);
  }
  return gathered;
}

function toReply(id: number, gathered: Gathered): Reply {
  return { kind: "fetch", head: encodeRecordsResponseHead({ id, partitions: gathered.entries }, gathered.totalBytes), slices: gathered.slices };
}
