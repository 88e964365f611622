/**
 * @module listeners/http/server
 * The HTTP listener (Bun.serve), in the broker's process: probes, metrics, the console's JSON
 * API and its page.
 *
 *   GET /health   200 while the process runs (liveness)
 *   GET /ready    200 when the log is recovered, the listeners are up and the broker is not
 *                 shutting down; 503 otherwise (readiness: a load balancer stops sending)
 *   GET /metrics  Prometheus text (metrics-route.ts)
 *   GET /api/...  JSON for the console (api.ts); 503 until the broker is ready
 *   POST /api/topics  create a topic (admin-route.ts: the native createTopic op, same-origin only)
 *   GET /         the console, one static page embedded in the binary
 *
 * Otherwise read-only: other methods answer 405. It starts before the log is recovered so probes
 * answer during a long recovery, and stops last.
 */
import consolePagePath from "./console/index.html" with { type: "file" };
import type { Server } from "bun";
import type { Logger } from "../../logger.ts";
import type { ListenerTls } from "../../server/tls.ts";
import { createTopicFromHttp } from "./admin-route.ts";
import { Session } from "../../security/session.ts";
import { describeTopic, listGroups, listTopics, overview, readMessages, statusOf } from "./api.ts";
import type { BrokerView } from "./broker-view.ts";
import { renderMetrics } from "./metrics-route.ts";
import { ProcessSampler } from "./process-sampler.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";

/** A path in the compiled binary's embedded file system, or on disk under bun. */
const CONSOLE_PAGE = String(consolePagePath);

export interface HttpListener {
  readonly host: string;
  readonly port: number;
  /** New certificates for new connections (SIGHUP); see startHttpListener. */
  reloadTls(tls: ListenerTls | null, previousTls: ListenerTls | null): void;
  stop(): Promise<void>;
}

const NO_STORE = { "cache-control": "no-store" };

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: NO_STORE });
}

function text(body: string, status: number, contentType = "text/plain; charset=utf-8"): Response {
  return new Response(body, { status, headers: { ...NO_STORE, "content-type": contentType } });
}

function notReady(view: BrokerView): Response {
  return json({ error: { code: "NOT_READY", message: `the broker is ${view.phase}` } }, 503);
}

/** Routes one request; every failure becomes a JSON error, never an exception. */
function route(view: BrokerView, sampler: ProcessSampler, request: Request, session: Session): Response | Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  if (request.method === "POST" && path === "/api/topics") {
    return view.ready && view.context !== null ? createTopicFromHttp(view.context, request, session) : notReady(view);
  }
  if (request.method !== "GET" && request.method !== "HEAD") return text("GET and HEAD only (and POST /api/topics)\n", 405);
  if (path === "/health") return text("alive\n", 200);
  if (path === "/ready") return view.ready ? text("ready\n", 200) : text(`not ready: ${view.phase}\n`, 503);
  if (path === "/metrics") return text(renderMetrics(view, sampler), 200, PROMETHEUS_CONTENT_TYPE);
  if (path === "/" || path === "/index.html") {
    return new Response(Bun.file(CONSOLE_PAGE), { headers: { ...NO_STORE, "content-type": "text/html; charset=utf-8" } });
  }
  if (!path.startsWith("/api/")) return text("not found\n", 404);
  const context = view.context;
  if (context === null || view.phase === "recovering") return notReady(view);
  try {
    if (path === "/api/overview") return json(overview(view, context));
    if (path === "/api/topics") return json(listTopics(context, url.searchParams));
    if (path.startsWith("/api/topics/")) return json(describeTopic(context, decodeURIComponent(path.slice("/api/topics/".length))));
    if (path === "/api/groups") return json(listGroups(view, context, url.searchParams));
    if (path === "/api/messages") return json(readMessages(context, url.searchParams));
    return json({ error: { code: "NOT_FOUND", message: `no API at ${path}` } }, 404);
  } catch (error) {
    const { status, body } = statusOf(error);
    return json(body, status);
  }
}

/**
 * Starts the listener, with TLS when `tls` is set. A TLS reload replaces the server: server.reload
 * swaps handlers, not certificates, so the old server stops accepting (in-flight requests finish)
 * and a new one takes the same port.
 */
export function startHttpListener(options: { host: string; port: number; view: BrokerView; logger: Logger; tls?: ListenerTls | null }): HttpListener {
  const { view, logger } = options;
  const sampler = new ProcessSampler();
  const serve = (port: number, tls: ListenerTls | null): Server<undefined> =>
    Bun.serve({
      hostname: options.host,
      port,
      ...(tls === null ? {} : { tls }),
      fetch: (request, server) => route(view, sampler, request, new Session("http", server.requestIP(request)?.address ?? "")),
      error(error) {
        logger.error({ err: error }, "HTTP request failed");
        return text("internal error\n", 500);
      },
    });
  let server: Server<undefined>;
  const retired: Server<undefined>[] = [];
  try {
    server = serve(options.port, options.tls ?? null);
  } catch (error) {
    sampler.close();
    throw error;
  }
  const port = server.port ?? options.port;
  return {
    host: server.hostname ?? options.host,
    port,
    reloadTls(tls, previousTls) {
      void server.stop(false);
      retired.push(server);
      try {
        server = serve(port, tls);
      } catch (error) {
        // The port could not be taken again: keep serving with the old certificates.
        server = serve(port, previousTls);
        throw error;
      }
    },
    async stop() {
      sampler.close();
      await Promise.all([server, ...retired].map((each) => each.stop(true)));
    },
  };
}
