/**
 * @module log/recovery-point
 * The per-partition recovery point: the offset up to which the partition's log and index
 * files are known to be on disk (fdatasync'd), and where that offset sits in the files.
 * Everything after it is verified batch by batch on an unclean start; nothing before it is
 * read, which is what keeps recovery time independent of the log's size.
 *
 * File `<partition dir>/recovery-point`, written atomically (temp file, fdatasync, rename,
 * fsync of the directory), one line of JSON:
 *
 *   {"version":1,"offset":1234,"segment":1000,"position":8192}
 *
 *   offset    next offset after the last durable batch
 *   segment   base offset of the segment holding `offset` (the active one at the time)
 *   position  byte position of `offset` in that segment's .log (its size at the time)
 */
import { z } from "zod";
import type { Storage } from "./storage.ts";

export const RECOVERY_POINT_FILE = "recovery-point";

const recoveryPointSchema = z.strictObject({
  version: z.literal(1),
  offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  segment: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  position: z.number().int().min(0).max(0xffff_ffff),
});

export interface RecoveryPoint {
  offset: number;
  segment: number;
  position: number;
}

export type RecoveryPointRead = { point: RecoveryPoint } | { point: null; problem: string | null };

/** Reads the checkpoint; `problem` says why an existing file was not usable. */
export function readRecoveryPoint(storage: Storage, directory: string): RecoveryPointRead {
  const bytes = storage.readFile(`${directory}/${RECOVERY_POINT_FILE}`);
  if (bytes === null) return { point: null, problem: null };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { point: null, problem: "recovery-point is not JSON" };
  }
  const parsed = recoveryPointSchema.safeParse(json);
  if (!parsed.success) return { point: null, problem: `recovery-point is invalid: ${parsed.error.issues[0]?.message ?? "?"}` };
  const { offset, segment, position } = parsed.data;
  if (offset < segment) return { point: null, problem: `recovery-point offset ${offset} is below its segment ${segment}` };
  return { point: { offset, segment, position } };
}

/** The file's contents for `point`. */
export function encodeRecoveryPoint(point: RecoveryPoint): string {
  return `${JSON.stringify({ version: 1, offset: point.offset, segment: point.segment, position: point.position })}\n`;
}

export function writeRecoveryPoint(storage: Storage, directory: string, point: RecoveryPoint): void {
  storage.writeFileAtomic(`${directory}/${RECOVERY_POINT_FILE}`, encodeRecoveryPoint(point));
}
