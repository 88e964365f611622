/**
 * @module listeners/kafka/handlers/acls
 * DescribeAcls (key 29), CreateAcls (30), DeleteAcls (31), versions 0-1 (capped: 2+ is flexible,
 * 3 adds the user resource type; kafkajs speaks 0-1). Kafka's ACL records over the same store
 * as the native createAcls/deleteAcls/describeAcls (security/acl-store.ts).
 *
 * Mapping: resource types TOPIC (2), GROUP (3), CLUSTER (4); pattern types LITERAL (3), PREFIXED
 * (4); operations ALL (2), READ (3), WRITE (4), CREATE (5), DELETE (6), ALTER (7), DESCRIBE (8);
 * permissions DENY (2), ALLOW (3). In filters ANY (1) matches every value (and MATCH (2) as
 * pattern type is taken as ANY). Kafka's cluster resource is named "kafka-cluster"; Runnel stores
 * "cluster" and answers "kafka-cluster". The host must be "*" (Runnel's entries hold no host);
 * anything Runnel does not model (another resource type, operation or host) is refused for that
 * creation with INVALID_REQUEST (42).
 *
 * Authorization: alter on the cluster to create or delete, describe to describe
 * (CLUSTER_AUTHORIZATION_FAILED, 31, otherwise).
 */
import { RunnelError } from "../../../errors.ts";
import { type AclEntry, aclEntrySchema, type AclFilter, type AclOperation, type PatternType, type Permission, type ResourceType } from "../../../security/acl.ts";
import { fieldAs, type KafkaStruct } from "../codec.ts";
import type { KafkaContext, KafkaRequestInfo } from "../context.ts";
import { KAFKA_ERROR, kafkaErrorOf } from "../errors.ts";
import { clusterAccessCode } from "../access.ts";

const ANY = 1;
const KAFKA_CLUSTER_NAME = "kafka-cluster";
const RESOURCE_TYPES: ReadonlyMap<number, ResourceType> = new Map([[2, "topic"], [3, "group"], [4, "cluster"]]);
const PATTERN_TYPES: ReadonlyMap<number, PatternType> = new Map([[3, "literal"], [4, "prefixed"]]);
const OPERATIONS: ReadonlyMap<number, AclOperation> = new Map([[2, "all"], [3, "read"], [4, "write"], [5, "create"], [6, "delete"], [7, "alter"], [8, "describe"]]);
const PERMISSIONS: ReadonlyMap<number, Permission> = new Map([[2, "deny"], [3, "allow"]]);

function codeOf<Value>(table: ReadonlyMap<number, Value>, value: Value): number {
  for (const [code, known] of table) if (known === value) return code;
  return 0;
}

function lookup<Value>(table: ReadonlyMap<number, Value>, code: number, what: string): Value {
  const value = table.get(code);
  if (value === undefined) throw new RunnelError("INVALID_REQUEST", `${what} ${code} is not one this broker keeps ACLs for`);
  return value;
}

interface KafkaFilter {
  resourceTypeFilter: number;
  resourceNameFilter: string | null;
  patternTypeFilter: number;
  principalFilter: string | null;
  hostFilter: string | null;
  operation: number;
  permissionType: number;
}

/** A Kafka filter as ours; null when it can match nothing Runnel stores (another resource type, a host). */
function filterOf(filter: KafkaFilter): AclFilter | null {
  if (filter.hostFilter !== null && filter.hostFilter !== "*") return null;
  const result: AclFilter = {};
  if (filter.resourceTypeFilter !== ANY) {
    const type = RESOURCE_TYPES.get(filter.resourceTypeFilter);
    if (type === undefined) return null;
    result.resourceType = type;
  }
  if (filter.resourceNameFilter !== null) result.resourceName = filter.resourceNameFilter === KAFKA_CLUSTER_NAME ? "cluster" : filter.resourceNameFilter;
  if (filter.patternTypeFilter !== ANY && filter.patternTypeFilter !== 2) {
    const pattern = PATTERN_TYPES.get(filter.patternTypeFilter);
    if (pattern === undefined) return null;
    result.patternType = pattern;
  }
  if (filter.principalFilter !== null) result.principal = filter.principalFilter;
  if (filter.operation !== ANY) {
    const operation = OPERATIONS.get(filter.operation);
    if (operation === undefined) return null;
    result.operation = operation;
  }
  if (filter.permissionType !== ANY) {
    const permission = PERMISSIONS.get(filter.permissionType);
    if (permission === undefined) return null;
    result.permission = permission;
  }
  return result;
}

function kafkaEntry(entry: AclEntry): KafkaStruct {
  return {
    resourceType: codeOf(RESOURCE_TYPES, entry.resourceType),
    resourceName: entry.resourceType === "cluster" ? KAFKA_CLUSTER_NAME : entry.resourceName,
    patternType: codeOf(PATTERN_TYPES, entry.patternType),
    principal: entry.principal,
    host: "*",
    operation: codeOf(OPERATIONS, entry.operation),
    permissionType: codeOf(PERMISSIONS, entry.permission),
  };
}

export function handleDescribeAcls(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const denied = clusterAccessCode(context, info, "describe");
  if (denied !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, errorCode: denied, errorMessage: "describing ACLs needs describe on the cluster", resources: [] };
  const filter = filterOf(request as unknown as KafkaFilter);
  const entries = filter === null ? [] : context.broker.acls.list(filter);
  const byResource = new Map<string, KafkaStruct & { acls: KafkaStruct[] }>();
  for (const entry of entries) {
    const described = kafkaEntry(entry);
    const key = `${entry.resourceType}\u0000${entry.patternType}\u0000${entry.resourceName}`;
    let resource = byResource.get(key);
    if (resource === undefined) {
      resource = { resourceType: described.resourceType, resourceName: described.resourceName, patternType: described.patternType, acls: [] };
      byResource.set(key, resource);
    }
    resource.acls.push({ principal: described.principal, host: "*", operation: described.operation, permissionType: described.permissionType });
  }
  return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, resources: [...byResource.values()] };
}

interface Creation {
  resourceType: number;
  resourceName: string;
  resourcePatternType: number;
  principal: string;
  host: string;
  operation: number;
  permissionType: number;
}

export function handleCreateAcls(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const creations = fieldAs<Creation[]>(request.creations);
  const denied = clusterAccessCode(context, info, "alter");
  if (denied !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, results: creations.map(() => ({ errorCode: denied, errorMessage: "creating ACLs needs alter on the cluster" })) };
  const results = creations.map((creation) => {
    try {
      if (creation.host !== "*") throw new RunnelError("INVALID_REQUEST", `host '${creation.host.slice(0, 64)}': Runnel's ACL entries hold no host; use '*'`);
      const parsed = aclEntrySchema.safeParse({
        principal: creation.principal,
        resourceType: lookup(RESOURCE_TYPES, creation.resourceType, "resource type"),
        resourceName: creation.resourceType === 4 ? undefined : creation.resourceName,
        patternType: lookup(PATTERN_TYPES, creation.resourcePatternType, "pattern type"),
        operation: lookup(OPERATIONS, creation.operation, "operation"),
        permission: lookup(PERMISSIONS, creation.permissionType, "permission type"),
      });
      if (!parsed.success) throw new RunnelError("INVALID_REQUEST", parsed.error.issues[0]?.message ?? "invalid ACL entry");
      context.broker.acls.add([parsed.data]);
      return { errorCode: 0, errorMessage: null };
    } catch (error) {
      return kafkaErrorOf(error);
    }
  });
  return { throttleTimeMs: 0, results };
}

export function handleDeleteAcls(context: KafkaContext, request: KafkaStruct, _version: number, info: KafkaRequestInfo): KafkaStruct {
  const filters = fieldAs<KafkaFilter[]>(request.filters);
  const denied = clusterAccessCode(context, info, "alter");
  if (denied !== KAFKA_ERROR.NONE) return { throttleTimeMs: 0, filterResults: filters.map(() => ({ errorCode: denied, errorMessage: "deleting ACLs needs alter on the cluster", matchingAcls: [] })) };
  const filterResults = filters.map((kafkaFilter) => {
    const filter = filterOf(kafkaFilter);
    try {
      const removed = filter === null ? [] : context.broker.acls.remove([filter]);
      return { errorCode: 0, errorMessage: null, matchingAcls: removed.map((entry) => ({ errorCode: 0, errorMessage: null, ...kafkaEntry(entry) })) };
    } catch (error) {
      return { ...kafkaErrorOf(error), matchingAcls: [] };
    }
  });
  return { throttleTimeMs: 0, filterResults };
}
