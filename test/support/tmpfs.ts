/**
 * @module test/support/tmpfs
 * A small real tmpfs for disk-full tests: filling it gives genuine ENOSPC from the kernel.
 * Mounting needs Linux, root and a container that permits it; otherwise the caller skips
 * its test and logs the reason.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type Tmpfs = { dir: string } | { reason: string };

/** Mounts a `sizeMiB` tmpfs on a new temp directory; its path, or why it could not. */
export function mountTmpfs(sizeMiB: number, label: string): Tmpfs {
  if (process.platform !== "linux") return { reason: `platform is ${process.platform}, not linux` };
  if (process.getuid?.() !== 0) return { reason: "not running as root (mount needs it)" };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `runnel-${label}-tmpfs-`));
  const result = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${sizeMiB}m`, "tmpfs", dir], { stderr: "pipe" });
  if (result.exitCode === 0) return { dir };
  fs.rmSync(dir, { recursive: true, force: true });
  return { reason: `mount refused: ${result.stderr.toString().trim()}` };
}

/** Unmounts (lazily: even while a failed test still holds files there) and removes the directory. */
export function unmountTmpfs(tmpfs: Tmpfs): void {
  if (!("dir" in tmpfs)) return;
  Bun.spawnSync(["umount", "-l", tmpfs.dir]);
  fs.rmSync(tmpfs.dir, { recursive: true, force: true });
}
