/**
 * @module log/data-dir-lock
 * One broker per data directory. Two brokers appending to the same segment files would
 * interleave batches and corrupt the log, so the log manager takes an exclusive flock on
 * `<dataDir>/.lock` for its whole life. The kernel releases it when the process exits for
 * any reason, so a kill -9 never leaves a stale lock behind. The file also records the
 * holder's pid, for the error message only.
 */
import * as fs from "node:fs";
import { RunnelError } from "../errors.ts";
import { libc, syscallErrorFromFs } from "../native/libc.ts";

export const LOCK_FILE = ".lock";

export interface DataDirLock {
  release(): void;
}

/** Locks `dataDir` or throws STORAGE_ERROR naming the pid that holds it. */
export function lockDataDir(dataDir: string): DataDirLock {
  const path = `${dataDir}/${LOCK_FILE}`;
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  } catch (error) {
    // EACCES or EROFS on a directory that exists but is not ours to write: keep errno and path.
    throw syscallErrorFromFs("open", error);
  }
  const lockExclusive = libc.lockExclusive;
  // Without flock (non-Linux fallback) the directory is not guarded; nothing else is lost.
  if (lockExclusive !== null && !lockExclusive(fd)) {
    const holder = fs.readFileSync(path, "utf8").trim() || "unknown";
    fs.closeSync(fd);
    throw new RunnelError("STORAGE_ERROR", `data directory ${dataDir} is in use by another broker (pid ${holder}); stop it or choose another --data-dir`);
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      fs.closeSync(fd);
    },
  };
}
