/**
 * A read-only look at the state database for `host check`: never creates, migrates or locks it, so it can run
 * beside builds and on a host that has no state yet.
 */
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { SCHEMA_VERSION } from './db.js';
import { JobRepo } from './jobs.js';
import type { Database } from './schema.js';

export interface StateDbReport {
  /** Migrations applied (PRAGMA user_version), and how many this vmforge knows. */
  schemaVersion: number;
  expectedVersion: number;
  journalMode: string;
  /** 'ok', or what PRAGMA quick_check found. */
  integrity: string;
  /** Jobs whose process died with undo records left ('running'), or whose undo failed: `vmforge recover`'s work. */
  unfinishedJobs: { id: number; kind: string; vm: string; status: string; pid: number }[];
}

export async function inspectStateDb(path: string, isAlive: (pid: number) => boolean): Promise<StateDbReport> {
  const sqlite = new SQLite(path, { readonly: true, fileMustExist: true });
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    sqlite.pragma('busy_timeout = 10000');
    const schemaVersion = sqlite.pragma('user_version', { simple: true }) as number;
    const journalMode = String(sqlite.pragma('journal_mode', { simple: true }));
    const problems = (sqlite.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check);
    const integrity = problems.length === 1 && problems[0] === 'ok' ? 'ok' : problems.slice(0, 3).join('; ');
    // A database from before the jobs table has none to report (its schema version says so).
    const jobs = schemaVersion > 0 ? await new JobRepo(db).orphaned(isAlive) : [];
    return {
      schemaVersion,
      expectedVersion: SCHEMA_VERSION,
      journalMode,
      integrity,
      unfinishedJobs: jobs.map((j) => ({ id: j.id, kind: j.kind, vm: j.vm_name, status: j.status, pid: j.pid })),
    };
  } finally {
    await db.destroy();
  }
}
