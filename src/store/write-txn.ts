import { sql, type Kysely } from 'kysely';
import type { Db } from './db.js';
import type { Database } from './schema.js';

/**
 * Runs `fn` in a SQLite write transaction taken up front (BEGIN IMMEDIATE): what `fn` reads cannot change
 * before it writes, even from other processes, because they wait for the write lock (busy_timeout in db.ts)
 * instead of reading stale data and failing at commit. SQLITE_BUSY that outlasts the timeout is retried a few
 * times; `fn` must use the `trx` it is given (the connection is held exclusively meanwhile).
 */
export async function inWriteTransaction<T>(db: Db, fn: (trx: Kysely<Database>) => Promise<T>, opts: { busyRetries?: number } = {}): Promise<T> {
  const retries = opts.busyRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const result = await fn(conn);
          await sql`commit`.execute(conn);
          return result;
        } catch (e) {
          await sql`rollback`.execute(conn).catch(() => undefined);
          throw e;
        }
      });
    } catch (e) {
      if (!isBusy(e) || attempt >= retries) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200 * (attempt + 1)));
    }
  }
}

export function sqliteCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isBusy(e: unknown): boolean {
  return sqliteCode(e)?.startsWith('SQLITE_BUSY') ?? false;
}

/** The columns of a violated UNIQUE constraint ('leases.mac', ...), or null when `e` is something else. */
export function uniqueViolation(e: unknown): string[] | null {
  if (sqliteCode(e) !== 'SQLITE_CONSTRAINT_UNIQUE' && sqliteCode(e) !== 'SQLITE_CONSTRAINT_PRIMARYKEY') return null;
  const m = /constraint failed: (.*)$/.exec((e as Error).message);
  return m ? (m[1] as string).split(',').map((s) => s.trim()) : [];
}
