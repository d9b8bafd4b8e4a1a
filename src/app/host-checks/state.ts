/**
 * vmforge's own state: running as root, free space where it writes, the state database (schema version,
 * integrity, commands that died half-done) and the host lock.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { spaceVerdict, type CheckStatus } from '../../core/host/check-report.js';
import { parseSize } from '../../core/units.js';
import { freeSpace } from '../../exec/host/free-space.js';
import { hostLockHolder } from '../../exec/host-lock.js';
import { pidAlive } from '../../exec/pid.js';
import { inspectStateDb } from '../../store/inspect.js';
import { findingOf, type CheckEnv, type Finding } from '../host-check.js';
import { hostLockPath } from '../mutating.js';

export async function stateChecks(env: CheckEnv): Promise<Finding[]> {
  const { config } = env.ctx;
  const out: Finding[] = [];
  const root = process.getuid?.() === 0;
  out.push({
    id: 'state.root',
    title: 'running as root',
    status: root ? 'ok' : 'fail',
    detail: root ? 'uid 0' : `uid ${process.getuid?.() ?? '?'}: builds need root (loop devices, mounts, libvirt's system URI)`,
    ...(root ? {} : { fix: 'run vmforge as root (sudo vmforge ...)' }),
  });

  // One line per filesystem: the disks, bundles, state and run dirs often share one.
  const dirs: [string, string][] = [
    ['disks', config.storage.dir],
    ['bundles', config.bundles.dir],
    ['state', config.stateDir],
    ['run', config.runDir],
  ];
  const warnBelow = parseSize(config.defaults.disk, 'defaults.disk');
  const byDev = new Map<number, { what: string; status: CheckStatus }>();
  for (const [what, dir] of dirs) {
    const setting = what === 'disks' ? 'storage.dir' : what === 'bundles' ? 'bundles.dir' : 'stateDir';
    out.push(
      await findingOf(`space.${what}`, `free space for ${what} (${dir})`, async () => {
        const s = await freeSpace(dir);
        const dev = (await stat(s.measuredAt)).dev;
        const first = byDev.get(dev);
        if (first) return { status: first.status, detail: `same filesystem as ${first.what}` };
        const v = spaceVerdict(s.availableBytes, { warnBelow });
        byDev.set(dev, { what, status: v.status });
        const where = s.measuredAt === dir ? '' : ` (on ${s.measuredAt}: ${dir} is made on first use)`;
        const fix = `free space on the filesystem of ${s.measuredAt}, remove unused golden images (vmforge cache prune), or point ${setting} at a larger filesystem`;
        return { ...v, detail: `${v.detail}${where}`, ...(v.status === 'ok' ? {} : { fix }) };
      }),
    );
  }

  out.push(
    await findingOf('state.db', `state database ${config.dbPath}`, async () => {
      if (!existsSync(config.dbPath)) return { detail: 'not created yet: the first command that changes something makes it' };
      const r = await inspectStateDb(config.dbPath, pidAlive);
      if (r.integrity !== 'ok') return { status: 'fail', detail: `damaged: ${r.integrity}`, fix: `restore ${config.dbPath} from a backup (sqlite3 ${config.dbPath} .recover can salvage rows)` };
      if (r.schemaVersion > r.expectedVersion) {
        return { status: 'fail', detail: `schema version ${r.schemaVersion} is newer than this vmforge knows (${r.expectedVersion})`, fix: 'run the vmforge that made it, or upgrade this one' };
      }
      const ver = `schema version ${r.schemaVersion}${r.schemaVersion < r.expectedVersion ? ` (the next command migrates it to ${r.expectedVersion})` : ''}, ${r.journalMode}, integrity ok`;
      if (r.unfinishedJobs.length) {
        const jobs = r.unfinishedJobs.map((j) => `job ${j.id} (${j.kind} ${j.vm}, ${j.status === 'undo-failed' ? 'undo failed' : `pid ${j.pid} died`})`).join(', ');
        return { status: 'warn', detail: `${ver}; left half-done: ${jobs}`, fix: 'vmforge recover (every build and destroy also runs it first)' };
      }
      return { detail: ver };
    }),
  );

  out.push(
    await findingOf('state.lock', 'host lock', async () => {
      const h = await hostLockHolder(hostLockPath(env.ctx));
      if (!h) return { detail: 'free' };
      return { status: 'warn', detail: `held by pid ${h.pid} since ${h.since}: ${h.command}`, fix: 'builds and destroys wait for it (up to 10 minutes); if that command is stuck, stop it (vmforge recover runs after)' };
    }),
  );
  return out;
}
