/**
 * Opens the state database in its own process, for the concurrent-open test (db-concurrent-open.test.ts).
 * Signals readiness by creating READY, waits for GO (so all contenders migrate the new file at once), opens the
 * database, prints one JSON line and exits 0 (opened) or 1 (error).
 *
 *   node --import tsx test/harness/db-opener.ts DB READY GO
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { openDb } from '../../src/store/db.js';

const [dbPath, ready, go] = process.argv.slice(2) as [string, string, string];
await writeFile(ready, String(process.pid));
const deadline = Date.now() + 120_000;
while (!existsSync(go)) {
  if (Date.now() > deadline) throw new Error('GO never came');
  await new Promise((r) => setTimeout(r, 2));
}
try {
  const db = await openDb(dbPath);
  await db.destroy();
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: (e as Error).message })}\n`);
  process.exitCode = 1;
}
