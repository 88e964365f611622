/**
 * @module server/handlers/hello
 * `hello`: version negotiation. The client lists the protocol versions it speaks; the broker
 * answers with the highest one it shares, its own version and the limits a client must respect
 * (frame and batch sizes, requests in flight, the longest fetch wait). No shared version:
 * UNSUPPORTED_VERSION, with the broker's versions in `details.versions`.
 * Non-obvious: hello is optional — every op works without it; it exists so a client can learn
 * the limits before it sizes its batches.
 */
import packageJson from "../../../package.json" with { type: "json" };
import { RunnelError } from "../../errors.ts";
import { type RequestOf, SUPPORTED_VERSIONS } from "../../protocol/messages.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

export function handleHello(context: BrokerContext, request: RequestOf<"hello">, id: number): Reply {
  const shared = request.versions.filter((version) => SUPPORTED_VERSIONS.includes(version));
  if (shared.length === 0) {
    throw new RunnelError("UNSUPPORTED_VERSION", `this broker speaks protocol versions ${SUPPORTED_VERSIONS.join(", ")}`, {
      details: { versions: [...SUPPORTED_VERSIONS] },
    });
  }
  const config = context.config;
  return frameReply(id, {
    version: Math.max(...shared),
    serverVersion: packageJson.version,
    limits: {
      frameBytesMax: config.frameBytesMax,
      batchBytesMax: config.batchBytesMax,
      requestsInFlightMax: config.requestsInFlightMax,
      fetchWaitMsMax: config.fetchWaitMsMax,
    },
  });
}
