/**
 * @module server/dispatch
 * One frame body in, one reply out: decode (with limits), read the envelope, validate the op's
 * request schema, run its handler. Every failure becomes an error reply `{id, error}` — with
 * `id: null` only when no valid id could be read, even from a body the decoder refused (a float
 * elsewhere in it, say: msgpack-scan's peekRequestId) — and never escapes: a bad request costs
 * the client one error answer, never the connection.
 *
 * Two decoders: a well-formed `produce` or `fetch` (the data path, thousands per second) is read
 * by the hand-written FastRequestDecoder straight into its typed request; everything else —
 * other ops and every malformed or unusual request — takes the generic path (scanMsgpack,
 * @msgpack/msgpack, the op's zod schema), which alone answers errors. See fast-requests.ts.
 */
import { NOT_TIMED } from "../broker/metrics.ts";
import { RunnelError, toRunnelError } from "../errors.ts";
import { FastRequestDecoder } from "../protocol/fast-requests.ts";
import { encodeErrorFrame, isOperation, type Operation, parseRequest, readCorrelationId, type RequestOf, WIRE_LIMITS } from "../protocol/messages.ts";
import { peekRequestId } from "../protocol/msgpack-scan.ts";
import type { Session } from "../security/session.ts";
import { applicationOf, appliedLater, type BrokerContext, closesConnection, type Reply } from "./context.ts";
import { handleCreateAcls, handleDeleteAcls, handleDescribeAcls } from "./handlers/acls.ts";
import { handleFetch } from "./handlers/fetch.ts";
import { handleDeleteGroup, handleDescribeGroup, handleFindCoordinator, handleHeartbeat, handleJoinGroup, handleLeaveGroup, handleListGroups } from "./handlers/groups.ts";
import { handleAuthenticate } from "./handlers/authenticate.ts";
import { handleHello } from "./handlers/hello.ts";
import { handleInitProducer } from "./handlers/init-producer.ts";
import { handleListOffsets } from "./handlers/list-offsets.ts";
import { handleMetadata } from "./handlers/metadata.ts";
import { handleCommitOffsets, handleFetchOffsets } from "./handlers/offsets.ts";
import { handleProduce } from "./handlers/produce.ts";
import { handleAlterPartitionReassignments, handleListPartitionReassignments } from "./handlers/reassignments.ts";
import { handleReplicaFetch } from "./handlers/replica-fetch.ts";
import { handleElectLeaders } from "./handlers/elect-leaders.ts";
import { handleStats } from "./handlers/stats.ts";
import { handleCreateUser, handleDeleteUser, handleListUsers } from "./handlers/users.ts";
import { handleAlterTopicConfig, handleCreatePartitions, handleCreateTopic, handleDeleteTopic, handleDescribeTopic } from "./handlers/topics.ts";

/** `session` is the connection's identity (security/session.ts): who the request is authorized as. */
type Handler<Op extends Operation> = (context: BrokerContext, request: RequestOf<Op>, id: number, session: Session) => Reply | Promise<Reply>;

const HANDLERS: { [Op in Operation]: Handler<Op> } = {
  hello: handleHello,
  metadata: handleMetadata,
  createTopic: handleCreateTopic,
  deleteTopic: handleDeleteTopic,
  describeTopic: handleDescribeTopic,
  createPartitions: handleCreatePartitions,
  alterTopicConfig: handleAlterTopicConfig,
  produce: handleProduce,
  fetch: handleFetch,
  listOffsets: handleListOffsets,
  replicaFetch: handleReplicaFetch,
  electLeaders: handleElectLeaders,
  commitOffsets: handleCommitOffsets,
  fetchOffsets: handleFetchOffsets,
  stats: handleStats,
  initProducer: handleInitProducer,
  joinGroup: handleJoinGroup,
  heartbeat: handleHeartbeat,
  leaveGroup: handleLeaveGroup,
  listGroups: handleListGroups,
  describeGroup: handleDescribeGroup,
  deleteGroup: handleDeleteGroup,
  findCoordinator: handleFindCoordinator,
  createAcls: handleCreateAcls,
  deleteAcls: handleDeleteAcls,
  describeAcls: handleDescribeAcls,
  authenticate: handleAuthenticate,
  createUser: handleCreateUser,
  deleteUser: handleDeleteUser,
  listUsers: handleListUsers,
  alterPartitionReassignments: handleAlterPartitionReassignments,
  listPartitionReassignments: handleListPartitionReassignments,
};

/** What a connection may do before it authenticates, when authentication is on. */
const BEFORE_AUTHENTICATION: ReadonlySet<string> = new Set(["hello", "authenticate"]);

export type RequestDecoder = (body: Uint8Array) => unknown;

function errorReply(context: BrokerContext, id: number | null, error: unknown, op: string): Reply {
  const failure = toRunnelError(error);
  context.stats.requestErrors++;
  if (failure.code === "INTERNAL") context.logger.error({ err: error, op, id }, "request failed with an internal error");
  const reply: Reply = { kind: "frame", frame: encodeErrorFrame(id, failure) };
  // An address out of authentication attempts is shown the door, not left to try again at once.
  return failure.code === "AUTHENTICATION_THROTTLED" ? closesConnection(reply) : reply;
}

/**
 * Shared by every connection: the broker runs on one thread and decoding is synchronous. Its
 * produce requests are reused objects: handleProduce is done with them when it returns.
 */
const fastDecoder = new FastRequestDecoder({ reuseProduce: true });

/**
 * Runs one request. Synchronous handlers give a Reply; long polls and syncs give a Promise, and
 * so do requests applied asynchronously (creating a topic), marked with appliedLater so that the
 * connection applies nothing after them until they are (context.ts).
 */
export function dispatch(context: BrokerContext, decode: RequestDecoder, body: Uint8Array, session: Session): Reply | Promise<Reply> {
  context.stats.requests++;
  const metrics = context.metrics;
  // Clock reads are most of what metrics cost: the data path's requests are timed 1 in 16.
  let startedMs = metrics === null ? NOT_TIMED : metrics.native.startTimer();
  let id: number | null = null;
  let op = "?";
  try {
    let reply: Reply | Promise<Reply>;
    const fast = fastDecoder.decode(body, context.config.frameBytesMax);
    if (fast !== null) {
      id = fast.id;
      op = fast.op;
      refuseWhenShuttingDown(context);
      context.authenticator.requireAuthenticated(session, fast.op);
      if (fast.op === "produce") {
        try {
          reply = handleProduce(context, fast.request, fast.id, session);
        } finally {
          fastDecoder.releaseProduce();
        }
      } else {
        reply = handleFetch(context, fast.request, fast.id, session);
      }
    } else {
      if (metrics !== null && startedMs === NOT_TIMED) startedMs = performance.now(); // every other request is timed
      let value: unknown;
      try {
        value = decode(body);
      } catch (error) {
        id = peekRequestId(body, WIRE_LIMITS); // the answer carries the id whenever it is readable
        throw error;
      }
      id = readCorrelationId(value);
      if (id === null) throw new RunnelError("INVALID_REQUEST", "id: a request is a map with an id (uint32)");
      const rawOp = (value as { op?: unknown }).op;
      if (typeof rawOp !== "string") throw new RunnelError("INVALID_REQUEST", "op: expected a string");
      op = rawOp;
      if (!isOperation(rawOp)) throw new RunnelError("UNKNOWN_OPERATION", `unknown op '${rawOp.slice(0, 64)}'`);
      refuseWhenShuttingDown(context);
      if (!BEFORE_AUTHENTICATION.has(rawOp)) context.authenticator.requireAuthenticated(session, rawOp);
      reply = runHandler(context, rawOp, value, id, session);
    }
    if (!(reply instanceof Promise)) {
      observe(context, op, startedMs, false);
      return reply;
    }
    return answerLater(context, reply, id, op, startedMs);
  } catch (error) {
    observe(context, op, startedMs, true);
    return errorReply(context, id, error, op);
  }
}

/**
 * A handler's promised reply, observed and turned into an error reply on failure. Apart from
 * dispatch so that dispatch itself creates no closure: a function with inner closures gets a
 * scope object on every call, even when (the data path's usual case) the branch that builds
 * them is not taken (bench/alloc.bench.ts).
 */
function answerLater(context: BrokerContext, reply: Promise<Reply>, requestId: number | null, requestOp: string, startedMs: number): Promise<Reply> {
  const answered =
    context.metrics === null
      ? reply.catch((error: unknown) => errorReply(context, requestId, error, requestOp))
      : reply.then(
          (settled) => {
            observe(context, requestOp, startedMs, false);
            return settled;
          },
          (error: unknown) => {
            observe(context, requestOp, startedMs, true);
            return errorReply(context, requestId, error, requestOp);
          },
        );
  const applied = applicationOf(reply);
  return applied === undefined ? answered : appliedLater(answered, applied);
}

/** Request count, error and (when timed) latency per op (broker/metrics.ts); nothing when metrics are off. */
function observe(context: BrokerContext, op: string, startedMs: number, failed: boolean): void {
  context.metrics?.native.observe(op, startedMs === NOT_TIMED ? NOT_TIMED : (performance.now() - startedMs) / 1000, failed);
}

function refuseWhenShuttingDown(context: BrokerContext): void {
  if (context.isShuttingDown()) throw new RunnelError("SHUTTING_DOWN", "the broker is shutting down");
}

function runHandler<Op extends Operation>(context: BrokerContext, op: Op, value: unknown, id: number, session: Session): Reply | Promise<Reply> {
  const request = parseRequest(op, value);
  return (HANDLERS[op] as Handler<Op>)(context, request, id, session);
}
