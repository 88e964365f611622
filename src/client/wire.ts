/**
 * @module client/wire
 * Reading broker responses defensively. A broker (or something that is not one) may answer
 * anything; every field the client uses is checked here and a bad answer becomes a
 * RunnelError naming the operation and the field, never a TypeError deep in the producer.
 */
import { ERROR_CODES, RunnelError, isErrorCode } from "../errors.ts";

export type WireMap = Record<string, unknown>;

export function malformed(op: string, what: string): RunnelError {
  return new RunnelError("INTERNAL", `the broker answered '${op}' with a malformed response: ${what}`);
}

export function isMap(value: unknown): value is WireMap {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

export function readMap(value: unknown, op: string, field: string): WireMap {
  if (!isMap(value)) throw malformed(op, `${field} is not a map`);
  return value;
}

export function readArray(value: unknown, op: string, field: string): unknown[] {
  if (!Array.isArray(value)) throw malformed(op, `${field} is not an array`);
  return value;
}

export function readInt(value: unknown, op: string, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) throw malformed(op, `${field} is not an integer`);
  return value;
}

export function readString(value: unknown, op: string, field: string): string {
  if (typeof value !== "string") throw malformed(op, `${field} is not a string`);
  return value;
}

export function readBytes(value: unknown, op: string, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw malformed(op, `${field} is not bytes`);
  return value;
}

/**
 * Turns a wire error map `{code, message, details?}` into a RunnelError. The broker's code
 * string is kept as is when this client knows it; an unknown code (a newer broker) becomes
 * INTERNAL with the broker's code kept in `details.brokerCode`.
 */
export function brokerError(value: unknown, context: string): RunnelError {
  const map = isMap(value) ? value : {};
  const rawCode = typeof map.code === "string" ? map.code : "INTERNAL";
  const message = typeof map.message === "string" ? map.message : "no message";
  const details: Record<string, unknown> = isMap(map.details) ? { ...map.details } : {};
  details.brokerCode = rawCode;
  const code = isErrorCode(rawCode) ? rawCode : "INTERNAL";
  const unknown = isErrorCode(rawCode) ? "" : ` (unknown broker code ${rawCode})`;
  return new RunnelError(code, `${context}: ${message}${unknown}`, { details });
}

export function isRetriable(error: unknown): boolean {
  return error instanceof RunnelError && ERROR_CODES[error.code].retriable;
}
