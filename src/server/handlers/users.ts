/**
 * @module server/handlers/users
 * `createUser`, `deleteUser`, `listUsers`: the credential store (security/credential-store.ts)
 * administered over the native protocol, by super-users only (`superUsers`; anyone else gets
 * AUTHORIZATION_FAILED). createUser carries SCRAM verifiers the client derived from the password
 * (scram.ts deriveVerifier), so the password never reaches the broker. Every change is durable
 * before the answer. Non-obvious: a deleted user's open connections stay authenticated until
 * they close; new connections are refused at once.
 */
import { RunnelError } from "../../errors.ts";
import type { RequestOf } from "../../protocol/messages.ts";
import type { ScramMechanism, ScramVerifier } from "../../security/scram.ts";
import type { Session } from "../../security/session.ts";
import { isSuperUser } from "../../security/super-users.ts";
import { type BrokerContext, frameReply, type Reply } from "../context.ts";

const KEY_BYTES: Record<ScramMechanism, number> = { "SCRAM-SHA-256": 32, "SCRAM-SHA-512": 64 };
const SALT_BYTES_MIN = 8;
const SALT_BYTES_MAX = 128;

function requireSuperUser(context: BrokerContext, session: Session, op: string): void {
  if (isSuperUser(context.config, session.principal)) return;
  throw new RunnelError("AUTHORIZATION_FAILED", `${op} needs a super-user (superUsers); this connection is ${session.principal.name}`, {
    details: { operation: "alter", resourceType: "cluster", resourceName: "users" },
  });
}

function verifiersOf(context: BrokerContext, request: RequestOf<"createUser">): Partial<Record<ScramMechanism, ScramVerifier>> {
  const verifiers: Partial<Record<ScramMechanism, ScramVerifier>> = {};
  for (const [index, credential] of request.credentials.entries()) {
    const where = `credentials[${index}]`;
    const keyBytes = KEY_BYTES[credential.mechanism];
    if (verifiers[credential.mechanism] !== undefined) throw new RunnelError("INVALID_REQUEST", `${where}.mechanism: ${credential.mechanism} given twice`);
    if (credential.iterations < context.config.scramIterationsMin) {
      throw new RunnelError("INVALID_REQUEST", `${where}.iterations: at least ${context.config.scramIterationsMin} (scramIterationsMin)`);
    }
    if (credential.salt.length < SALT_BYTES_MIN || credential.salt.length > SALT_BYTES_MAX) throw new RunnelError("INVALID_REQUEST", `${where}.salt: ${SALT_BYTES_MIN} to ${SALT_BYTES_MAX} bytes`);
    if (credential.storedKey.length !== keyBytes || credential.serverKey.length !== keyBytes) {
      throw new RunnelError("INVALID_REQUEST", `${where}: storedKey and serverKey are ${keyBytes} bytes for ${credential.mechanism}`);
    }
    // Copies: the request's bin fields are views into a reused frame buffer.
    verifiers[credential.mechanism] = {
      salt: credential.salt.slice(),
      iterations: credential.iterations,
      storedKey: credential.storedKey.slice(),
      serverKey: credential.serverKey.slice(),
    };
  }
  return verifiers;
}

export function handleCreateUser(context: BrokerContext, request: RequestOf<"createUser">, id: number, session: Session): Reply {
  requireSuperUser(context, session, "createUser");
  const verifiers = verifiersOf(context, request);
  const store = context.authenticator.store;
  const existed = store.has(request.user);
  store.upsert(request.user, verifiers);
  context.authenticator.credentialsChanged();
  context.logger.info({ by: session.principal.name, replaced: existed }, "user credentials stored");
  return frameReply(id, { created: !existed });
}

export function handleDeleteUser(context: BrokerContext, request: RequestOf<"deleteUser">, id: number, session: Session): Reply {
  requireSuperUser(context, session, "deleteUser");
  if (!context.authenticator.store.remove(request.user)) throw new RunnelError("UNKNOWN_USER", `no user '${request.user}'`);
  context.authenticator.credentialsChanged();
  context.logger.info({ by: session.principal.name }, "user removed");
  return frameReply(id, {});
}

export function handleListUsers(context: BrokerContext, _request: RequestOf<"listUsers">, id: number, session: Session): Reply {
  requireSuperUser(context, session, "listUsers");
  return frameReply(id, { users: context.authenticator.store.list() });
}
