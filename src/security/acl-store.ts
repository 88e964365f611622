/**
 * @module security/acl-store
 * The access control list (docs/security.md, "Authorization"): entries of principal × resource ×
 * operation × allow/deny, kept durably in `<dataDir>/acls.json` and held in memory for the
 * authorizer (security/authorizer.ts), which alone interprets them.
 *
 * Model, as Kafka's: a principal is `User:<name>` or `*` (everyone, the anonymous too); a
 * resource is a topic or a group — named literally (`*` literally meaning every one) or by a
 * prefix — or the cluster; an operation is read, write, create, delete, describe, alter, or all.
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
import { RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

export const ACL_FILE_NAME = "acls.json";
const ACL_FILE_VERSION = 1;

export const ACL_LIMITS = {
  /** Entries in the whole list. */
  entriesMax: 10_000,
  /** `User:` plus a user name. */
  principalLengthMax: 256,
  /** A topic name or prefix, a group id or prefix. */
  resourceNameLengthMax: LIMITS.shortStringLengthMax,
  /** Entries one createAcls or deleteAcls request may name. */
  entriesPerRequestMax: 1_000,
} as const;

export const ACL_OPERATIONS = ["read", "write", "create", "delete", "describe", "alter", "all"] as const;
export type AclOperation = (typeof ACL_OPERATIONS)[number];
export const RESOURCE_TYPES = ["topic", "group", "cluster"] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];
export const PATTERN_TYPES = ["literal", "prefixed"] as const;
export type PatternType = (typeof PATTERN_TYPES)[number];
export const PERMISSIONS = ["allow", "deny"] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** The name every cluster entry carries: there is one cluster. */
export const CLUSTER_RESOURCE_NAME = "cluster";

const principalSchema = z
  .string()
  .max(ACL_LIMITS.principalLengthMax)
  .refine((value) => value === "*" || /^User:[^\s,]{1,250}$/.test(value), "a principal is `User:<name>` (no spaces or commas) or `*`");

export const aclEntrySchema = z
  .object({
    principal: principalSchema,
    resourceType: z.enum(RESOURCE_TYPES),
    resourceName: z.string().min(1).max(ACL_LIMITS.resourceNameLengthMax),
    patternType: z.enum(PATTERN_TYPES).default("literal"),
    operation: z.enum(ACL_OPERATIONS),
    permission: z.enum(PERMISSIONS).default("allow"),
  })
  .strict();

export type AclEntry = z.infer<typeof aclEntrySchema>;

/** A filter for describe and delete: every field left out matches any value. */
export const aclFilterSchema = z
  .object({
    principal: z.string().max(ACL_LIMITS.principalLengthMax).optional(),
    resourceType: z.enum(RESOURCE_TYPES).optional(),
    resourceName: z.string().max(ACL_LIMITS.resourceNameLengthMax).optional(),
    patternType: z.enum(PATTERN_TYPES).optional(),
    operation: z.enum(ACL_OPERATIONS).optional(),
    permission: z.enum(PERMISSIONS).optional(),
  })
  .strict();

export type AclFilter = z.infer<typeof aclFilterSchema>;

const fileSchema = z.object({ version: z.literal(ACL_FILE_VERSION), acls: z.array(aclEntrySchema).max(ACL_LIMITS.entriesMax) }).strict();

/** An entry as stored: cluster entries always name the cluster, so one rule reads them all. */
export function normalizeEntry(entry: AclEntry): AclEntry {
  if (entry.resourceType !== "cluster") return entry;
  return { ...entry, resourceName: CLUSTER_RESOURCE_NAME, patternType: "literal" };
}

function sameEntry(left: AclEntry, right: AclEntry): boolean {
  return (
    left.principal === right.principal &&
    left.resourceType === right.resourceType &&
    left.resourceName === right.resourceName &&
    left.patternType === right.patternType &&
    left.operation === right.operation &&
    left.permission === right.permission
  );
}

export function matchesFilter(entry: AclEntry, filter: AclFilter): boolean {
  return (
    (filter.principal === undefined || filter.principal === entry.principal) &&
    (filter.resourceType === undefined || filter.resourceType === entry.resourceType) &&
    (filter.resourceName === undefined || filter.resourceName === entry.resourceName) &&
    (filter.patternType === undefined || filter.patternType === entry.patternType) &&
    (filter.operation === undefined || filter.operation === entry.operation) &&
    (filter.permission === undefined || filter.permission === entry.permission)
  );
}

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
    return { own: this.byPrincipal.get(principal) ?? [], everyone: this.byPrincipal.get("*") ?? [] };
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

/** Temp file, fsync, rename, fsync the directory: the rename itself survives a power loss. */
function writeDurably(filePath: string, text: string): void {
  const temporary = `${filePath}.${process.pid}.tmp`;
  try {
    const fd = fs.openSync(temporary, "w", 0o600);
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, filePath);
    const directory = fs.openSync(path.dirname(filePath), "r");
    try {
      fs.fsyncSync(directory);
    } finally {
      fs.closeSync(directory);
    }
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    const full = code === "ENOSPC" || code === "EDQUOT";
    throw new RunnelError(full ? "STORAGE_FULL" : "STORAGE_ERROR", `could not write the ACL file ${filePath}: ${(error as Error).message}; nothing was changed`, { cause: error });
  }
}

/** A kill -9 between write and rename leaves `acls.json.<pid>.tmp`: never read, removed here. */
function removeLeftoverTemps(dataDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dataDir);
  } catch {
    return; // no data dir yet: nothing left over
  }
  for (const name of names) if (name.startsWith(`${ACL_FILE_NAME}.`) && name.endsWith(".tmp")) fs.rmSync(path.join(dataDir, name), { force: true });
}
