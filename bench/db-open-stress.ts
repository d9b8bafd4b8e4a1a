/**
 * Opening a new state database from many processes at once, round after round: counts the rounds in which a
 * contender failed, and why (SQLite code and message). Run it beside a loaded host (e.g. while the integration
 * suite runs) to reproduce rare lock races in openDb.
 * Usage: npx tsx bench/db-open-stress.ts [rounds=300] [processes=8]   (no root)
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContenders } from '../test/harness/db-open-contenders.js';

const rounds = Number(process.argv[2] ?? 300);
const n = Number(process.argv[3] ?? 8);
const dir = await mkdtemp(join(tmpdir(), 'vmforge-dbstress-'));
const contenders = await startContenders(n);
const failures = new Map<string, number>();
let failedRounds = 0;
const t0 = performance.now();
try {
  for (let r = 0; r < rounds; r++) {
    const roundDir = join(dir, String(r));
    await mkdir(roundDir);
    const bad = (await contenders.openAll(join(roundDir, 'state.db'))).filter((a) => !a.ok);
    if (bad.length > 0) failedRounds++;
    for (const a of bad) failures.set(`${a.code} ${a.error}`, (failures.get(`${a.code} ${a.error}`) ?? 0) + 1);
    await rm(roundDir, { recursive: true, force: true });
  }
} finally {
  await contenders.stop();
  await rm(dir, { recursive: true, force: true });
}
const seconds = (performance.now() - t0) / 1000;
console.log(`${rounds} rounds of ${n} processes in ${seconds.toFixed(1)} s (load ${loadavg()[0]!.toFixed(1)}): ${failedRounds} rounds failed`);
for (const [why, count] of failures) console.log(`  ${count} x ${why}`);
