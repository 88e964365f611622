/**
 * @module security/credential-store
 * The users who may authenticate, as SCRAM verifiers only (salt, iterations, StoredKey, ServerKey
 * per mechanism): the password itself is never stored, so a stolen data directory lets no one
 * log in (it still allows an offline guess of a weak password, hence mode 0600).
 *
 * On disk: `<dataDir>/users.json`, replaced whole on every change — written to `users.json.tmp`,
 * fdatasync'd, renamed over the old file, then the directory fsync'd — so a kill -9 or a power
 * loss leaves either the old set of users or the new one, never a mix. The file also holds the
 * server secret fake verifiers for unknown users are derived from (scram.ts fakeVerifier), so
 * an unknown user's salt is stable across restarts, as a real user's is.
 *
 *   { "version": 1, "secret": "<base64>",
 *     "users": { "<name>": { "SCRAM-SHA-256": { "salt": "<base64>", "iterations": 8192,
 *                                               "storedKey": "<base64>", "serverKey": "<base64>" },
 *                            "SCRAM-SHA-512": { ... } } } }
 *
 * A file that does not parse stops start-up with a STORAGE_ERROR naming the file and what to do;
 * it is never silently replaced (that would lock every user out, or in).
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { nativeStorage } from "../log/storage.ts";
import { SCRAM_ITERATIONS_DEFAULT, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN, SCRAM_MECHANISMS, type ScramMechanism, type ScramVerifier } from "./scram.ts";

export const USERS_FILE = "users.json";
/** Users one broker holds. */
export const USERS_MAX = 10_000;
/** A users file larger than this is refused before it is read (10,000 users fit in ~5 MiB). */
const USERS_FILE_BYTES_MAX = 16 * 1024 * 1024;
const SECRET_BYTES = 32;

/** A user name: 1-255 characters, printable, no control characters. */
export const USER_NAME_PATTERN = /^[^\u0000-\u001f\u007f]{1,255}$/u;

const base64 = z.string().max(1024).regex(/^[A-Za-z0-9+/]*={0,2}$/);
const verifierSchema = z
  .object({ salt: base64, iterations: z.int().min(SCRAM_ITERATIONS_MIN).max(SCRAM_ITERATIONS_MAX), storedKey: base64, serverKey: base64 })
  .strict();
const fileSchema = z
  .object({
    version: z.literal(1),
    secret: base64,
    users: z.record(z.string().regex(USER_NAME_PATTERN), z.object({ "SCRAM-SHA-256": verifierSchema.optional(), "SCRAM-SHA-512": verifierSchema.optional() }).strict()),
  })
  .strict();

type StoredUser = Partial<Record<ScramMechanism, ScramVerifier>>;

export interface UserInfo {
  name: string;
  mechanisms: Array<{ mechanism: ScramMechanism; iterations: number }>;
}

export function checkUserName(name: string): void {
  if (!USER_NAME_PATTERN.test(name)) throw new RunnelError("INVALID_REQUEST", `user name: 1-${LIMITS.shortStringLengthMax} characters without control characters`);
}

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

export class CredentialStore {
  /** typicalIterations per mechanism, forgotten on every change. */
  private readonly typical = new Map<ScramMechanism, number>();

  private constructor(
    private readonly path: string,
    private readonly users: Map<string, StoredUser>,
    /** Key of the fake verifiers for unknown users (scram.ts fakeVerifier). */
    readonly secret: Uint8Array,
  ) {}

  /** Reads `<dataDir>/users.json` (none yet: no users). Throws STORAGE_ERROR on a bad file. */
  static open(dataDir: string): CredentialStore {
    const path = `${dataDir}/${USERS_FILE}`;
    const size = nativeStorage.fileSize(path);
    if (size === null) return new CredentialStore(path, new Map(), randomBytes(SECRET_BYTES));
    if (size > USERS_FILE_BYTES_MAX) throw unreadable(path, `it is ${size} bytes, more than ${USERS_FILE_BYTES_MAX}`);
    const bytes = nativeStorage.readFile(path);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes ?? new Uint8Array()));
    } catch (error) {
      throw unreadable(path, `it is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    const result = fileSchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw unreadable(path, `${issue?.path.join(".") || "file"}: ${issue?.message ?? "invalid"}`);
    }
    const users = new Map<string, StoredUser>();
    for (const [name, stored] of Object.entries(result.data.users)) {
      const user: StoredUser = {};
      for (const mechanism of SCRAM_MECHANISMS) {
        const verifier = stored[mechanism];
        if (verifier === undefined) continue;
        user[mechanism] = { salt: fromBase64(verifier.salt), iterations: verifier.iterations, storedKey: fromBase64(verifier.storedKey), serverKey: fromBase64(verifier.serverKey) };
      }
      users.set(name, user);
    }
    if (users.size > USERS_MAX) throw unreadable(path, `it holds ${users.size} users, more than ${USERS_MAX}`);
    return new CredentialStore(path, users, fromBase64(result.data.secret));
  }

  get size(): number {
    return this.users.size;
  }

  lookup(user: string, mechanism: ScramMechanism): ScramVerifier | null {
    return this.users.get(user)?.[mechanism] ?? null;
  }

  /**
   * The iteration count most users of `mechanism` have (SCRAM_ITERATIONS_DEFAULT when none): what
   * a fake verifier for an unknown user claims, so that its server-first looks like a real one.
   */
  typicalIterations(mechanism: ScramMechanism): number {
    const cached = this.typical.get(mechanism);
    if (cached !== undefined) return cached;
    const counts = new Map<number, number>();
    for (const stored of this.users.values()) {
      const iterations = stored[mechanism]?.iterations;
      if (iterations !== undefined) counts.set(iterations, (counts.get(iterations) ?? 0) + 1);
    }
    let typical = SCRAM_ITERATIONS_DEFAULT;
    let most = 0;
    for (const [iterations, count] of counts) {
      if (count > most) [typical, most] = [iterations, count];
    }
    this.typical.set(mechanism, typical);
    return typical;
  }

  has(user: string): boolean {
    return this.users.has(user);
  }

  list(): UserInfo[] {
    return [...this.users.entries()]
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
      .map(([name, stored]) => ({
        name,
        mechanisms: SCRAM_MECHANISMS.flatMap((mechanism) => {
          const verifier = stored[mechanism];
          return verifier === undefined ? [] : [{ mechanism, iterations: verifier.iterations }];
        }),
      }));
  }

  /** Adds the user or replaces its verifiers (a password change), durably before it returns. */
  upsert(user: string, verifiers: Partial<Record<ScramMechanism, ScramVerifier>>): void {
    checkUserName(user);
    if (!this.users.has(user) && this.users.size >= USERS_MAX) throw new RunnelError("LIMIT_EXCEEDED", `at most ${USERS_MAX} users`);
    if (SCRAM_MECHANISMS.every((mechanism) => verifiers[mechanism] === undefined)) throw new RunnelError("INVALID_REQUEST", "credentials: at least one SCRAM mechanism");
    const previous = this.users.get(user);
    this.users.set(user, { ...verifiers });
    try {
      this.persist();
    } catch (error) {
      if (previous === undefined) this.users.delete(user);
      else this.users.set(user, previous);
      throw error;
    }
  }

  /** Removes the user durably; false when there was none. */
  remove(user: string): boolean {
    const previous = this.users.get(user);
    if (previous === undefined) return false;
    this.users.delete(user);
    try {
      this.persist();
    } catch (error) {
      this.users.set(user, previous);
      throw error;
    }
    return true;
  }

  private encode(): string {
    this.typical.clear();
    const users: Record<string, Record<string, unknown>> = {};
    for (const [name, stored] of this.users) {
      const entry: Record<string, unknown> = {};
      for (const mechanism of SCRAM_MECHANISMS) {
        const verifier = stored[mechanism];
        if (verifier === undefined) continue;
        entry[mechanism] = { salt: toBase64(verifier.salt), iterations: verifier.iterations, storedKey: toBase64(verifier.storedKey), serverKey: toBase64(verifier.serverKey) };
      }
      users[name] = entry;
    }
    return `${JSON.stringify({ version: 1, secret: toBase64(this.secret), users }, null, 1)}\n`;
  }

  /** Storage.writeFileAtomic, readable by the owner only: the old file or the new, never half. */
  private persist(): void {
    try {
      nativeStorage.writeFileAtomic(this.path, this.encode(), { mode: 0o600 });
    } catch (error) {
      throw new RunnelError("STORAGE_ERROR", `cannot write ${this.path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

function unreadable(path: string, why: string): RunnelError {
  return new RunnelError(
    "STORAGE_ERROR",
    `the credential store ${path} cannot be read: ${why}; restore it from a backup, or move it away and add the users again (runnel users add --data-dir)`,
  );
}
