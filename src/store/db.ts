import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type MigrationProvider } from 'kysely';
import { VmforgeError } from '../errors.js';
import { migrations } from './migrations.js';
import type { Database } from './schema.js';
import { sqliteCode } from './write-txn.js';

export type Db = Kysely<Database>;

/** How long a statement waits for another process's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

/** Opens (creating if needed) the SQLite state database and brings its schema up to date. */
export async function openDb(path: string): Promise<Db> {
  // 0755: QEMU runs as an unprivileged user and must traverse the state dir to reach disks under it.
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let sqlite: SQLite.Database;
  try {
    sqlite = new SQLite(path, { nativeBinding: addonPath() });
  } catch (e) {
    throw new VmforgeError('INTERNAL', `cannot open state database ${path}: ${(e as Error).message}`, {
      hint: 'vmforge needs root (or write access to its state dir)',
    });
  }
  // Several vmforge processes share the file: WAL lets readers run beside one writer, and the busy timeout
  // turns lock contention into waiting instead of SQLITE_BUSY errors (set first: switching to WAL takes a lock).
  sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  await switchToWal(sqlite);
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(sqlite, db);
  return db;
}

/**
 * `PRAGMA journal_mode = WAL` on a database still in rollback mode (a new file) reads page 1 under a shared lock,
 * then upgrades to a write lock to mark the file WAL. SQLite never calls the busy handler for that upgrade (a
 * reader waiting for a writer could deadlock), so when another process is switching the same new file at that
 * moment the pragma fails at once with plain SQLITE_BUSY, whatever busy_timeout says: one of several commands
 * started together on a fresh host got "database is locked". Only that code is retried, with a bounded backoff:
 * the failed attempt holds no lock, and once the other process has committed the file is WAL and the pragma only
 * reads. Every other statement waits in the busy handler.
 */
async function switchToWal(sqlite: SQLite.Database): Promise<void> {
  const deadline = performance.now() + BUSY_TIMEOUT_MS;
  for (let delayMs = 1; ; delayMs = Math.min(delayMs * 2, 100)) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if (sqliteCode(e) !== 'SQLITE_BUSY' || performance.now() + delayMs > deadline) throw e;
    }
    // jitter: contenders that collided once must not retry in step
    await new Promise((r) => setTimeout(r, delayMs * (0.5 + Math.random())));
  }
}

/**
 * better-sqlite3's native addon where its install puts it, so it is loaded directly: otherwise the `bindings`
 * package finds it by probing a dozen paths, ~25 ms of every command's start-up. Undefined (bindings searches)
 * when it is elsewhere, e.g. a debug build.
 */
function addonPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
  } catch {
    return undefined;
  }
}

/** PRAGMA user_version holds the number of migrations applied; it lets a current database skip the migrator. */
export const SCHEMA_VERSION = Object.keys(migrations).length;

/**
 * Brings the schema up to date, once, even when several processes open a new database at the same moment.
 * kysely's SQLite adapter takes no lock and runs DDL outside a transaction, so two processes could both apply the
 * same migration ("duplicate column name"). BEGIN IMMEDIATE makes the second wait for the first's COMMIT; it then
 * finds nothing pending.
 */
async function migrate(sqlite: SQLite.Database, db: Db): Promise<void> {
  if (sqlite.pragma('user_version', { simple: true }) === SCHEMA_VERSION) return;
  try {
    sqlite.prepare('BEGIN IMMEDIATE').run();
  } catch (e) {
    throw new VmforgeError('INTERNAL', `database migration failed: ${(e as Error).message}`, {
      hint: 'another vmforge process holds the state database; retry when it has finished',
    });
  }
  try {
    const provider: MigrationProvider = { getMigrations: async () => migrations };
    const { error } = await new Migrator({ db, provider }).migrateToLatest();
    if (error) throw error;
    sqlite.pragma(`user_version = ${SCHEMA_VERSION}`);
    sqlite.prepare('COMMIT').run();
  } catch (e) {
    if (sqlite.inTransaction) sqlite.prepare('ROLLBACK').run();
    throw new VmforgeError('INTERNAL', `database migration failed: ${(e as Error).message}`);
  }
}
