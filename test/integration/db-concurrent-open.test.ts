import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations } from '../../src/store/migrations.js';
import { REPO } from '../harness/env.js';

// CI once failed with "duplicate column name" when several CLI processes (the bad-input cases run in parallel)
// created a fresh state database at the same moment: each applied the same migration.
describe('state database opened by many processes at once', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmforge-dbopen-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates a new database exactly once and every process opens it', async () => {
    const dbPath = join(dir, 'state.db');
    const go = join(dir, 'go');
    const n = 8;
    const procs = Array.from({ length: n }, (_, i) =>
      execa(process.execPath, ['--import', 'tsx', join(REPO, 'test/harness/db-opener.ts'), dbPath, join(dir, `ready-${i}`), go], {
        cwd: REPO,
        reject: false,
      }),
    );
    const deadline = Date.now() + 60_000;
    while (!Array.from({ length: n }, (_, i) => existsSync(join(dir, `ready-${i}`))).every(Boolean)) {
      if (Date.now() > deadline) throw new Error('contenders never got ready');
      await new Promise((r) => setTimeout(r, 20));
    }
    await writeFile(go, '');
    const results = await Promise.all(procs);
    for (const r of results) expect(`${r.exitCode} ${r.stdout} ${r.stderr}`).toBe('0 {"ok":true} ');

    const sqlite = new SQLite(dbPath, { readonly: true });
    try {
      expect(sqlite.pragma('user_version', { simple: true })).toBe(Object.keys(migrations).length);
      const applied = sqlite.prepare('select name from kysely_migration order by name').all() as { name: string }[];
      expect(applied.map((m) => m.name)).toEqual(Object.keys(migrations).sort());
    } finally {
      sqlite.close();
    }
  }, 120_000);
});
