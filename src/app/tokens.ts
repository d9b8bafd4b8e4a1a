/**
 * Bearer tokens of the HTTP API (`vmforge token ...`). A token is 32 random bytes; only its sha256 is stored,
 * so the database cannot give one away and the token is shown once, when made. Roles nest: a viewer reads, an
 * operator also builds and destroys, an admin also manages networks and tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { conflict, invalidInput, notFound } from '../errors.js';
import type { ApiRole } from '../store/schema.js';
import { TokenRepo, type ApiTokenRow } from '../store/tokens.js';
import type { AppContext } from './context.js';

export const API_ROLES: readonly ApiRole[] = ['viewer', 'operator', 'admin'];

/** Whether `have` may do what needs `need`. */
export function roleAllows(have: ApiRole, need: ApiRole): boolean {
  return API_ROLES.indexOf(have) >= API_ROLES.indexOf(need);
}

/** The prefix lets secret scanners (and people) recognise a leaked token. */
const TOKEN_PREFIX = 'vmf_';

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export async function createToken(ctx: Pick<AppContext, 'db'>, name: string, role: string): Promise<{ name: string; role: ApiRole; token: string }> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw invalidInput(`token name '${name}' is not a short name`, 'use letters, digits, . _ - (at most 64)');
  if (!API_ROLES.includes(role as ApiRole)) throw invalidInput(`--role '${role}' is not a role`, `use one of: ${API_ROLES.join(', ')}`);
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  try {
    await new TokenRepo(ctx.db).insert(name, role as ApiRole, tokenDigest(token), new Date().toISOString());
  } catch (e) {
    if (/UNIQUE constraint failed: api_tokens\.name/.test((e as Error).message)) {
      throw conflict(`a token named '${name}' exists already`, `pick another name, or revoke it first with 'vmforge token revoke ${name}'`);
    }
    throw e;
  }
  return { name, role: role as ApiRole, token };
}

export async function listTokens(ctx: Pick<AppContext, 'db'>): Promise<ApiTokenRow[]> {
  return new TokenRepo(ctx.db).list();
}

export async function revokeToken(ctx: Pick<AppContext, 'db'>, name: string): Promise<void> {
  if (!(await new TokenRepo(ctx.db).remove(name))) throw notFound(`no token named '${name}'`, "list tokens with 'vmforge token list'");
}

/** The token's name and role, or null for a token that does not exist (never made, or revoked). */
export async function tokenFor(ctx: Pick<AppContext, 'db'>, token: string): Promise<ApiTokenRow | null> {
  return (await new TokenRepo(ctx.db).byDigest(tokenDigest(token))) ?? null;
}
