/**
 * @module security/acl-store
 * The access control list (docs/security.md, "Authorization"): entries of principal × resource ×
 * operation × allow/deny, kept durably in `<dataDir>/acls.json` and held in memory for the
 * authorizer (security/authorizer.ts), which alone interprets them.
 *
 * The model (principal, resource, operation, permission) is security/acl.ts.
 *
 * Durability: every change rewrites the whole file — a temp file written and fsync'd, renamed
 * over the old one, the directory fsync'd — before the change is answered, so a kill -9 at any
 * moment leaves either the old list or the new one. A file that does not parse stops start-up
 * with a message saying which file and what is wrong: starting with no ACLs would silently deny
 * (or, to an operator who then turns enforcement off, silently allow) everything.
 *
 * Limits: aclEntriesMax entries; principal and resource names of bounded length; all checked
 * before anything is stored.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { RunnelError, toRunnelError } from "../errors.ts";
import { nativeStorage } from "../log/storage.ts";
import { ACL_LIMITS, type AclEntry, aclEntrySchema, type AclFilter, matchesFilter, normalizeEntry, sameEntry } from "./acl.ts";

export const ACL_FILE_NAME = "acls.json";
const ACL_FILE_VERSION = 1;
const NO_ENTRIES: readonly AclEntry[] = [];
const fileSchema = z.object({ version: z.literal(ACL_FILE_VERSION), acls: z.array(aclEntrySchema).max(ACL_LIMITS.entriesMax) }).strict();


export class AclStore {
  private entries: AclEntry[];
  /** Entries by principal string (`User:alice`, `*`): an authorization check reads two lists. */
  private byPrincipal = new Map<string, AclEntry[]>();

  private constructor(
    /** The file, or null for a store held only in memory (unit tests). */
    private readonly filePath: string | null,
    entries: AclEntry[],
  ) {
    this.entries = entries;
    this.reindex();
  }

  /** Reads `<dataDir>/acls.json` (none yet = no entries); throws INVALID_CONFIG for a damaged file. */
  static open(dataDir: string): AclStore {
    const filePath = path.join(dataDir, ACL_FILE_NAME);
    removeLeftoverTemps(dataDir);
    let text: string;
    try {
      text = fs.readFileSync(filePath, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new AclStore(filePath, []);
      throw new RunnelError("STORAGE_ERROR", `cannot read the ACL file ${filePath}: ${(error as Error).message}`, { cause: error });
    }
    return new AclStore(filePath, parseAclFile(filePath, text));
  }

  static inMemory(entries: readonly AclEntry[] = []): AclStore {
    return new AclStore(null, entries.map(normalizeEntry));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The entries of `principal` (`User:alice`) and of `*`. */
  entriesFor(principal: string): { own: readonly AclEntry[]; everyone: readonly AclEntry[] } {
    return { own: this.byPrincipal.get(principal) ?? NO_ENTRIES, everyone: this.byPrincipal.get("*") ?? NO_ENTRIES };
  }

  list(filter: AclFilter = {}): AclEntry[] {
    return this.entries.filter((entry) => matchesFilter(entry, filter));
  }

  /** Adds the entries not already there, durably; returns how many were new. */
  add(entries: readonly AclEntry[]): number {
    const added: AclEntry[] = [];
    for (const raw of entries) {
      const entry = normalizeEntry(raw);
      if (this.entries.some((known) => sameEntry(known, entry)) || added.some((known) => sameEntry(known, entry))) continue;
      added.push(entry);
    }
    if (added.length === 0) return 0;
    if (this.entries.length + added.length > ACL_LIMITS.entriesMax) {
      throw new RunnelError("LIMIT_EXCEEDED", `the ACL holds ${this.entries.length} entries; ${added.length} more would pass its limit of ${ACL_LIMITS.entriesMax}`, {
        details: { aclEntriesMax: ACL_LIMITS.entriesMax },
      });
    }
    this.replace([...this.entries, ...added]);
    return added.length;
  }

  /** Removes every entry matching one of `filters`, durably; returns those removed. */
  remove(filters: readonly AclFilter[]): AclEntry[] {
    const removed = this.entries.filter((entry) => filters.some((filter) => matchesFilter(entry, filter)));
    if (removed.length > 0) this.replace(this.entries.filter((entry) => !removed.includes(entry)));
    return removed;
  }

  /** Writes first, then swaps: a failed write leaves both the file and memory as they were. */
  private replace(next: AclEntry[]): void {
    if (this.filePath !== null) writeDurably(this.filePath, `${JSON.stringify({ version: ACL_FILE_VERSION, acls: next }, null, 1)}\n`);
    this.entries = next;
    this.reindex();
  }

  private reindex(): void {
    this.byPrincipal = new Map();
    for (const entry of this.entries) {
      const list = this.byPrincipal.get(entry.principal);
      if (list === undefined) this.byPrincipal.set(entry.principal, [entry]);
      else list.push(entry);
    }
  }
}

function parseAclFile(filePath: string, text: string): AclEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corruptFile(filePath, `it is not JSON (${(error as Error).message})`, error);
  }
  const parsed = fileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corruptFile(filePath, `${issue?.path.join(".") ?? "?"}: ${issue?.message ?? "invalid"}`, parsed.error);
  }
  return parsed.data.acls.map(normalizeEntry);
}

function corruptFile(filePath: string, what: string, cause: unknown): RunnelError {
  return new RunnelError(
    "INVALID_CONFIG",
    `the ACL file ${filePath} is damaged: ${what}. Restore it from a backup, or move it away to start with no ACLs (with authorizer "acl" only super-users then get through)`,
    { cause },
  );
}

/** Storage.writeFileAtomic (temp file, fdatasync, rename, directory fsync), readable by the owner only. */
function writeDurably(filePath: string, text: string): void {
  try {
    nativeStorage.writeFileAtomic(filePath, text, { mode: 0o600 });
  } catch (error) {
    fs.rmSync(`${filePath}.tmp`, { force: true });
    const code = toRunnelError(error).code === "STORAGE_FULL" ? "STORAGE_FULL" : "STORAGE_ERROR";
    throw new RunnelError(code, `could not write the ACL file ${filePath}: ${(error as Error).message}; nothing was changed`, { cause: error });
  }
}

/** A kill -9 between write and rename leaves `acls.json.tmp`: never read, removed here. */
function removeLeftoverTemps(dataDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dataDir);
  } catch {
    return; // no data dir yet: nothing left over
  }
  for (const name of names) if (name.startsWith(`${ACL_FILE_NAME}.`) && name.endsWith(".tmp")) fs.rmSync(path.join(dataDir, name), { force: true });
}
