/**
 * @module security/acl
 * The ACL's data model, pure (no I/O, so the wire schemas in protocol/ can use it): entries of
 * principal × resource × operation × allow/deny, their zod schemas and limits, and the filter
 * that describeAcls and deleteAcls match entries with. Kafka's model: a principal is
 * `User:<name>` or `*` (everyone, the anonymous too); a resource is a topic or a group — named
 * literally (`*` literally meaning every one) or by a prefix — or the cluster; an operation is
 * read, write, create, delete, describe, alter, or all. security/authorizer.ts interprets them;
 * security/acl-store.ts keeps them.
 */
import { z } from "zod";
import { LIMITS } from "../limits.ts";

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
    /** A topic or group name or prefix; for the cluster it may be left out. */
    resourceName: z.string().max(ACL_LIMITS.resourceNameLengthMax).optional(),
    patternType: z.enum(PATTERN_TYPES).default("literal"),
    operation: z.enum(ACL_OPERATIONS),
    permission: z.enum(PERMISSIONS).default("allow"),
  })
  .strict()
  .refine((entry) => entry.resourceType === "cluster" || (entry.resourceName ?? "").length > 0, {
    message: "a topic or group entry names its resource (resourceName)",
    path: ["resourceName"],
  })
  .transform((entry): AclEntry => normalizeEntry({ ...entry, resourceName: entry.resourceName ?? "" }));

export interface AclEntry {
  principal: string;
  resourceType: ResourceType;
  resourceName: string;
  patternType: PatternType;
  operation: AclOperation;
  permission: Permission;
}

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


/** An entry as stored: cluster entries always name the cluster, so one rule reads them all. */
export function normalizeEntry(entry: AclEntry): AclEntry {
  if (entry.resourceType !== "cluster") return entry;
  return { ...entry, resourceName: CLUSTER_RESOURCE_NAME, patternType: "literal" };
}

export function sameEntry(left: AclEntry, right: AclEntry): boolean {
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
