/**
 * @module server/handlers/elect-leaders
 * `electLeaders` (docs/protocol.md): moves leadership back to the preferred leaders (each
 * partition's first replica) of one topic's partitions, or of every topic, where that broker is
 * live, not draining and in the ISR. Any broker of an etcd cluster answers: it leaves an election
 * request for the controller and waits (at most `timeoutMs`) for the partitions to move
 * (cluster/preferred-election.ts):
 *
 *   {id, results: [{topic, partition, leader, preferred, outcome}]}
 *
 * outcome: elected | alreadyPreferred | unavailable | timedOut. `partitions` needs `topic`. A
 * single node has no leaders to move: INVALID_REQUEST. Authorization: alter on the cluster.
 */
import { RunnelError } from "../../errors.ts";
import { electPreferredLeaders, type ElectionSource, viewElectionSource } from "../../cluster/preferred-election.ts";
import type { ClusterView } from "../../cluster/cluster-view.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import type { Session } from "../../security/session.ts";
import { requireClusterAccess } from "../access.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

export async function handleElectLeaders(context: BrokerContext, request: RequestOf<"electLeaders">, id: number, session: Session): Promise<Reply> {
  requireClusterAccess(context, session, "alter");
  if (request.partitions !== undefined && request.topic === undefined) throw new RunnelError("INVALID_REQUEST", "electLeaders: partitions needs topic");
  const source = viewSource(context.cluster);
  const results = await electPreferredLeaders(
    source,
    { ...(request.topic === undefined ? {} : { topic: request.topic }), ...(request.partitions === undefined ? {} : { partitions: request.partitions }) },
    request.timeoutMs,
  );
  return frameReply(id, { results });
}

/** The broker's cached view as an election source; INVALID_REQUEST outside an etcd cluster. */
function viewSource(view: ClusterView | null): ElectionSource {
  const source = viewElectionSource(view);
  if (source === null) throw new RunnelError("INVALID_REQUEST", "electLeaders needs a broker of an etcd cluster (runnel serve --cluster); a single node has no leaders to move");
  return source;
}
