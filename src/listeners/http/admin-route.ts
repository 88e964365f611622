/**
 * @module listeners/http/admin-route
 * `POST /api/topics` `{"name": "...", "partitions": N}`: the console's one write, creating a topic.
 * It runs the native `createTopic` op through the broker's own dispatch, so the same rules
 * (name, topicsMax, partitionsPerTopicMax) and the same error codes apply as on the native
 * listener, and whatever the handler does (today or after a rework) stays in one place.
 *
 * The HTTP listener has no authentication, so a web page elsewhere must not be able to make an
 * operator's browser create topics (CSRF): the request must be `application/json` (a cross-site
 * page cannot send that without a CORS preflight, which this listener never approves), and an
 * `Origin` header, when present, must name this listener. Bodies are bounded (CREATE_BODY_BYTES_MAX).
 */
import type { Session } from "../../security/session.ts";
import { decode, encode } from "@msgpack/msgpack";
import { z } from "zod";
import { FRAME_HEADER_BYTES } from "../../protocol/frame.ts";
import { createRequestDecoder } from "../../protocol/messages.ts";
import type { BrokerContext } from "../../server/context.ts";
import { dispatch } from "../../server/dispatch.ts";

/** Largest request body the create call reads. */
export const CREATE_BODY_BYTES_MAX = 4096;

const createBody = z.object({ name: z.string().min(1).max(255), partitions: z.int().min(1).max(1_000_000).default(1) }).strict();

function answer(body: unknown, status: number): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

function refusal(status: number, code: string, message: string): Response {
  return answer({ error: { code, message } }, status);
}

/** null when the request may proceed; else the refusal. */
function checkSameOrigin(request: Request): Response | null {
  if (!(request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json")) {
    return refusal(415, "INVALID_REQUEST", "send the body as application/json");
  }
  const origin = request.headers.get("origin");
  const host = request.headers.get("host");
  if (origin !== null && origin !== `http://${host}`) return refusal(403, "INVALID_REQUEST", `requests from ${origin.slice(0, 200)} may not change this broker`);
  return null;
}

export async function createTopicFromHttp(context: BrokerContext, request: Request, session: Session): Promise<Response> {
  const refused = checkSameOrigin(request);
  if (refused !== null) return refused;
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > CREATE_BODY_BYTES_MAX) return refusal(413, "INVALID_REQUEST", `the body is at most ${CREATE_BODY_BYTES_MAX} bytes`);
  const text = await request.text();
  if (text.length > CREATE_BODY_BYTES_MAX) return refusal(413, "INVALID_REQUEST", `the body is at most ${CREATE_BODY_BYTES_MAX} bytes`);
  let parsed: z.infer<typeof createBody>;
  try {
    parsed = createBody.parse(JSON.parse(text));
  } catch {
    return refusal(400, "INVALID_REQUEST", 'expected {"name": "<topic>", "partitions": <1 or more>}');
  }
  const body = encode({ id: 1, op: "createTopic", topic: parsed.name, partitions: parsed.partitions });
  const reply = await dispatch(context, createRequestDecoder(context.config.frameBytesMax), body, session);
  if (reply.kind !== "frame") return refusal(500, "INTERNAL", "createTopic gave no answer");
  const result = decode(reply.frame.subarray(FRAME_HEADER_BYTES)) as { error?: { code: string; message: string } } & Record<string, unknown>;
  if (result.error !== undefined) {
    const status = result.error.code === "TOPIC_EXISTS" ? 409 : result.error.code === "INTERNAL" ? 500 : 400;
    return answer({ error: { code: result.error.code, message: result.error.message } }, status);
  }
  const { id: _id, ...created } = result;
  return answer(created, 201);
}
