import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type MigrationProvider } from 'kysely';
import { VmforgeError } from '../errors.js';
import { migrations } from './migrations.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

/** Opens (creating if needed) the SQLite state database and brings its schema up to date. */
export async function openDb(path: string): Promise<Db> {
  // 0755: QEMU runs as an unprivileged user and must traverse the state dir to reach disks under it.
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let sqlite: SQLite.Database;
  try {
    sqlite = new SQLite(path);
  } catch (e) {
    throw new VmforgeError('INTERNAL', `cannot open state database ${path}: ${(e as Error).message}`, {
      hint: 'vmforge needs root (or write access to its state dir)',
    });
  }
  // Several vmforge processes share the file: WAL lets readers run beside one writer, and the busy timeout
  // turns lock contention into waiting instead of SQLITE_BUSY errors.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const { error } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) throw new VmforgeError('INTERNAL', `database migration failed: ${(error as Error).message}`);
  return db;
}
