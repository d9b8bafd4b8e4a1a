import type { Db } from './db.js';
import type { ApiRole } from './schema.js';

export interface ApiTokenRow {
  name: string;
  role: ApiRole;
  createdAt: string;
}

/** The API's bearer tokens, by the sha256 digest of the token (the token itself is never stored). */
export class TokenRepo {
  constructor(private readonly db: Db) {}

  /** Raises the database's unique error for a name (or digest) that exists already. */
  async insert(name: string, role: ApiRole, digest: string, createdAt: string): Promise<void> {
    await this.db.insertInto('api_tokens').values({ name, role, digest, created_at: createdAt }).execute();
  }

  async byDigest(digest: string): Promise<ApiTokenRow | undefined> {
    const r = await this.db.selectFrom('api_tokens').select(['name', 'role', 'created_at']).where('digest', '=', digest).executeTakeFirst();
    return r && { name: r.name, role: r.role, createdAt: r.created_at };
  }

  async list(): Promise<ApiTokenRow[]> {
    const rows = await this.db.selectFrom('api_tokens').select(['name', 'role', 'created_at']).orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, role: r.role, createdAt: r.created_at }));
  }

  /** True when there was such a token. */
  async remove(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('api_tokens').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
