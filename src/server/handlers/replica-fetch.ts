/**
 * @module server/handlers/replica-fetch
 * `replicaFetch` (docs/protocol.md): a follower's fetch from the partition's leader. The work is
 * the leader's (cluster/replica-manager.ts onReplicaFetch); this file writes the answer:
 *
 *   {id, topic, partition, leaderEpoch, highWatermark, logStartOffset, nextOffset,
 *    divergingEpoch?: {epoch, endOffset}, records: bin32}
 *
 * `records` is last and sent with sendfile, as in `fetch`. A caught-up follower's fetch (nothing
 * to send) parks on the partition notifier up to its maxWaitMs, so a produce wakes it at once
 * and the follower's next fetch (which moves the high watermark) follows with no delay.
 * Errors: NOT_LEADER (also on a single node, which leads nothing for anyone), FENCED_LEADER_EPOCH,
 * INVALID_REQUEST (not a replica), OFFSET_OUT_OF_RANGE.
 */
import { RunnelError } from "../../errors.ts";
import type { Sleeper } from "../../broker/partition-notifier.ts";
import type { ReplicaFetchAnswer, ReplicaManager } from "../../cluster/replica-manager.ts";
import { encodeRecordsResponseHead, type RequestOf } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import type { BrokerContext, Reply } from "../context.ts";

export function handleReplicaFetch(context: BrokerContext, request: RequestOf<"replicaFetch">, id: number, _session: Session): Reply | Promise<Reply> {
  const replication = context.replication ?? null;
  if (replication === null) throw new RunnelError("NOT_LEADER", "this broker is not in a cluster: it leads no replicated partition");
  const answer = replication.onReplicaFetch(request);
  const waitMs = Math.min(request.maxWaitMs, context.config.fetchWaitMsMax);
  if (answer.kind === "records" && answer.slice === null && waitMs > 0 && !context.isShuttingDown()) {
    const parked = new ParkedReplicaFetch(replication, request, id);
    if (context.notifier.park([request], waitMs, parked)) return parked.answer.promise;
  }
  return toReply(id, request, answer);
}

/** A caught-up follower's fetch waiting for the next append (or its time). */
class ParkedReplicaFetch implements Sleeper {
  readonly answer = Promise.withResolvers<Reply>();

  constructor(
    private readonly replication: ReplicaManager,
    private readonly request: RequestOf<"replicaFetch">,
    private readonly id: number,
  ) {}

  wake(): void {
    try {
      this.answer.resolve(toReply(this.id, this.request, this.replication.readAgain(this.request)));
    } catch (error) {
      // Leadership moved while it waited: dispatch turns this into the error answer.
      this.answer.reject(error);
    }
  }
}

function toReply(id: number, request: RequestOf<"replicaFetch">, answer: ReplicaFetchAnswer): Reply {
  const body: Record<string, unknown> = { id, topic: request.topic, partition: request.partition, ...answer.common };
  if (answer.kind === "diverging") {
    body.divergingEpoch = { epoch: answer.epoch, endOffset: answer.endOffset };
    return { kind: "fetch", head: encodeRecordsResponseHead(body, 0), slices: [] };
  }
  const slice = answer.slice;
  return { kind: "fetch", head: encodeRecordsResponseHead(body, slice?.length ?? 0), slices: slice === null ? [] : [slice] };
}
