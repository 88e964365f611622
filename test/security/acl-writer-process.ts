/**
 * A child process for acl-store.test.ts: adds ACL entries one at a time to the store in the
 * data dir given as argv[2], printing `added <n>` after each add returned (it is durable then),
 * until killed or `count` (argv[3]) entries are in.
 */
import { AclStore } from "../../src/security/acl-store.ts";

const dataDir = process.argv[2] ?? ".";
const count = Number(process.argv[3] ?? "500");
const store = AclStore.open(dataDir);
for (let index = store.size; index < count; index++) {
  store.add([{ principal: `User:user${index}`, resourceType: "topic", resourceName: `topic-${index}`, patternType: "literal", operation: "read", permission: "allow" }]);
  process.stdout.write(`added ${index + 1}\n`);
}
