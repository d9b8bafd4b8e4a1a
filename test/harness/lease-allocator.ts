/**
 * One lease allocation in its own process, for the concurrency test (network-pool.test.ts). Opens the state
 * database, signals readiness by creating READY, waits for GO to exist (so all contenders hit the database at
 * once), allocates a lease with a random MAC, prints one JSON line and exits 0 (leased) or 1 (error).
 *
 *   node --import tsx test/harness/lease-allocator.ts DB NETWORK VM READY GO
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { MAC_PREFIX, pickMac } from '../../src/core/ipam/mac.js';
import { VmforgeError } from '../../src/errors.js';
import { openDb } from '../../src/store/db.js';
import { LeaseRepo } from '../../src/store/networks.js';

const [dbPath, network, vmName, ready, go] = process.argv.slice(2) as [string, string, string, string, string];
const db = await openDb(dbPath);
try {
  await writeFile(ready, String(process.pid));
  const deadline = Date.now() + 450_000;
  while (!existsSync(go)) {
    if (Date.now() > deadline) throw new Error('GO never came');
    await new Promise((r) => setTimeout(r, 5));
  }
  try {
    const lease = await new LeaseRepo(db).allocate({ network, vmName, mac: (inUse) => pickMac(MAC_PREFIX.qemu, inUse, (n) => randomBytes(n)) });
    process.stdout.write(`${JSON.stringify({ ok: true, lease })}\n`);
  } catch (e) {
    const err = e instanceof VmforgeError ? { code: e.code, message: e.message, hint: e.hint } : { code: 'UNEXPECTED', message: String((e as Error)?.stack ?? e) };
    process.stdout.write(`${JSON.stringify({ ok: false, error: err })}\n`);
    process.exitCode = 1;
  }
} finally {
  await db.destroy();
}
