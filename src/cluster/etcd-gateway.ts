/**
 * @module cluster/etcd-gateway
 * The one owner of Runnel's talk with etcd: its v3 gRPC-gateway JSON API over plain HTTP/1.1
 * `fetch()` (etcd 3.4: `/v3/kv/*`, `/v3/lease/*`, `/v3/watch`). Keys and values travel base64,
 * int64s as decimal strings, and proto3 leaves out every field at its default (`succeeded`
 * false, `TTL` 0, an event's `type` PUT), so every absent field reads as that default.
 *
 * Why fetch() and not the `etcd3` npm client: that client rides gRPC over HTTP/2 (Bun's HTTP/2
 * client has a record of stalls) and brings @grpc/grpc-js; through the gateway a lease keepalive
 * is one short POST that answers once and closes (measured against etcd 3.4.23 with curl), a
 * watch is one long POST streaming newline-delimited JSON, and nothing else is needed.
 *
 * Every call is bounded (AbortSignal.timeout); a failure is a RunnelError CLUSTER_UNAVAILABLE
 * naming the endpoint and path, and the next call tries the next endpoint.
 *
 * Secured etcd (cluster/etcd-access.ts): https endpoints get fetch()'s `tls` (CA, client
 * certificate); with credentials every call carries the token `/v3/auth/authenticate` gave, in
 * the Authorization header. A token etcd no longer honours (HTTP 401: it expired, the member
 * restarted, or a call went to another member, since etcd's default "simple" tokens live in one
 * member's memory) is replaced by authenticating again, once per call.
 */
import { z } from "zod";
import { RunnelError } from "../errors.ts";
import type { EtcdAccess } from "./etcd-access.ts";

/** Stored key-values are small JSON records; a bigger answer (or watch line) is a bug or an attack. */
export const ETCD_ANSWER_BYTES_MAX = 64 * 1024 * 1024;
/** etcd's default --max-txn-ops. */
export const ETCD_TXN_OPS_MAX = 128;

const int64 = z.union([z.string(), z.number()]).transform((value) => Number(value));
const kvSchema = z.object({
  key: z.string(),
  value: z.string().optional(),
  create_revision: int64.optional(),
  mod_revision: int64.optional(),
  version: int64.optional(),
  // Lease ids use all 64 bits: kept as the decimal string etcd sent (a number would round).
  lease: z.union([z.string(), z.number()]).transform((value) => String(value)).optional(),
});
const headerSchema = z.object({ revision: int64.optional() }).optional();
const rangeSchema = z.object({ header: headerSchema, kvs: z.array(kvSchema).optional(), count: int64.optional() });
const putSchema = z.object({ header: headerSchema });
const deleteSchema = z.object({ header: headerSchema, deleted: int64.optional() });
const txnSchema = z.object({
  header: headerSchema,
  succeeded: z.boolean().optional(),
  responses: z.array(z.object({ response_range: rangeSchema.optional() }).passthrough()).optional(),
});
const authenticateSchema = z.object({ token: z.string().min(1) });
const grantSchema = z.object({ header: headerSchema, ID: z.string(), TTL: int64.optional() });
const keepAliveSchema = z.object({ result: z.object({ header: headerSchema, TTL: int64.optional() }).optional() });
const watchLineSchema = z.object({
  result: z
    .object({
      header: headerSchema,
      created: z.boolean().optional(),
      canceled: z.boolean().optional(),
      compact_revision: int64.optional(),
      cancel_reason: z.string().optional(),
      events: z.array(z.object({ type: z.enum(["PUT", "DELETE"]).optional(), kv: kvSchema })).optional(),
    })
    .optional(),
  error: z.unknown().optional(),
});

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** Lease id (decimal string), or "0" for none. */
  readonly lease: string;
}

export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly kv: KeyValue;
}

/** One comparison of a txn. `value` compares the stored string; revisions compare numbers. */
export type Compare =
  | { readonly key: string; readonly target: "value"; readonly result: "equal" | "notEqual"; readonly value: string }
  | {
      readonly key: string;
      readonly target: "modRevision" | "createRevision" | "version";
      readonly result: "equal" | "notEqual" | "less" | "greater";
      readonly value: number;
    };

export type TxnOp =
  | { readonly op: "put"; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly op: "delete"; readonly key: string; readonly prefix?: boolean }
  | { readonly op: "range"; readonly key: string; readonly prefix?: boolean };

export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
  /** For each range op of the branch that ran, its key-values (other ops give []). */
  readonly ranges: readonly (readonly KeyValue[])[];
}

export interface EtcdGatewayOptions {
  /** Base URLs, e.g. http://127.0.0.1:2379. */
  readonly endpoints: readonly string[];
  /** Bound of every unary call. */
  readonly requestTimeoutMs: number;
  /** TLS and credentials for a secured etcd; none by default. */
  readonly access?: EtcdAccess;
}

/** etcd's answer to a call whose token it does not accept (gRPC Unauthenticated). */
const HTTP_UNAUTHORIZED = 401;

const COMPARE_TARGETS = { value: "VALUE", modRevision: "MOD", createRevision: "CREATE", version: "VERSION" } as const;
const COMPARE_FIELDS = { modRevision: "mod_revision", createRevision: "create_revision", version: "version" } as const;
const COMPARE_RESULTS = { equal: "EQUAL", notEqual: "NOT_EQUAL", less: "LESS", greater: "GREATER" } as const;

export class EtcdGateway {
  private endpointIndex = 0;
  /** The auth token in use (with credentials), or null until the next call authenticates. */
  private token: string | null = null;
  /** The authentication under way, shared by the calls that wait for it. */
  private authenticating: Promise<string> | null = null;

  constructor(readonly options: EtcdGatewayOptions) {
    if (options.endpoints.length === 0) throw new RunnelError("INVALID_CONFIG", "the etcd cluster URL names no endpoint");
  }

  /** The endpoint calls go to now (the next one after a failure). */
  get endpoint(): string {
    return this.options.endpoints[this.endpointIndex % this.options.endpoints.length] as string;
  }

  /** Every key-value at `key` (or under it, with prefix), and the store's revision. */
  async range(key: string, options: { prefix?: boolean; revision?: number } = {}): Promise<{ revision: number; kvs: KeyValue[] }> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (options.prefix === true) body.range_end = b64Bytes(prefixEnd(key));
    if (options.revision !== undefined) body.revision = String(options.revision);
    const answer = rangeSchema.parse(await this.call("/v3/kv/range", body));
    return { revision: answer.header?.revision ?? 0, kvs: (answer.kvs ?? []).map(toKeyValue) };
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<{ revision: number }> {
    const answer = putSchema.parse(await this.call("/v3/kv/put", putBody({ key, value, ...options })));
    return { revision: answer.header?.revision ?? 0 };
  }

  async delete(key: string, options: { prefix?: boolean } = {}): Promise<{ revision: number; deleted: number }> {
    const answer = deleteSchema.parse(await this.call("/v3/kv/deleterange", rangeBody(key, options.prefix)));
    return { revision: answer.header?.revision ?? 0, deleted: answer.deleted ?? 0 };
  }

  /** If every comparison holds, runs `success`, else `failure`; atomically. */
  async txn(compare: readonly Compare[], success: readonly TxnOp[], failure: readonly TxnOp[] = []): Promise<TxnResult> {
    const ops = compare.length + Math.max(success.length, failure.length);
    if (ops > ETCD_TXN_OPS_MAX) throw new RunnelError("LIMIT_EXCEEDED", `an etcd transaction of ${ops} operations is over etcd's ${ETCD_TXN_OPS_MAX}`);
    const body = { compare: compare.map(compareBody), success: success.map(opBody), failure: failure.map(opBody) };
    const answer = txnSchema.parse(await this.call("/v3/kv/txn", body));
    return {
      succeeded: answer.succeeded === true,
      revision: answer.header?.revision ?? 0,
      ranges: (answer.responses ?? []).map((response) => (response.response_range?.kvs ?? []).map(toKeyValue)),
    };
  }

  /** A lease of `ttlSeconds` (etcd's unit; it may round a short one up to its minimum). */
  async leaseGrant(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }> {
    const answer = grantSchema.parse(await this.call("/v3/lease/grant", { TTL: ttlSeconds }));
    return { id: answer.ID, ttlSeconds: answer.TTL ?? 0 };
  }

  /** Renews the lease; resolves to its new TTL in seconds, 0 when etcd no longer has it. */
  async leaseKeepAlive(id: string, timeoutMs = this.options.requestTimeoutMs): Promise<number> {
    const answer = keepAliveSchema.parse(await this.call("/v3/lease/keepalive", { ID: id }, timeoutMs));
    return answer.result?.TTL ?? 0;
  }

  /** Ends the lease (its keys go at once). A lease etcd does not have is already revoked. */
  async leaseRevoke(id: string): Promise<void> {
    try {
      await this.call("/v3/lease/revoke", { ID: id });
    } catch (error) {
      if (!(error instanceof RunnelError && error.message.includes("lease not found"))) throw error;
    }
  }

  /** Drops history before `revision` (tests and operators; watches older than it get re-listed). */
  async compact(revision: number): Promise<void> {
    await this.call("/v3/kv/compaction", { revision: String(revision), physical: true });
  }

  /**
   * Watches every key under `prefix` (see PrefixWatch). With `startRevision` the first snapshot
   * is skipped and events start there; otherwise the watch opens with a listing.
   */
  watchPrefix(prefix: string, handlers: WatchHandlers, startRevision?: number): PrefixWatch {
    return new PrefixWatch(this, prefix, handlers, startRevision);
  }

  /** One unary POST, bounded; the next endpoint is tried by the next call after a failure. */
  async call(urlPath: string, body: unknown, timeoutMs = this.options.requestTimeoutMs): Promise<unknown> {
    let answer = await this.post(urlPath, body, timeoutMs, await this.authorization(timeoutMs));
    if (answer.status === HTTP_UNAUTHORIZED && this.options.access?.credentials != null) {
      // The token is stale (expired, or another member's): authenticate again, once.
      this.forgetToken();
      answer = await this.post(urlPath, body, timeoutMs, await this.authorization(timeoutMs));
    }
    return parseAnswer(answer.text, answer.status, answer.where);
  }

  private async post(urlPath: string, body: unknown, timeoutMs: number, headers: Record<string, string>): Promise<{ text: string; status: number; where: string }> {
    const endpoint = this.endpoint;
    try {
      const response = await fetch(`${endpoint}${urlPath}`, { method: "POST", body: JSON.stringify(body), headers, signal: AbortSignal.timeout(timeoutMs), ...this.tlsInit() });
      checkAnswerLength(response, `${endpoint}${urlPath}`);
      return { text: await response.text(), status: response.status, where: `${endpoint}${urlPath}` };
    } catch (error) {
      throw this.failed(endpoint, urlPath, error, timeoutMs);
    }
  }

  /** Opens the streaming watch POST; the caller reads its body. */
  async openStream(urlPath: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers = await this.authorization(this.options.requestTimeoutMs);
    const endpoint = this.endpoint;
    try {
      const response = await fetch(`${endpoint}${urlPath}`, { method: "POST", body: JSON.stringify(body), headers, signal, ...this.tlsInit() });
      if (!response.ok) parseAnswer(await response.text(), response.status, `${endpoint}${urlPath}`);
      return response;
    } catch (error) {
      throw this.failed(endpoint, urlPath, error);
    }
  }

  /**
   * A call's failure: etcd's own refusal as it was, else CLUSTER_UNAVAILABLE naming the endpoint
   * (timed out, or unreachable with TLS advice), and the next call goes to the next endpoint.
   */
  private failed(endpoint: string, urlPath: string, error: unknown, timeoutMs?: number): RunnelError {
    if (error instanceof RunnelError) return error;
    this.endpointIndex += 1;
    const timedOut = timeoutMs !== undefined && error instanceof Error && error.name === "TimeoutError";
    const why = timedOut ? `did not answer within ${timeoutMs} ms` : `is unreachable (${describe(error)}${tlsAdvice(error)})`;
    return new RunnelError("CLUSTER_UNAVAILABLE", `etcd at ${endpoint} ${why} (POST ${urlPath})`, { cause: error });
  }

  /** Drops the token: the next call authenticates again (a watch etcd cancelled as unauthenticated). */
  forgetToken(): void {
    this.token = null;
  }

  /** The headers a call carries: the auth token when etcd wants one. */
  private async authorization(timeoutMs: number): Promise<Record<string, string>> {
    if (this.options.access?.credentials == null) return {};
    return { Authorization: await this.currentToken(timeoutMs) };
  }

  private currentToken(timeoutMs: number): Promise<string> {
    if (this.token !== null) return Promise.resolve(this.token);
    this.authenticating ??= this.authenticate(timeoutMs).finally(() => {
      this.authenticating = null;
    });
    return this.authenticating;
  }

  private async authenticate(timeoutMs: number): Promise<string> {
    const credentials = this.options.access?.credentials;
    if (credentials == null) throw new RunnelError("INTERNAL", "authenticate called without etcd credentials");
    const answer = await this.post("/v3/auth/authenticate", { name: credentials.user, password: credentials.password }, timeoutMs, {});
    if (answer.status !== 200) {
      // Never the password: the user, and etcd's reason (wrong password, unknown user, auth off).
      const reason = etcdReason(answer.text);
      throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd at ${answer.where} refused user ${JSON.stringify(credentials.user)}: ${reason} (HTTP ${answer.status}); check the etcd user and its password file`);
    }
    const token = authenticateSchema.parse(parseAnswer(answer.text, answer.status, answer.where)).token;
    this.token = token;
    return token;
  }

  /** fetch()'s TLS option for https endpoints with a private CA or a client certificate. */
  private tlsInit(): { tls?: { ca?: string; cert?: string; key?: string } } {
    const tls = this.options.access?.tls;
    return tls == null ? {} : { tls: { ...tls } };
  }
}

export interface WatchHandlers {
  /** The whole prefix as of `revision` (first, and again after a compaction); replace the cache. */
  onSnapshot(kvs: readonly KeyValue[], revision: number): void;
  /** Changes in revision order, from just after the last snapshot or event. */
  onEvents(events: readonly WatchEvent[], revision: number): void;
  /** The stream failed and will be reopened after `retryMs` (for logs). */
  onError?(error: RunnelError, retryMs: number): void;
}

const WATCH_RETRY_MS_MIN = 100;
const WATCH_RETRY_MS_MAX = 2000;

/**
 * A watch that stays open: after the stream drops (etcd restarted, endpoint down) it reopens
 * from the revision after the last one seen, so no change is missed or repeated; when etcd has
 * compacted that revision away it lists the prefix again (onSnapshot) and goes on from there.
 */
export class PrefixWatch {
  /** The next revision the handlers have not seen. */
  private nextRevision: number;
  private needsSnapshot: boolean;
  private closed = false;
  private abort: AbortController | null = null;
  private retryMs = WATCH_RETRY_MS_MIN;
  private wake: (() => void) | null = null;
  readonly done: Promise<void>;

  constructor(
    private readonly gateway: EtcdGateway,
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
    startRevision?: number,
  ) {
    this.nextRevision = startRevision ?? 0;
    this.needsSnapshot = startRevision === undefined;
    this.done = this.loop();
  }

  /** The revision after the last one delivered. */
  get revision(): number {
    return this.nextRevision;
  }

  /** Drops the current stream now and reopens it (e.g. when the link may be dead but silent). */
  reconnect(): void {
    this.abort?.abort();
    this.wake?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort?.abort();
    this.wake?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      try {
        if (this.needsSnapshot) await this.snapshot();
        await this.stream();
      } catch (error) {
        if (this.closed) return;
        const failure = error instanceof RunnelError ? error : new RunnelError("CLUSTER_UNAVAILABLE", `etcd watch on ${this.prefix} failed: ${describe(error)}`, { cause: error });
        this.handlers.onError?.(failure, this.retryMs);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.retryMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
        this.retryMs = Math.min(this.retryMs * 2, WATCH_RETRY_MS_MAX);
      }
    }
  }

  private async snapshot(): Promise<void> {
    const listed = await this.gateway.range(this.prefix, { prefix: true });
    this.needsSnapshot = false;
    this.nextRevision = listed.revision + 1;
    this.handlers.onSnapshot(listed.kvs, listed.revision);
  }

  /** One stream, read to its end; returns to have the loop reopen it. */
  private async stream(): Promise<void> {
    this.abort = new AbortController();
    const body = { create_request: { key: b64(this.prefix), range_end: b64Bytes(prefixEnd(this.prefix)), start_revision: String(this.nextRevision) } };
    const response = await this.gateway.openStream("/v3/watch", body, this.abort.signal);
    if (response.body === null) throw new RunnelError("CLUSTER_UNAVAILABLE", "etcd answered the watch with no body");
    let pending = "";
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      pending += decoder.decode(chunk, { stream: true });
      if (pending.length > ETCD_ANSWER_BYTES_MAX) throw new RunnelError("CLUSTER_UNAVAILABLE", `an etcd watch line is over ${ETCD_ANSWER_BYTES_MAX} bytes`);
      let newline = pending.indexOf("\n");
      while (newline >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line.length > 0 && !this.line(line)) {
          this.abort.abort();
          return;
        }
        newline = pending.indexOf("\n");
      }
    }
    throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd at ${this.gateway.endpoint} ended the watch stream`);
  }

  /** Handles one answer line; false when the stream must be reopened (compacted). */
  private line(line: string): boolean {
    const parsed = watchLineSchema.parse(JSON.parse(line));
    if (parsed.error !== undefined || parsed.result === undefined) throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd watch error: ${line.slice(0, 300)}`);
    const result = parsed.result;
    if ((result.compact_revision ?? 0) > 0) {
      // Our next revision is gone from etcd's history: list everything again.
      this.needsSnapshot = true;
      return false;
    }
    if (result.canceled === true && /unauthenticated|auth token/i.test(result.cancel_reason ?? "")) {
      // Our token went stale while no call used it: authenticate again on reopening.
      this.gateway.forgetToken();
    }
    if (result.canceled === true) throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd cancelled the watch: ${result.cancel_reason ?? "no reason given"}`);
    this.retryMs = WATCH_RETRY_MS_MIN;
    const events = (result.events ?? []).map((event) => ({ type: event.type === "DELETE" ? ("delete" as const) : ("put" as const), kv: toKeyValue(event.kv) }));
    if (events.length === 0) return true;
    const revision = Math.max(...events.map((event) => event.kv.modRevision));
    this.nextRevision = revision + 1;
    this.handlers.onEvents(events, revision);
    return true;
  }
}

/** Refuses an answer that declares more bytes than any of ours can need, before reading it. */
function checkAnswerLength(response: Response, where: string): void {
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > ETCD_ANSWER_BYTES_MAX) {
    void response.body?.cancel();
    throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd at ${where} answered ${declared} bytes, over the ${ETCD_ANSWER_BYTES_MAX} allowed`);
  }
}

function parseAnswer(text: string, status: number, where: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd at ${where} answered HTTP ${status} with no JSON: ${text.slice(0, 200)}`, { cause: error });
  }
  const failure = z.object({ error: z.string(), code: z.number().optional() }).safeParse(parsed);
  if (status !== 200 || failure.success) {
    const message = failure.success ? failure.data.error : text.slice(0, 200);
    throw new RunnelError("CLUSTER_UNAVAILABLE", `etcd at ${where} refused: ${message} (HTTP ${status})`);
  }
  return parsed;
}

function toKeyValue(kv: z.infer<typeof kvSchema>): KeyValue {
  return {
    key: Buffer.from(kv.key, "base64").toString("utf8"),
    value: kv.value === undefined ? "" : Buffer.from(kv.value, "base64").toString("utf8"),
    createRevision: kv.create_revision ?? 0,
    modRevision: kv.mod_revision ?? 0,
    version: kv.version ?? 0,
    lease: kv.lease ?? "0",
  };
}

function compareBody(compare: Compare): Record<string, unknown> {
  const body: Record<string, unknown> = { key: b64(compare.key), target: COMPARE_TARGETS[compare.target], result: COMPARE_RESULTS[compare.result] };
  if (compare.target === "value") body.value = b64(compare.value);
  else body[COMPARE_FIELDS[compare.target]] = String(compare.value);
  return body;
}

function opBody(op: TxnOp): Record<string, unknown> {
  if (op.op === "put") return { request_put: putBody(op) };
  if (op.op === "delete") return { request_delete_range: rangeBody(op.key, op.prefix) };
  return { request_range: rangeBody(op.key, op.prefix) };
}

function putBody(op: { key: string; value: string; lease?: string }): Record<string, unknown> {
  return { key: b64(op.key), value: b64(op.value), ...(op.lease === undefined ? {} : { lease: op.lease }) };
}

function rangeBody(key: string, prefix: boolean | undefined): Record<string, unknown> {
  return { key: b64(key), ...(prefix === true ? { range_end: b64Bytes(prefixEnd(key)) } : {}) };
}

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function b64Bytes(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Uint8Array {
  const bytes = new Uint8Array(Buffer.from(prefix, "utf8"));
  for (let index = bytes.length - 1; index >= 0; index -= 1) {
    if ((bytes[index] as number) < 0xff) {
      const end = bytes.slice(0, index + 1);
      end[index] = (bytes[index] as number) + 1;
      return end;
    }
  }
  return new Uint8Array([0]); // every key
}

/** etcd's own error text from an answer, or the answer's start. */
function etcdReason(text: string): string {
  try {
    const parsed = z.object({ error: z.string() }).safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data.error;
  } catch {
    // not JSON: fall through
  }
  return text.trim().slice(0, 200);
}

/** A hint when a TLS handshake failed: which setting decides it. */
function tlsAdvice(error: unknown): string {
  const message = describe(error);
  if (/certificate|self.signed|verify/i.test(message)) return "; the etcd certificate is not trusted: give the CA that signed it (--cluster-etcd-ca)";
  if (/TLS handshake|EPROTO|handshake/i.test(message)) return "; TLS failed: check that etcd serves https here (etcds://) and whether it requires a client certificate (--cluster-etcd-cert/--cluster-etcd-key)";
  return "";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
