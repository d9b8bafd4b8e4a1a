import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb } from './db.js';
import { migrations } from './migrations.js';

describe('openDb beside another connection', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmforge-db-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  // The state another process is in while it switches a new database to WAL: it holds the write lock of a file
  // still in rollback mode. SQLite answers this connection's own switch with SQLITE_BUSY without waiting.
  it('waits for a write lock held on a new database instead of failing with "database is locked"', async () => {
    const path = join(dir, 'state.db');
    const other = new SQLite(path);
    try {
      other.prepare('BEGIN IMMEDIATE').run();
      const holdMs = 300;
      const release = setTimeout(() => other.prepare('COMMIT').run(), holdMs);
      const t0 = performance.now();
      const db = await openDb(path).finally(() => clearTimeout(release));
      const waited = performance.now() - t0;
      await db.destroy();
      expect(waited).toBeGreaterThanOrEqual(holdMs - 20);
      expect(other.inTransaction).toBe(false);
      expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(other.pragma('user_version', { simple: true })).toBe(Object.keys(migrations).length);
    } finally {
      if (other.inTransaction) other.prepare('ROLLBACK').run();
      other.close();
    }
  });
});
