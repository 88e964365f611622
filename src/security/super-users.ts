/**
 * @module security/super-users
 * The `superUsers` option: user principals every authorization check lets through (the way
 * Kafka's `super.users` works), so an operator can always administer users and ACLs.
 */
import type { Config } from "../config.ts";
import type { Principal } from "./session.ts";

/** The user names in a `superUsers` value ("alice, bob" → ["alice", "bob"]). */
export function superUserNames(value: string): string[] {
  return value
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
}

export function isSuperUser(config: Pick<Config, "superUsers">, principal: Principal): boolean {
  return principal.kind === "user" && superUserNames(config.superUsers).includes(principal.name);
}
