/**
 * @module log/durable-file
 * Small checkpoint files (recovery point, producer-state snapshot) written without blocking the
 * event loop: the bytes go to a temp file made, written and fdatasync'd on the thread pool
 * (Storage.writeFileAsync); the caller then renames it into place synchronously, after checking
 * that nothing newer was written meanwhile.
 *
 * Non-obvious: unlike Storage.writeFileAtomic this does not fsync the directory after the
 * rename. A checkpoint names a position whose bytes were fdatasync'd before it was written, so
 * an older checkpoint is always still true: if a power loss forgets the rename, the next start
 * merely scans a longer tail. close() still writes its checkpoints with the fully synchronous,
 * directory-fsync'd writeFileAtomic.
 */
import type { Storage } from "./storage.ts";

const textEncoder = new TextEncoder();

/** Numbers temp files, so writes of one file that overlap never share a temp file. */
let temporarySequence = 0;

/**
 * Writes `text` to `<path>.<tag>.<n>.tmp` and fdatasyncs it; returns the temp file's path.
 * Two writes of the same file may overlap (a partition's background flush and its roll
 * checkpoint): with one shared temp name, the first rename took the second's bytes and the
 * second rename failed with ENOENT, failing the partition. Leftovers are removed at open
 * (every `*.tmp`).
 */
export async function writeTempDurably(storage: Storage, path: string, tag: string, text: string): Promise<string> {
  temporarySequence = temporarySequence >= Number.MAX_SAFE_INTEGER ? 1 : temporarySequence + 1;
  const temporary = `${path}.${tag}.${temporarySequence}.tmp`;
  // Every step on the thread pool: creating a file can wait on the file system's journal for
  // tens of ms while other fsyncs run, which on the event loop stalls every client.
  await storage.writeFileAsync(temporary, textEncoder.encode(text), { sync: true });
  return temporary;
}

/** Renames the temp file into place, or removes it when `keep` is false (something newer won). */
export function commitTemp(storage: Storage, temporary: string, path: string, keep: boolean): void {
  if (keep) storage.rename(temporary, path);
  else storage.unlink(temporary);
}
