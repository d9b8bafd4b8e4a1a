import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fuseDaemonsUnder, fuseExportDaemonPids } from './qsd-find.js';
import { qsdFuseArgv } from './qsd-fuse.js';

let proc = '';
afterEach(async () => {
  if (proc) await rm(proc, { recursive: true, force: true });
});

async function fakeProc(entries: Record<string, string[]>): Promise<string> {
  proc = await mkdtemp(join(tmpdir(), 'vmf-proc-'));
  for (const [pid, argv] of Object.entries(entries)) {
    await mkdir(join(proc, pid));
    await writeFile(join(proc, pid, 'cmdline'), `${argv.join('\0')}\0`);
  }
  await mkdir(join(proc, 'self'));
  return proc;
}

describe('finding the daemon of a FUSE export from /proc', () => {
  it('matches the mountpoint exactly, not a longer path', async () => {
    const dir = await fakeProc({
      '10': qsdFuseArgv({ qcow2Path: '/s/disks/a.qcow2', exportPath: '/s/run/export/a.raw' }),
      '11': qsdFuseArgv({ qcow2Path: '/s/disks/ab.qcow2', exportPath: '/s/run/export/a.raw2' }),
      '12': ['/usr/bin/sleep', 'mountpoint=/s/run/export/a.raw,'],
    });
    expect(await fuseExportDaemonPids('/s/run/export/a.raw', dir)).toEqual([10]);
    expect(await fuseExportDaemonPids('/s/run/export/none.raw', dir)).toEqual([]);
    expect((await fuseDaemonsUnder('/s/', dir)).map((d) => d.pid).sort()).toEqual([10, 11]);
  });
});
