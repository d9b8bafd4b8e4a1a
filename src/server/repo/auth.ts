/**
 * Bearer tokens of the repository server. Tokens are kept only as sha256 digests and compared in constant
 * time against every configured token (no early exit), so neither timing nor the log can give one away.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Config } from '../../config/schema.js';
import { VmforgeError } from '../../errors.js';

export type Scope = 'read' | 'write';

export interface RepoToken {
  /** Shown in logs instead of the token. */
  name: string;
  scopes: readonly Scope[];
  digest: Buffer;
}

export type AuthResult =
  | { ok: true; tokenName: string | null }
  | { ok: false; status: 401 | 403; code: 'UNAUTHORIZED' | 'FORBIDDEN'; message: string };

const MIN_TOKEN_LENGTH = 16;

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function makeToken(name: string, token: string, scopes: readonly Scope[]): RepoToken {
  return { name, scopes, digest: tokenDigest(token) };
}

/** Reads every tokenFile (first line) once, at start. */
export async function resolveTokens(cfg: Config['repoServer']): Promise<RepoToken[]> {
  const out: RepoToken[] = [];
  for (const t of cfg.tokens) {
    let token = t.token;
    if (t.tokenFile !== undefined) {
      let text: string;
      try {
        text = await readFile(t.tokenFile, 'utf8');
      } catch (e) {
        throw new VmforgeError('INVALID_CONFIG', `repoServer.tokens '${t.name}': cannot read ${t.tokenFile}: ${(e as Error).message}`, {
          hint: 'create the file with the token on its first line, readable only by the server user',
        });
      }
      token = (text.split('\n')[0] ?? '').trim();
    }
    if (token === undefined || token.length < MIN_TOKEN_LENGTH) {
      throw new VmforgeError('INVALID_CONFIG', `repoServer.tokens '${t.name}': the token must be at least ${MIN_TOKEN_LENGTH} characters`, {
        hint: 'make one with: openssl rand -hex 32',
      });
    }
    const made = makeToken(t.name, token, t.scopes);
    // One secret under two names would authenticate as whichever is listed first: the other entry's scopes and
    // name in the log would be a lie. Compared as digests, so no message can carry the secret.
    const same = out.find((o) => o.digest.equals(made.digest));
    if (same) {
      throw new VmforgeError('INVALID_CONFIG', `repoServer.tokens '${same.name}' and '${t.name}' have the same token`, {
        hint: 'give each name its own token (make one with: openssl rand -hex 32), or merge them into one entry with both scopes',
      });
    }
    out.push(made);
  }
  return out;
}

/**
 * Decides a request. `need` null: open route. No Authorization header: allowed for reads with anonymousRead,
 * else 401. A header that is not `Bearer <token>` or names an unknown token: 401, even where anonymous reads
 * are allowed (a client sending a bad token wants to know). Known token without the scope: 403.
 */
export function checkAuth(tokens: readonly RepoToken[], authorization: string | undefined, need: Scope | null, anonymousRead: boolean): AuthResult {
  if (need === null) return { ok: true, tokenName: null };
  if (authorization === undefined || authorization.trim() === '') {
    if (need === 'read' && anonymousRead) return { ok: true, tokenName: null };
    return { ok: false, status: 401, code: 'UNAUTHORIZED', message: 'this repository needs a bearer token (Authorization: Bearer <token>)' };
  }
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!m) return { ok: false, status: 401, code: 'UNAUTHORIZED', message: 'the Authorization header must be: Bearer <token>' };
  const presented = tokenDigest(m[1] as string);
  let found: RepoToken | undefined;
  for (const t of tokens) {
    if (timingSafeEqual(presented, t.digest) && found === undefined) found = t;
  }
  if (!found) return { ok: false, status: 401, code: 'UNAUTHORIZED', message: 'unknown token' };
  if (!found.scopes.includes(need)) {
    return { ok: false, status: 403, code: 'FORBIDDEN', message: `token '${found.name}' does not have the '${need}' scope` };
  }
  return { ok: true, tokenName: found.name };
}
